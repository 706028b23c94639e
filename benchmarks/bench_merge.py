"""Merge throughput and memory: a batch of change events applied to a destiny.csv of N rows.

Prints figures; asserts nothing. Run: .venv/bin/python benchmarks/bench_merge.py [rows] [events]
The prototype's loader managed 161 events/s against 1,000 rows and 69 events/s against 10,000 rows.
"""

from __future__ import annotations

import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from cdc_pipeline.batch_buffer import BufferMeta
from cdc_pipeline.merge import DestinyTable, merge_batch

META = BufferMeta("public.clientes", ("id", "nombre", "email"), ("id",))


def batch(rows: list[tuple], start_lsn: int) -> pd.DataFrame:
    return pd.DataFrame(
        [{"operacion": op, "id": str(k), "nombre": n, "email": e, "timestamp": "2026-11-24 00:00:00+00", "_topic": "t",
          "_partition": str(k % 4), "_offset": str(i), "_lsn": str(start_lsn + i)} for i, (op, k, n, e) in enumerate(rows)],
        dtype=object,
    )


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    events = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        table = DestinyTable(Path(tmp))
        started = time.perf_counter()
        merge_batch(table, META, batch([("r", k, f"name {k}", f"user{k}@example.com") for k in range(rows)], 1), {"id": "integer"})
        initial = time.perf_counter() - started
        size_mb = table.csv_path.stat().st_size / 1e6
        changes = []
        for _ in range(events):
            k = rng.randrange(rows + events)
            op = rng.choices(["c", "u", "d"], weights=[2, 6, 2])[0]
            changes.append((op, k, None if op == "d" else f"changed {k}", None if op == "d" else "x@example.com"))
        frame = batch(changes, rows + 10)
        started = time.perf_counter()
        result = merge_batch(table, META, frame, {"id": "integer"})
        elapsed = time.perf_counter() - started
        started = time.perf_counter()
        merge_batch(table, META, frame, {"id": "integer"})
        replay = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"initial load: {rows:,} rows ({size_mb:.1f} MB destiny.csv) in {initial:.2f} s")
    print(f"merge: {events:,} events into {rows:,} rows in {elapsed:.2f} s = {events / elapsed:,.0f} events/s "
          f"(inserted {result.inserted}, updated {result.updated}, deleted {result.deleted})")
    print(f"replay of the same batch (all stale): {replay:.2f} s")
    print(f"peak resident memory of this process: {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
