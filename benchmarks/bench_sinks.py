"""What the sinks cost beside the merge: destiny.parquet rendered from a state of N rows, and a PostgreSQL replica
loaded in full and then kept in step with a batch of changes.

Builds the same realistic table as bench_merge.py (a composite key (k1 integer, k2 text), integer, numeric(12,3),
double, text, boolean, date, timestamptz and uuid columns) through the state store, then measures:

- ``parquet_s``: the Parquet sink's render of the live generation (read destiny.csv in Arrow batches, convert
  every column from COPY text to its type, write zstd Parquet, fsync, rename), in a child process for its own
  peak RSS; ``parquet_floor_s``: pyarrow's read_csv of the same file as strings + write_table of those strings
  (no typing), in this process: the least any Parquet rendering of this file costs;
- with ``--postgres`` (starts a throwaway PostgreSQL through devstack and stops it): ``pg_full_s``, the replica
  created and loaded (COPY of destiny.csv in one transaction with its bookkeeping); ``pg_floor_s``, a plain COPY
  of the same file into an unindexed table of the same types; then EVENTS changes are merged and
  ``pg_incremental_s`` is the sink's catch-up (diff of the two generations, COPY into staging, DELETE + INSERT),
  with ``diff_s`` the diff alone.

Prints progress, then as its LAST line one JSON object. Asserts nothing.

Run:  .venv/bin/python benchmarks/bench_sinks.py ROWS [--events N] [--postgres] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_merge import LOAD_BATCH, BenchTable, peak_rss_mb, progress  # noqa: E402


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", type=int)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--postgres", action="store_true", help="also measure the PostgreSQL sink")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-sinks-"))
    try:
        figures = run(args.rows, args.events, args.postgres, work)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures))


def run(rows: int, events: int, postgres: bool, work: Path) -> dict:
    from cdc_pipeline.layout import PipelineLayout
    from cdc_pipeline.state import StateStore

    layout = PipelineLayout(work / "bench")
    table = BenchTable("composite", rows, random.Random(1))
    started = time.perf_counter()
    store = StateStore(layout)
    store.create(table.description())
    for first in range(0, rows, LOAD_BATCH):
        store.apply(table.snapshot_batch(first, min(first + LOAD_BATCH, rows)))
    destiny_mb = layout.destiny.stat().st_size / 1e6
    progress(f"table: {rows:,} rows, destiny.csv {destiny_mb:,.1f} MB, built in {time.perf_counter() - started:.1f} s")

    floor_s = parquet_floor(layout.destiny, work)
    progress(f"parquet floor (read_csv as strings + write_table): {floor_s:.2f} s")
    finished = subprocess.run([sys.executable, __file__, "--child", str(layout.folder)], capture_output=True,
                              text=True, check=False)
    if finished.returncode != 0:
        raise SystemExit(f"the parquet child failed:\n{finished.stderr}")
    child_figures = json.loads(finished.stdout.strip().splitlines()[-1])
    progress(f"parquet sink: {child_figures['parquet_s']:.2f} s, {child_figures['parquet_mb']:.1f} MB, "
             f"peak RSS {child_figures['peak_rss_mb']:.0f} MB")
    figures = {
        "rows": rows, "destiny_mb": round(destiny_mb, 1), **child_figures, "parquet_floor_s": round(floor_s, 3),
        "parquet_floor_ratio": round(child_figures["parquet_s"] / floor_s, 2),
        "parquet_rows_per_s": round(rows / child_figures["parquet_s"]),
        "cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine(),
    }
    if postgres:
        figures.update(measure_postgres(layout, store, table, events, work))
    return figures


def parquet_floor(destiny: Path, work: Path) -> float:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    started = time.perf_counter()
    with pacsv.open_csv(destiny) as reader:
        names = reader.schema.names
    convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=True)
    data = pacsv.read_csv(destiny, parse_options=pacsv.ParseOptions(newlines_in_values=True), convert_options=convert)
    pq.write_table(data, work / "floor.parquet", compression="zstd")
    elapsed = time.perf_counter() - started
    (work / "floor.parquet").unlink()
    return elapsed


def child(folder: Path) -> None:
    from cdc_pipeline.layout import PipelineLayout
    from cdc_pipeline.sinks.arrow_convert import NullNotes
    from cdc_pipeline.sinks.parquet_sink import write_parquet
    from cdc_pipeline.state import StateStore

    layout = PipelineLayout(folder)
    store = StateStore(layout)
    live = store.live()
    path = layout.sink_file("parquet")
    started = time.perf_counter()
    write_parquet(store, live, path, NullNotes())
    elapsed = time.perf_counter() - started
    print(json.dumps({"parquet_s": round(elapsed, 3), "parquet_mb": round(path.stat().st_size / 1e6, 1),
                      "peak_rss_mb": round(peak_rss_mb(), 1)}))


def measure_postgres(layout, store, table: BenchTable, events: int, work: Path) -> dict:
    from cdc_pipeline.connector_spec import SinkSpec
    from cdc_pipeline.sinks.ledger import SinkLedger
    from cdc_pipeline.sinks.postgres_sink import render_postgres
    from cdc_pipeline.sinks.postgres_target import TargetParams
    from devstack.stack import Stack
    from devstack.testing import make_test_settings

    settings = make_test_settings(prefix="bench-sinks-pg-")
    stack = Stack(settings)
    try:
        stack.start(["postgres"])
        target = TargetParams(settings.pg_host, settings.pg_port, settings.pg_user, settings.pg_password,
                              settings.sink_db)
        sink = SinkSpec("postgres", "bench", "public.bench_replica")
        ledger = SinkLedger(layout, sink)
        live = store.live()
        started = time.perf_counter()
        render_postgres(store, live, ledger, target, sink, "bench")
        full_s = time.perf_counter() - started
        progress(f"postgres sink, full load: {full_s:.2f} s")
        floor_s = postgres_floor(target, live.destiny_path)
        progress(f"postgres floor (COPY into an unindexed table): {floor_s:.2f} s")
        store.apply(table.change_batch(events), retain={live.id})  # as retained_generations would
        new = store.live()
        started = time.perf_counter()
        changed = sum(1 for _ in store.diff(live, new))
        diff_s = time.perf_counter() - started
        started = time.perf_counter()
        outcome = render_postgres(store, new, ledger, target, sink, "bench")
        incremental_s = time.perf_counter() - started
        progress(f"postgres sink, {events:,} events ({changed:,} keys changed): {incremental_s:.2f} s "
                 f"(diff {diff_s:.2f} s); {outcome.status}")
    finally:
        stack.stop()
        shutil.rmtree(settings.stack_home, ignore_errors=True)
    return {"pg_full_s": round(full_s, 3), "pg_floor_s": round(floor_s, 3), "pg_full_floor_ratio": round(full_s / floor_s, 2),
            "events": events, "changed_keys": changed, "diff_s": round(diff_s, 3),
            "pg_incremental_s": round(incremental_s, 3), "pg_incremental_status": outcome.status}


def postgres_floor(target, destiny: Path) -> float:
    import psycopg

    with psycopg.connect(host=target.host, port=target.port, user=target.user, password=target.password,
                         dbname=target.dbname, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_floor")
        conn.execute("CREATE TABLE bench_floor (LIKE public.bench_replica)")
        started = time.perf_counter()
        with conn.transaction(), conn.cursor().copy("COPY bench_floor FROM STDIN WITH (FORMAT csv, HEADER true)") as copy, \
                open(destiny, "rb") as source:
            while chunk := source.read(1 << 20):
                copy.write(chunk)
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_floor")
    return elapsed


if __name__ == "__main__":
    main()
