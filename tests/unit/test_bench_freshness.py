"""benchmarks/bench_freshness.py's measuring code, without a stack: it replays a recorded run (a real one, kept
in tests/fixtures/freshness, and small made-up ones) and its last line is the promised JSON."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECORDING = REPO / "tests" / "fixtures" / "freshness" / "recording-2min-10ps.json.gz"


def replay(path: Path) -> dict:
    finished = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_freshness.py"), "--replay", str(path)],
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_a_recorded_run_gives_its_figures_as_one_json_object_last():
    figures = replay(RECORDING)
    assert {"p50_s", "p95_s", "idle_run_s", "changes", "missing", "idle_tasks", "busy_tasks"} <= set(figures)
    recording = json.loads(gzip.decompress(RECORDING.read_bytes()))
    assert figures["changes"] == len(recording["commits"]) == figures["measured"] + figures["missing"]
    # Independently: a change's delay is the first sighting of its id at its version or a later one.
    delays = sorted(min(seen for key, version, seen in recording["sightings"] if key == k and version >= v) - t
                    for k, v, t in recording["commits"])
    assert figures["p50_s"] == pytest.approx(delays[len(delays) // 2 - 1], abs=0.01)
    assert figures["p95_s"] == pytest.approx(delays[int(len(delays) * 0.95) - 1], abs=0.01)
    idle = [r for r in recording["runs"] if r["events"] == 0 and r["state"] == "success"]
    assert figures["idle_runs_s"] == [round(r["end"] - r["start"], 2) for r in idle] and len(idle) >= 2
    assert figures["idle_run_s"] == max(figures["idle_runs_s"])
    assert set(figures["idle_tasks"]) == {"register_connector", "consume_batch", "merge_batch", "backfill_interval",
                                          "finish_run"}


def test_a_superseded_version_counts_from_the_later_one_and_an_unseen_change_is_missing(tmp_path):
    recording = {
        "commits": [[1, 1, 100.0], [1, 2, 101.0], [2, 1, 102.0], [3, 1, 103.0]],
        # version 1 of id 1 was updated before any merge showed it; id 3 never arrived.
        "sightings": [[1, 2, 130.0], [2, 1, 112.0]],
        "runs": [{"run_id": "a", "state": "success", "start": 10.0, "end": 16.5, "scheduled": 9.0, "events": 0,
                  "tasks": [{"task_id": "consume_batch", "queued": 10.1, "start": 10.2, "end": 12.0}]},
                 {"run_id": "b", "state": "success", "start": 70.0, "end": 80.0, "scheduled": 69.0, "events": 5,
                  "tasks": [{"task_id": "merge_batch", "queued": 72.0, "start": 72.5, "end": 75.0}]}],
    }
    path = tmp_path / "recording.json"
    path.write_text(json.dumps(recording))
    figures = replay(path)
    assert (figures["changes"], figures["measured"], figures["missing"]) == (4, 3, 1)
    assert figures["max_s"] == 30.0 and figures["p50_s"] == 29.0  # delays 30, 29, 10
    assert figures["idle_runs_s"] == [6.5] and figures["busy_run_median_s"] == 10.0
    assert figures["busy_merge_done_median_s"] == 5.0 and figures["start_lag_median_s"] == 1.0
    assert figures["idle_tasks"]["consume_batch"] == {"queued_after_run_start_s": 0.1, "start_after_queued_s": 0.1,
                                                      "duration_s": 1.8, "ended_after_run_start_s": 2.0}
