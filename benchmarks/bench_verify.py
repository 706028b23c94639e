"""What ``verify`` costs on a table of ROWS rows, against its floor: one plain COPY of the same table.

Starts a throwaway PostgreSQL, Apache Kafka and Kafka Connect (devstack), creates ``public.bench_verify`` with ROWS
rows (id int, a text, n numeric(12,2), t timestamptz), registers its connector and drains the snapshot into
destiny.csv through the pipeline's own tasks, then measures, ROUNDS times each (the best counts):

- ``copy``: the floor, ``COPY (SELECT * FROM t ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)`` into memory, as
  verify takes it, with the source's CPU seconds spent meanwhile (every PostgreSQL process, from /proc);
- ``verify``: ``cdc_pipeline.commands.verify.verify`` end to end (the REPEATABLE READ COPY, the slot confirmation, the
  drain, the comparison), its seconds and the source's CPU seconds. (Its memory: the COPY and destiny.csv, each
  about ``destiny_bytes``, are held at once; the process's peak RSS is the snapshot drain's, so not reported.)

Prints progress, then as its LAST line one JSON object. Asserts nothing.
Run: .venv/bin/python benchmarks/bench_verify.py [ROWS] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TABLE = "public.bench_verify"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.rows, args.rounds)))


def run(rows: int, rounds: int) -> dict:
    from devstack.stack import SERVICES, Stack
    from devstack.testing import make_test_settings
    from tests.stack.pipeline_driver import PipelineDriver, write_connector

    settings = make_test_settings(prefix="cdc-bench-verify-")
    stack = Stack(settings)
    work = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    try:
        stack.start(SERVICES)
        driver = PipelineDriver(settings, write_connector(work / "connectors", "bench_verify", TABLE, "bv",
                                                          partitions=1), work / "data")
        driver.sql(f"DROP TABLE IF EXISTS {TABLE}")
        driver.sql(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, a text, n numeric(12,2), t timestamptz)")
        driver.sql(f"INSERT INTO {TABLE} SELECT g, 'row ' || g || repeat('x', g %% 40), g * 1.25, "
                   "'2026-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, %s) g", [rows])
        driver.sql(f"ANALYZE {TABLE}")
        started = time.monotonic()
        driver.register()
        driver.drain_until_equal("id", max_events=200_000, timeout=1800)
        print(f"snapshot of {rows:,} rows drained in {time.monotonic() - started:.0f} s", flush=True)
        copy = [measure_copy(driver) for _ in range(rounds)]
        checks = [measure_verify(driver, n) for n in range(rounds)]
        best_copy, best_verify = min(copy, key=lambda c: c["seconds"]), min(checks, key=lambda c: c["seconds"])
        destiny = driver.layout.destiny.stat().st_size
        return {"benchmark": "verify", "rows": rows, "destiny_bytes": destiny, "rounds": rounds,
                "copy_seconds": best_copy["seconds"], "copy_source_cpu_seconds": best_copy["source_cpu_seconds"],
                "verify_seconds": best_verify["seconds"],
                "verify_source_cpu_seconds": best_verify["source_cpu_seconds"],
                "verify_over_copy": round(best_verify["seconds"] / best_copy["seconds"], 2),
                "results": [c["result"] for c in checks]}
    finally:
        stack.stop()
        shutil.rmtree(settings.stack_home, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def measure_copy(driver) -> dict:
    before, started = postgres_cpu_seconds(), time.monotonic()
    data = driver.copy_csv("id")
    seconds = time.monotonic() - started
    print(f"copy: {len(data):,} bytes in {seconds:.2f} s", flush=True)
    return {"seconds": round(seconds, 3), "source_cpu_seconds": round(postgres_cpu_seconds() - before, 2)}


def measure_verify(driver, number: int) -> dict:
    from cdc_pipeline.commands.verify import verify

    before, started = postgres_cpu_seconds(), time.monotonic()
    result = verify(driver.pipe, driver.services, run_id=f"bench__verify-{number}", rebuild=False)
    seconds = time.monotonic() - started
    print(f"verify: {result.line()} in {seconds:.2f} s", flush=True)
    return {"seconds": round(seconds, 3), "source_cpu_seconds": round(postgres_cpu_seconds() - before, 2),
            "result": result.result}


def postgres_cpu_seconds() -> float:
    """CPU seconds of PostgreSQL, as /proc counts them: every running postgres process's own, plus what its ended
    children used (a backend that served a COPY and exited counts in the postmaster's children times)."""
    import psutil

    total = 0.0
    for process in psutil.process_iter(["name", "cpu_times"]):
        times = process.info["cpu_times"]
        if process.info["name"] and process.info["name"].startswith("postgres") and times:
            total += times.user + times.system + times.children_user + times.children_system
    return total


if __name__ == "__main__":
    main()
