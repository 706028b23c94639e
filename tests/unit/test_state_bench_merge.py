"""Smoke test of benchmarks/bench_merge.py at a tiny size: it runs, and its last line is the promised JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_bench_merge_prints_its_figures_as_one_json_object_last(tmp_path):
    results = tmp_path / "results.jsonl"
    finished = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_merge.py"), "3000", "300", "--key", "integer", "--results", str(results)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.strip().splitlines()
    assert len(lines) > 1  # progress first
    figures = json.loads(lines[-1])
    assert {"rows", "events", "merge_s", "floor_s", "replay_s", "peak_rss_mb", "merge_floor_ratio", "replay_floor_ratio"} <= set(figures)
    assert (figures["rows"], figures["events"]) == (3000, 300)
    assert figures["merge_floor_ratio"] == pytest.approx(figures["merge_s"] / figures["floor_s"], rel=0.05)
    merged = figures["result"]
    assert merged["written"] and merged["applied_events"] + merged["stale"] == 300
    assert merged["destiny_rows"] == 3000 + merged["inserted"] - merged["deleted"]
    assert figures["peak_rss_mb"] > 0 and json.loads(results.read_text()) == figures
    plot = tmp_path / "plot.png"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_merge.py"), "--plot", str(results), str(plot)],
                   check=True, capture_output=True, timeout=120)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_merge_tables_mode_prints_its_figures_as_one_json_object_last(tmp_path):
    finished = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_merge.py"), "300", "3", "--tables", "3", "--prior", "1",
         "--key", "integer"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert finished.returncode == 0, finished.stderr
    figures = json.loads(finished.stdout.strip().splitlines()[-1])
    assert {"import_s", "first_merge_s", "merge_s", "merge_cpu_s", "floor_s", "merge_floor_ratio",
            "read_write_floor_s"} <= set(figures)
    assert (figures["mode"], figures["tables"], figures["rows"], figures["events"]) == ("tables", 3, 300, 3)
    assert figures["result"]["events"] == 3
