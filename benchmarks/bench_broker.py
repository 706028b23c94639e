"""bench_consume and bench_freshness on Apache Kafka, printed beside their figures on Tansu (the broker before).

Runs ``bench_consume.py`` (consume_batch against its floor, a bare fetch loop, in the same run; each run takes the
best of its own rounds) ``--consume-runs`` times and keeps the best run, then ``bench_freshness.py`` once (its
floor: a scheduled run with nothing to do), each in a child process on a throwaway stack of the current code, now Apache Kafka 4.3.0 and Kafka Connect 4.3.0
with Debezium 3.6.1. The Tansu figures are the ones recorded on 2026-11-30 with the same scripts
(``benchmarks/baselines/tansu-2026-11-30.json``, from docs/performance.md), so the two columns come from different
runs on the same machine: compare the ratios to each run's floor more than absolute rates.

Prints progress, then as its LAST line one JSON object. Asserts nothing.
Run: .venv/bin/python benchmarks/bench_broker.py [--events 100000] [--consume-runs 1] [--minutes 3] [--rate 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "benchmarks" / "baselines" / "tansu-2026-11-30.json"
CONSUME_KEYS = ("events_per_s", "raw_events_per_s", "ratio_to_raw", "peak_rss_mb")
FRESHNESS_KEYS = ("p50_s", "p95_s", "idle_run_s")


def last_json(command: list[str]) -> dict:
    """Run a benchmark, echo its progress, answer the JSON object of its last line."""
    print("$ " + " ".join(command), flush=True)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    for line in lines[:-1]:
        print("  " + line, flush=True)
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{command[1]} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def pick(figures: dict, keys: tuple[str, ...]) -> dict:
    return {key: figures.get(key) for key in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--consume-runs", type=int, default=1, help="runs of bench_consume (each takes the best of its own 3 rounds)")
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args()
    baseline = json.loads(BASELINE.read_text())
    python = sys.executable
    consume_runs = [last_json([python, "benchmarks/bench_consume.py", str(args.events)])
                    for _ in range(args.consume_runs)]
    consume = max(consume_runs, key=lambda figures: figures.get("events_per_s") or 0)
    freshness = last_json([python, "benchmarks/bench_freshness.py", "--minutes", str(args.minutes),
                           "--rate", str(args.rate)])
    result = {
        "broker": "Apache Kafka 4.3.0, Kafka Connect 4.3.0 (distributed), Debezium 3.6.1.Final",
        "baseline_broker": baseline["broker"],
        "consume_events": args.events,
        "consume_runs": args.consume_runs,
        "consume": pick(consume, CONSUME_KEYS),
        "consume_tansu": pick(baseline["consume"], CONSUME_KEYS),
        "freshness_minutes": args.minutes,
        "freshness": pick(freshness, FRESHNESS_KEYS),
        "freshness_tansu": pick(baseline["freshness"], FRESHNESS_KEYS),
    }
    print(f"consume_batch: {result['consume']} (Tansu: {result['consume_tansu']})")
    print(f"freshness:     {result['freshness']} (Tansu: {result['freshness_tansu']})")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
