"""Smoke test of benchmarks/bench_consume.py at a tiny size: it runs (its own broker, the pipeline's
consume_batch, the provider's operator, the raw loop) and its last line is the promised JSON."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "fixtures" / "samples" / "debezium-3.1.1-acc_types-events.jsonl.gz"


def test_bench_consume_prints_its_figures_as_one_json_object_last(tmp_path):
    records = 700  # more than the 611 sample records, so the cycle wraps
    finished = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_consume.py"), str(records), "--rounds", "1",
         "--consumer-setting", "fetch.queue.backoff.ms=20"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    lines = finished.stdout.strip().splitlines()
    assert len(lines) > 1  # progress first
    figures = json.loads(lines[-1])
    assert {"events", "events_per_s", "raw_events_per_s", "operator_events_per_s", "peak_rss_mb", "ratio_to_raw",
            "ratio_to_operator"} <= set(figures)
    assert figures["events"] == records and figures["consumer_settings"] == {"fetch.queue.backoff.ms": "20"}
    with gzip.open(SAMPLES, "rt", encoding="utf-8") as handle:
        tombstone = [json.loads(line)["value"] is None for line in handle]
    assert figures["buffer_rows"] == sum(not tombstone[i % len(tombstone)] for i in range(records))
    assert figures["ratio_to_raw"] == pytest.approx(figures["events_per_s"] / figures["raw_events_per_s"], rel=0.05)
    assert figures["ratio_to_operator"] == pytest.approx(figures["events_per_s"] / figures["operator_events_per_s"], rel=0.05)
    assert 0 < figures["peak_rss_mb"] < 4096
