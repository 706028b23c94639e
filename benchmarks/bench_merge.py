"""Merge cost against the file-rewrite floor: a batch of change events applied to a state of N rows.

Builds a realistic table itself (a composite key (k1 integer, k2 text) or an integer key, and columns of
several types like tests/fixtures/samples/acc_types-schema.sql) through the state store, writes a batch of
EVENTS changes (updates, inserts, deletes, unchanged-TOAST placeholders) to a buffer.csv, then measures:

- ``merge_s``: ``StateStore.apply`` of the batch, in a child process (so its peak RSS is the merge's alone:
  imports, reading buffer.csv, the merge and its replay; not the data generation);
- ``replay_s``: the same batch merged again (the replay shortcut: nothing is rewritten);
- ``floor_s``: ``pyarrow.csv.read_csv`` + ``write_csv`` of that same destiny.csv, in this process.

With ``--tables N`` it measures instead what a many-table connector's mapped merge task does each minute: a
small batch (EVENTS, say 5) into each of N tables of ROWS rows (say 10,000), through the whole task,
``cdc_pipeline.tasks.merge.merge_batch`` (run history, lock, buffer, state, change log, archive), the tables
one after another in one fresh child process. One pipeline folder is built (the state, ``--prior`` earlier
merges through merge_batch, the run consume would have recorded, a buffer.csv of EVENTS events) and copied N
times. Figures:

- ``import_s``: the child's ``import cdc_pipeline.tasks.merge`` (each Airflow task is a fresh process);
- ``first_merge_s``: the first table's merge_batch (it also pays the imports done on first use);
- ``merge_s`` / ``merge_cpu_s``: the median merge_batch of the other tables, wall and CPU seconds;
- ``floor_s``: the median, over the same tables, of the least a merge that keeps the commit protocol writes:
  destiny.csv copied to a new file beside it, fsync'd, renamed over a name, the folder fsync'd;
- ``read_write_floor_s``: ``pyarrow.csv.read_csv`` + ``write_csv`` of one table's destiny.csv (the other mode's floor).

Prints progress, then as its LAST line one JSON object. Asserts nothing.

Run:  .venv/bin/python benchmarks/bench_merge.py ROWS EVENTS [--key composite|integer] [--workdir DIR]
                                                 [--profile OUT.txt] [--results FILE.jsonl]
      .venv/bin/python benchmarks/bench_merge.py 10000 5 --tables 50 [--prior 3] [--profile OUT.prof]
Plot: .venv/bin/python benchmarks/bench_merge.py --plot FILE.jsonl OUT.png
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LOAD_BATCH = 500_000
PARTITIONS = 4


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--child-tables":
        child_tables(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--plot":
        plot(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", type=int)
    parser.add_argument("events", type=int)
    parser.add_argument("--key", choices=["composite", "integer"], default="composite")
    parser.add_argument("--workdir", type=Path, help="where to build the table (default: a temporary folder, removed)")
    parser.add_argument("--profile", type=Path, help="profile the merge with pyinstrument, text report to this file "
                        "(with --tables: cProfile of the merges after the first, pstats data)")
    parser.add_argument("--results", type=Path, help="also append the JSON line to this file")
    parser.add_argument("--tables", type=int, help="small-batch mode: merge_batch into this many tables in one process")
    parser.add_argument("--prior", type=int, default=3, help="with --tables: merges made before the measured one")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-merge-"))
    try:
        if args.tables:
            figures = run_tables(args.rows, args.events, args.tables, args.prior, args.key, work, args.profile)
        else:
            figures = run(args.rows, args.events, args.key, work, args.profile)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    line = json.dumps(figures)
    if args.results:
        with open(args.results, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    print(line)


def run(rows: int, events: int, key: str, work: Path, profile: Path | None) -> dict:
    from cdc_pipeline.pgtext.copy_csv import format_rows
    from cdc_pipeline.layout import PipelineLayout
    from cdc_pipeline.state import StateStore

    layout = PipelineLayout(work / "bench")
    table = BenchTable(key, rows, random.Random(1))
    started = time.perf_counter()
    store = StateStore(layout)
    store.create(table.description())
    for first in range(0, rows, LOAD_BATCH):
        store.apply(table.snapshot_batch(first, min(first + LOAD_BATCH, rows)))
        progress(f"loaded {min(first + LOAD_BATCH, rows):,} of {rows:,} rows ({time.perf_counter() - started:.0f} s)")
    generate_s = time.perf_counter() - started
    destiny_mb = layout.destiny.stat().st_size / 1e6
    progress(f"table: {rows:,} rows, destiny.csv {destiny_mb:,.1f} MB, built in {generate_s:.1f} s")

    batch = table.change_batch(events)
    buffer = work / "buffer.csv"
    buffer.write_text(format_rows(list(batch.columns), batch.itertuples(index=False)), encoding="utf-8")

    floor_s = measure_floor(layout.destiny, work)
    progress(f"floor (pyarrow read + write of destiny.csv): {floor_s:.2f} s")
    command = [sys.executable, __file__, "--child", str(layout.folder)] + ([str(profile)] if profile else [])
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise SystemExit(f"the merge child failed:\n{finished.stderr}")
    merged = json.loads(finished.stdout.strip().splitlines()[-1])
    progress(f"merge: {events:,} events in {merged['merge_s']:.2f} s; replay {merged['replay_s']:.4f} s; "
             f"peak RSS {merged['peak_rss_mb']:.0f} MB")
    return {
        "rows": rows, "events": events, "key": key, "destiny_mb": round(destiny_mb, 1),
        "merge_s": merged["merge_s"], "floor_s": round(floor_s, 4), "replay_s": merged["replay_s"],
        "peak_rss_mb": merged["peak_rss_mb"], "merge_floor_ratio": round(merged["merge_s"] / floor_s, 3),
        "replay_floor_ratio": round(merged["replay_s"] / floor_s, 5), "read_buffer_s": merged["read_buffer_s"],
        "result": merged["result"], "generate_s": round(generate_s, 1), "cpus": os.cpu_count(),
        "python": platform.python_version(), "machine": platform.machine(),
    }


def measure_floor(destiny: Path, work: Path) -> float:
    """The floor of any merge that rewrites the file: a plain pyarrow read plus write of the same CSV."""
    import pyarrow.csv as pacsv

    target = work / "floor.csv"
    started = time.perf_counter()
    table = pacsv.read_csv(destiny)
    pacsv.write_csv(table, target)
    elapsed = time.perf_counter() - started
    del table
    target.unlink()
    return elapsed


def child(folder: Path, profile: str | None) -> None:
    """Runs in its own process: the merge's time and peak RSS, then the replay's time."""
    from cdc_pipeline.pgtext.copy_csv import read_copy_csv
    from cdc_pipeline.layout import PipelineLayout
    from cdc_pipeline.state import StateStore

    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
    started = time.perf_counter()
    batch = read_copy_csv(folder.parent / "buffer.csv")
    read_buffer_s = time.perf_counter() - started
    store = StateStore(PipelineLayout(folder))
    if profiler:
        profiler.start()
    started = time.perf_counter()
    result = store.apply(batch)
    merge_s = time.perf_counter() - started
    if profiler:
        profiler.stop()
        Path(profile).write_text(profiler.output_text(unicode=True, show_all=False), encoding="utf-8")
    started = time.perf_counter()
    replay = store.apply(batch)
    replay_s = time.perf_counter() - started
    if not replay.replay:
        raise SystemExit("the replay did not take the replay shortcut")
    peak_mb = peak_rss_mb()
    print(json.dumps({"merge_s": round(merge_s, 4), "replay_s": round(replay_s, 5), "read_buffer_s": round(read_buffer_s, 4),
                      "peak_rss_mb": round(peak_mb, 1), "result": result.as_dict()}))


def run_tables(rows: int, events: int, tables: int, prior: int, key: str, work: Path, profile: Path | None) -> dict:
    """The small-batch mode (see the module docstring)."""
    started = time.perf_counter()
    template = build_pipeline(work / "template", rows, events, prior, key)
    folders = []
    for number in range(tables):
        folder = work / "tables" / f"t{number:04d}"
        folder.parent.mkdir(parents=True, exist_ok=True)
        # cp -a keeps destiny.csv a hard link to the live generation's file, as the pipeline leaves it.
        subprocess.run(["cp", "-a", str(template), str(folder)], check=True)
        folders.append(folder)
    generate_s = time.perf_counter() - started
    destiny = template / "destiny.csv"
    progress(f"{tables} tables of {rows:,} rows (destiny.csv {destiny.stat().st_size / 1e6:.2f} MB), {events} events "
             f"each, built in {generate_s:.1f} s")
    floors = [durable_rewrite_floor(folder / "destiny.csv") for folder in folders]
    floor_s = statistics.median(floors)
    read_write_floor_s = measure_floor(destiny, work)
    progress(f"floor (destiny.csv copied, fsync'd, renamed, folder fsync'd): {floor_s * 1e3:.2f} ms; "
             f"pyarrow read + write: {read_write_floor_s * 1e3:.1f} ms")
    command = [sys.executable, __file__, "--child-tables", str(work / "tables"), str(tables)]
    command += [str(profile)] if profile else []
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise SystemExit(f"the merge child failed:\n{finished.stderr}")
    merged = json.loads(finished.stdout.strip().splitlines()[-1])
    outputs = {(folder / "destiny.csv").read_bytes() for folder in folders}
    if len(outputs) != 1:
        raise SystemExit("the tables' destiny.csv differ after the same merge")
    progress(f"merge_batch: import {merged['import_s']:.3f} s, first table {merged['first_merge_s'] * 1e3:.1f} ms, "
             f"then median {merged['merge_s'] * 1e3:.1f} ms ({merged['merge_cpu_s'] * 1e3:.1f} ms CPU) a table")
    return {
        "mode": "tables", "tables": tables, "rows": rows, "events": events, "prior": prior, "key": key,
        "destiny_mb": round(destiny.stat().st_size / 1e6, 2), "import_s": merged["import_s"],
        "first_merge_s": merged["first_merge_s"], "merge_s": merged["merge_s"], "merge_cpu_s": merged["merge_cpu_s"],
        "merge_max_s": merged["merge_max_s"], "all_merges_s": merged["all_merges_s"], "floor_s": round(floor_s, 5),
        "merge_floor_ratio": round(merged["merge_s"] / floor_s, 2), "read_write_floor_s": round(read_write_floor_s, 4),
        "child_peak_rss_mb": merged["peak_rss_mb"], "result": merged["result"], "generate_s": round(generate_s, 1),
        "cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine(),
    }


def build_pipeline(folder: Path, rows: int, events: int, prior: int, key: str) -> Path:
    """A pipeline folder as the merge task finds it after consume: the state, ``prior`` merges (their history,
    change log and archived buffers), the measured run recorded, a buffer.csv of ``events`` events."""
    from cdc_pipeline.buffer.batch_buffer import BatchBuffer, BufferMeta
    from cdc_pipeline.history import RunRef
    from cdc_pipeline.layout import PipelineLayout
    from cdc_pipeline.state import StateStore
    from cdc_pipeline.tasks.merge import merge_batch

    pipe = bench_pipeline(folder)
    table = BenchTable(key, rows, random.Random(1))
    description = table.description()
    store = StateStore(PipelineLayout(folder))
    store.create(description)
    for first in range(0, rows, LOAD_BATCH):
        store.apply(table.snapshot_batch(first, min(first + LOAD_BATCH, rows)))
    meta = BufferMeta(description.qualified_table, description.column_names, description.key_columns)
    runs = pipe.history.runs
    for number in range(prior + 1):
        run = RunRef(f"scheduled__2026-11-24T08:{number:02d}:00+00:00")
        runs.ensure_run(run)
        batch = [{k: v for k, v in record.items()} | {"_incarnation": "1", "_txid": str(1000 + number)}
                 for record in table.change_batch(events).to_dict("records")]
        BatchBuffer(pipe.layout).add(meta, batch)
        ranges = {}
        for record in batch:
            partition, offset = int(record["_partition"]), int(record["_offset"])
            low, high = ranges.get(partition, (offset, offset + 1))
            ranges[partition] = (min(low, offset), max(high, offset + 1))
        runs.record_batch(run.run_id, incarnation=1, epoch=0, ranges=ranges)
        if number < prior:
            merge_batch(pipe, run)
    return folder


def bench_pipeline(folder: Path):
    from cdc_pipeline.connector_spec import load_connector_spec
    from cdc_pipeline.layout import PipelineLayout
    from cdc_pipeline.pipeline import Pipeline

    return Pipeline(load_connector_spec(ROOT / "include" / "connectors" / "clientes.json"), PipelineLayout(folder))


def durable_rewrite_floor(destiny: Path) -> float:
    """destiny.csv copied to a new file in its folder, fsync'd, renamed over a name, the folder fsync'd."""
    temporary, target = destiny.with_name(".floor.tmp"), destiny.with_name(".floor.csv")
    started = time.perf_counter()
    with open(destiny, "rb") as source, open(temporary, "wb") as copy:
        shutil.copyfileobj(source, copy, 1 << 20)
        copy.flush()
        os.fsync(copy.fileno())
    os.replace(temporary, target)
    folder = os.open(destiny.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def child_tables(tables: Path, count: int, profile: str | None) -> None:
    """Runs in a fresh process, as a mapped merge task: the imports, then merge_batch of each table in turn."""
    started = time.perf_counter()
    from cdc_pipeline.tasks.merge import merge_batch

    import_s = time.perf_counter() - started
    from cdc_pipeline.history import RunRef

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    walls, cpus, summary = [], [], {}
    folders = sorted(tables.iterdir())[:count]
    for number, folder in enumerate(folders):
        pipe = bench_pipeline(folder)
        run = RunRef(last_run_id(pipe))
        if profiler and number:
            profiler.enable()
        wall, cpu = time.perf_counter(), time.process_time()
        summary = merge_batch(pipe, run)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        if profiler and number:
            profiler.disable()
        if not summary.get("written"):
            raise SystemExit(f"{folder}: the merge wrote nothing: {summary}")
    if profiler:
        profiler.dump_stats(profile)
    rest = walls[1:] or walls
    print(json.dumps({
        "import_s": round(import_s, 4), "first_merge_s": round(walls[0], 5), "merge_s": round(statistics.median(rest), 5),
        "merge_cpu_s": round(statistics.median(cpus[1:] or cpus), 5), "merge_max_s": round(max(rest), 5),
        "all_merges_s": round(sum(walls), 4), "peak_rss_mb": round(peak_rss_mb(), 1),
        "result": {k: summary.get(k) for k in ("events", "inserted", "updated", "deleted", "stale", "destiny_rows")},
    }))


def last_run_id(pipe) -> str:
    """The run consume recorded last (the one whose buffer the merge applies)."""
    return pipe.history.runs.recent_runs(1)[0]["run_id"]


def peak_rss_mb() -> float:
    """This process's peak resident memory. Not getrusage's ru_maxrss: Linux carries that across execve, so a
    child started by a large parent would report the parent's peak; VmHWM belongs to the child's own memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class BenchTable:
    """Deterministic rows of a table with several column types; keys ascending with the row number."""

    def __init__(self, key: str, rows: int, rng: random.Random) -> None:
        self.key = key
        self.rows = rows
        self.rng = rng
        self.lsn = 1_000_000
        self.offsets = [0] * PARTITIONS
        self.key_columns = ("k1", "k2") if key == "composite" else ("id",)

    def description(self):
        from cdc_pipeline.source.catalog import CatalogColumn, TableDescription

        key = {"k1": "integer", "k2": "text"} if self.key == "composite" else {"id": "bigint"}
        values = {"c_int": "integer", "c_num": "numeric(12,3)", "c_double": "double precision", "c_text": "text",
                  "c_bool": "boolean", "c_date": "date", "c_tstz": "timestamp with time zone", "c_uuid": "uuid"}
        columns = tuple(CatalogColumn(name=n, attnum=i, format_type=t, type_name=t, type_kind="b", type_category="S")
                        for i, (n, t) in enumerate({**key, **values}.items(), start=1))
        return TableDescription("public", "bench", columns, tuple(key))

    def key_values(self, n: int) -> list[str]:
        """Row n's key; n may exceed the table (new keys) and keys stay ascending in n."""
        if self.key == "integer":
            return [str(n * 2)]
        return [str(n // 4), f"item-{n % 4:02d}"]

    def new_key_values(self, n: int) -> list[str]:
        """A key between row n's and row n+1's, absent from the table."""
        if self.key == "integer":
            return [str(n * 2 + 1)]
        return [str(n // 4), f"item-{n % 4:02d}-new"]

    def row(self, n: int, version: int) -> list[str | None]:
        rng = self.rng
        day = date(2000, 1, 1) + timedelta(days=(n * 7 + version) % 9000)
        moment = datetime(2020, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=n * 13 + version, microseconds=n % 997)
        text_kind = n % 10
        text = None if text_kind == 0 else "" if text_kind == 1 else f'note {n}, "v{version}"' if text_kind == 2 else f"customer {n} v{version}"
        return [
            str((n * 31 + version) % 2_000_000 - 1_000_000),
            f"{(n % 100_000) / 7:.3f}",
            repr(rng.random() * 1000),
            text,
            "t" if (n + version) % 2 else "f",
            day.isoformat(),
            moment.strftime("%Y-%m-%d %H:%M:%S.%f+00"),
            str(uuid.UUID(int=(n * 2654435761 + version) % (1 << 128))),
        ]

    def event(self, op: str, key: list[str], values: list[str | None]) -> dict:
        self.lsn += 8
        partition = zlib.crc32("\x00".join(key).encode()) % PARTITIONS  # as Kafka: by key, stable
        record = {"operacion": op}
        record.update(zip(self.key_columns, key))
        record.update(zip(("c_int", "c_num", "c_double", "c_text", "c_bool", "c_date", "c_tstz", "c_uuid"), values))
        record.update({"timestamp": "2026-11-24 08:00:00+00", "_topic": "bench.public.bench", "_partition": str(partition),
                       "_offset": str(self.offsets[partition]), "_lsn": str(self.lsn)})
        self.offsets[partition] += 1
        return record

    def snapshot_batch(self, first: int, stop: int):
        import pandas as pd

        return pd.DataFrame([self.event("r", self.key_values(n), self.row(n, 0)) for n in range(first, stop)], dtype=object)

    def change_batch(self, count: int):
        """60 % updates (5 % of them with an unchanged-TOAST placeholder), 20 % inserts, 20 % deletes."""
        import pandas as pd

        from cdc_pipeline.debezium.events import UNAVAILABLE_VALUE

        records = []
        for i in range(count):
            n = self.rng.randrange(self.rows)
            roll = self.rng.random()
            if roll < 0.6:
                values = self.row(n, 1 + i)
                if self.rng.random() < 0.05:
                    values[3] = UNAVAILABLE_VALUE
                records.append(self.event("u", self.key_values(n), values))
            elif roll < 0.8:
                records.append(self.event("c", self.new_key_values(n), self.row(n, 1 + i)))
            else:
                records.append(self.event("d", self.key_values(n), [None] * 8))
        return pd.DataFrame(records, dtype=object)


def plot(results: Path, output: Path) -> None:
    """Merge time and peak RSS against table size, beside the floor, from --results lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    runs.sort(key=lambda r: r["rows"])
    sizes = [r["rows"] for r in runs]
    figure, (times, memory) = plt.subplots(1, 2, figsize=(11, 4.2))
    times.plot(sizes, [r["merge_s"] for r in runs], "o-", label="merge of 10,000 events")
    times.plot(sizes, [r["floor_s"] for r in runs], "s--", label="floor: pyarrow read + write")
    times.plot(sizes, [3 * r["floor_s"] for r in runs], ":", color="grey", label="target: 3 × floor")
    times.plot(sizes, [r["replay_s"] for r in runs], "^-", label="replay of the same batch")
    times.set(xscale="log", yscale="log", xlabel="rows in destiny.csv", ylabel="seconds", title="Merge time")
    times.legend(fontsize=8)
    memory.plot(sizes, [r["peak_rss_mb"] for r in runs], "o-", label="merge child peak RSS")
    memory.axhline(256, linestyle=":", color="grey", label="target: 256 MB")
    memory.set(xscale="log", xlabel="rows in destiny.csv", ylabel="MB", title="Merge peak memory", ylim=(0, 300))
    memory.legend(fontsize=8)
    for axis in (times, memory):
        axis.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(output, dpi=110)
    progress(f"wrote {output}")


def progress(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    main()
