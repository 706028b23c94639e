"""The cost of many tables on one connector, in a real Airflow: snapshot time, CPU per minute idle and under load,
run duration, freshness, and the source's WAL decoding (one slot against one per table).

Starts the whole local stack on free ports in a temporary home (PostgreSQL, Apache Kafka, Kafka Connect, Airflow 3
standalone, through devstack). Its floor, measured first in the same run: the machine's CPU per minute with the
stack up and no pipeline. Then for each size N of ``--tables`` (default 1, 10, 50, 200):

1. N tables ``bench_t<i>`` (id, version, note) of ``--rows`` rows each, one connector file capturing them all;
   its DAG is unpaused and the snapshot timed until every table's destiny.csv holds every row;
2. ``--idle-seconds`` with nothing to change: the machine's CPU-seconds per minute (from /proc/stat), minus the
   floor, is what the connector costs while idle;
3. ``--load-seconds`` at ``--rate`` updates a second spread evenly over the N tables (one row each, its version
   raised, one transaction each): CPU per minute, the runs' durations (Airflow's start to end), the PostgreSQL
   walsenders' CPU per minute (the slot's decoding cost), and freshness: a sample of the changes (one a second)
   is watched for in its table's destiny.csv, delay = first seen - commit;
4. the same load against N one-table connectors, for N up to ``--single-up-to`` (default 10: each needs a slot
   and a Debezium task, and a one-table DAG per table), for the same figures.

Then the connector and its tables go, and the next size starts. Prints progress, then as its LAST line one JSON
object: per size and layout, ``snapshot_s``, ``idle_cpu_s_per_min``, ``load_cpu_s_per_min``, ``run_p50_s``,
``run_p95_s``, ``freshness_p50_s``, ``freshness_p95_s``, ``walsender_cpu_s_per_min``; and the floor. Asserts nothing.

Run: .venv/bin/python benchmarks/bench_many_tables.py [--tables 1,10,50,200] [--rows 10000] [--rate 100]
                     [--idle-seconds 120] [--load-seconds 180] [--single-up-to 10]
Plot: .venv/bin/python benchmarks/bench_many_tables.py --plot RESULT.json OUT.png   (RESULT: the last line)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLE_EVERY_S = 1.0   # one change a second is watched for in destiny.csv
POLL_S = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default="1,10,50,200", help="comma-separated connector sizes")
    parser.add_argument("--rows", type=int, default=10_000, help="rows per table")
    parser.add_argument("--rate", type=float, default=100.0, help="updates a second, spread over the tables")
    parser.add_argument("--max-table-tasks", type=int, default=None,
                        help="the connector file's max_table_tasks (default: the pipeline's own default)")
    parser.add_argument("--idle-seconds", type=float, default=120.0)
    parser.add_argument("--load-seconds", type=float, default=180.0)
    parser.add_argument("--single-up-to", type=int, default=10,
                        help="also run sizes up to this as one-table connectors (0: never)")
    parser.add_argument("--plot", nargs=2, type=Path, metavar=("RESULT", "OUT"),
                        help="draw a run's figures against the number of tables; starts nothing")
    args = parser.parse_args()
    if args.plot:
        plot(json.loads(args.plot[0].read_text().strip().splitlines()[-1]), args.plot[1])
        return
    sizes = [int(n) for n in args.tables.split(",") if n.strip()]
    print(json.dumps(run(args, sizes)))


def run(args: argparse.Namespace, sizes: list[int]) -> dict:
    from devstack.airflow_api import AirflowClient
    from devstack.stack import Stack
    from devstack.testing import make_test_settings

    connectors = Path(tempfile.mkdtemp(prefix="bench-many-connectors-"))
    settings = make_test_settings(prefix="cdc-bench-many-", connectors_dir=connectors)
    stack = Stack(settings)
    results: dict = {"setup": {"rows": args.rows, "rate": args.rate, "idle_s": args.idle_seconds,
                               "max_table_tasks": args.max_table_tasks,
                               "load_s": args.load_seconds, "cpus": os.cpu_count()}, "sizes": {}}
    try:
        stack.start()
        source = Source(settings.pg_conninfo)
        with AirflowClient(settings.airflow_url, settings.airflow_user, settings.airflow_password) as api:
            time.sleep(20)  # let the just-started Airflow settle before the floor
            results["floor_cpu_s_per_min"] = round(cpu_per_minute(args.idle_seconds / 2), 1)
            print(f"floor: {results['floor_cpu_s_per_min']} CPU-s/min with the stack up and no pipeline", flush=True)
            for n in sizes:
                layouts = {"one_connector": [f"bench_n{n}"]}
                if n <= args.single_up_to:
                    layouts["one_connector_per_table"] = [f"bench_n{n}_t{i}" for i in range(n)]
                for layout, names in layouts.items():
                    figures = measure_size(api, source, settings, connectors, n, names, args)
                    figures["idle_cpu_over_floor"] = round(figures["idle_cpu_s_per_min"] - results["floor_cpu_s_per_min"], 1)
                    results["sizes"].setdefault(str(n), {})[layout] = figures
                    print(f"{n} tables, {layout}: {figures}", flush=True)
    finally:
        stack.stop()
        shutil.rmtree(settings.stack_home, ignore_errors=True)
        shutil.rmtree(connectors, ignore_errors=True)
    return results


def measure_size(api, source: Source, settings, connectors: Path, n: int, names: list[str],
                 args: argparse.Namespace) -> dict:
    """One size in one layout: ``names`` are the connectors (one for all tables, or one per table)."""
    tables = [f"bench_t{i}" for i in range(n)]
    source.create_tables(tables, args.rows)
    per_connector = [tables] if len(names) == 1 else [[t] for t in tables]
    destinies = {}
    for name, captured in zip(names, per_connector):
        write_connector(connectors, name, captured,
                        **({"max_table_tasks": args.max_table_tasks} if args.max_table_tasks else {}))
        for table in captured:
            folder = settings.data_dir / name
            destinies[table] = (folder / f"public.{table}" if len(captured) > 1 else folder) / "destiny.csv"
    dag_ids = [f"cdc_{name}" for name in names]
    wait(lambda: set(dag_ids) <= {d["dag_id"] for d in api.list_dags()}, what="the DAGs to be parsed", timeout=300)
    began = time.time()
    for dag_id in dag_ids:
        api.unpause(dag_id)
        api.trigger(dag_id)  # now, not at the next minute: the snapshot's time is the pipeline's, not the clock's
    wait(lambda: all(rows_in(path) >= args.rows for path in destinies.values()),
         what=f"{n} tables of {args.rows} rows to be snapshotted", timeout=1800, interval=5)
    snapshot_s = time.time() - began
    print(f"  {n} tables snapshotted in {snapshot_s:.0f} s", flush=True)
    idle = cpu_per_minute(args.idle_seconds)
    load_started = time.time()
    walsenders = WalsenderCpu()
    watcher = Watcher(destinies)
    watcher.start()
    cpu_before = cpu_seconds()
    samples = Load(source, tables, args.rows, args.rate, watcher).run(args.load_seconds)
    load_cpu = (cpu_seconds() - cpu_before) / (args.load_seconds / 60)
    wal_cpu = walsenders.per_minute()
    wait(lambda: watcher.pending() == 0, what="the sampled changes to reach destiny.csv", timeout=900, interval=2)
    watcher.stop()
    # The run that merged the last sample may still be finishing: wait for every run begun in the load to end.
    wait(lambda: not any(run_in_flight(api, dag_id, since=load_started) for dag_id in dag_ids),
         what="the load's runs to end", timeout=600, interval=2)
    runs = [d for dag_id in dag_ids for d in run_durations(api, dag_id, since=load_started)]
    for dag_id in dag_ids:
        api.set_paused(dag_id, True)
    for name in names:
        (connectors / f"{name}.json").unlink()
    retire(settings, names)
    source.drop_tables(tables)
    delays = watcher.delays(samples)
    return {
        "snapshot_s": round(snapshot_s, 1), "idle_cpu_s_per_min": round(idle, 1), "load_cpu_s_per_min": round(load_cpu, 1),
        "runs": len(runs), "run_p50_s": pct(runs, 50), "run_p95_s": pct(runs, 95), "samples": len(delays),
        "freshness_p50_s": pct(delays, 50), "freshness_p95_s": pct(delays, 95),
        "walsender_cpu_s_per_min": round(wal_cpu, 2),
    }


class Source:
    def __init__(self, conninfo: str) -> None:
        import psycopg

        self.connection = psycopg.connect(conninfo, autocommit=True)
        self.lock = threading.Lock()

    def create_tables(self, tables: list[str], rows: int) -> None:
        for table in tables:
            self.connection.execute(f"DROP TABLE IF EXISTS public.{table}")
            self.connection.execute(f"CREATE TABLE public.{table} (id int PRIMARY KEY, version int NOT NULL, note text)")
            self.connection.execute(f"INSERT INTO public.{table} SELECT g, 1, 'row ' || g FROM generate_series(1, %s) g",
                                    (rows,))

    def drop_tables(self, tables: list[str]) -> None:
        for table in tables:
            self.connection.execute(f"DROP TABLE IF EXISTS public.{table}")

    def update(self, table: str, key: int) -> tuple[int, float]:
        """Raise the row's version; answer the new version and the wall time right after the commit."""
        with self.lock:
            version = self.connection.execute(f"UPDATE public.{table} SET version = version + 1 WHERE id = %s "
                                              "RETURNING version", (key,)).fetchone()[0]
            return version, time.time()


class Load:
    """``rate`` updates a second, evenly spaced, each on the next table in turn (so every table moves)."""

    def __init__(self, source: Source, tables: list[str], rows: int, rate: float, watcher: Watcher) -> None:
        self.source, self.tables, self.rows, self.rate, self.watcher = source, tables, rows, rate, watcher
        self.rng = random.Random(7)

    def run(self, seconds: float) -> list[tuple[str, int, int, float]]:
        samples = []
        started = time.monotonic()
        next_sample = started
        for number in range(int(seconds * self.rate)):
            pause = started + number / self.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            table = self.tables[number % len(self.tables)]
            key = self.rng.randint(1, self.rows)
            version, committed = self.source.update(table, key)
            if time.monotonic() >= next_sample:
                next_sample += SAMPLE_EVERY_S
                samples.append((table, key, version, committed))
                self.watcher.watch(table, key, version)
        return samples


class Watcher(threading.Thread):
    """Polls the destiny.csv of the tables with a sampled change pending; notes when the row shows its version.

    A file is read again only when it is another file (a merge renames a new one into place) or was written since
    its last reading: reading 10,000 rows of every pending table every 0.5 s took CPU from the pipeline it
    measures (about 90 tables wait at once at 200 tables)."""

    def __init__(self, destinies: dict[str, Path]) -> None:
        super().__init__(daemon=True, name="destiny-watcher")
        self.destinies = destinies
        self._pending: dict[tuple[str, int, int], None] = {}
        self._seen: dict[tuple[str, int, int], float] = {}
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self._read: dict[str, tuple[int, int, int] | None] = {}  # what each file was when last read

    def watch(self, table: str, key: int, version: int) -> None:
        with self._lock:
            self._pending[(table, key, version)] = None
            self._read.pop(table, None)  # read at least once for the new sample

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def run(self) -> None:
        while not self._halt.is_set():
            with self._lock:
                wanted = list(self._pending)
            by_table: dict[str, list[tuple[int, int]]] = {}
            for table, key, version in wanted:
                by_table.setdefault(table, []).append((key, version))
            for table, rows in by_table.items():
                now = time.time()
                stamp = file_stamp(self.destinies[table])
                with self._lock:
                    unchanged = table in self._read and self._read[table] == stamp
                    self._read[table] = stamp
                if unchanged:
                    continue
                versions = versions_in(self.destinies[table], {key for key, _ in rows})
                with self._lock:
                    for key, version in rows:
                        if versions.get(key, 0) >= version:
                            self._pending.pop((table, key, version), None)
                            self._seen[(table, key, version)] = now
            self._halt.wait(POLL_S)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def delays(self, samples: list[tuple[str, int, int, float]]) -> list[float]:
        return [self._seen[(t, k, v)] - committed for t, k, v, committed in samples if (t, k, v) in self._seen]


def file_stamp(path: Path) -> tuple[int, int, int] | None:
    """Which file is at ``path`` and when it was last written: (inode, mtime in ns, size); None when absent."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def versions_in(path: Path, keys: set[int]) -> dict[int, int]:
    """The version of each of ``keys`` in a destiny.csv of (id, version, note): its lines start ``id,version,``."""
    found: dict[int, int] = {}
    try:
        with open(path, encoding="utf-8") as handle:
            next(handle, None)
            for line in handle:
                head, _, rest = line.partition(",")
                if head.isdigit() and int(head) in keys:
                    found[int(head)] = int(rest.partition(",")[0])
    except FileNotFoundError:
        pass
    return found


def rows_in(path: Path) -> int:
    try:
        with open(path, "rb") as handle:
            return max(0, sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")) - 1)
    except FileNotFoundError:
        return 0


def cpu_seconds() -> float:
    """CPU time the whole machine spent busy since boot (user, nice, system, irq, softirq, steal)."""
    fields = open("/proc/stat").readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def cpu_per_minute(seconds: float) -> float:
    before = cpu_seconds()
    time.sleep(seconds)
    return (cpu_seconds() - before) / (seconds / 60)


class WalsenderCpu:
    """The CPU of PostgreSQL's walsender processes (one per slot in use) over a window, per minute."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.before = self._cpu()

    @staticmethod
    def _cpu() -> dict[int, float]:
        import psutil

        found = {}
        for process in psutil.process_iter(["cmdline", "cpu_times"]):
            command = " ".join(process.info.get("cmdline") or [])
            if "walsender" in command and process.info.get("cpu_times"):
                found[process.pid] = process.info["cpu_times"].user + process.info["cpu_times"].system
        return found

    def per_minute(self) -> float:
        after = self._cpu()
        spent = sum(after[pid] - self.before.get(pid, 0.0) for pid in after)
        return spent / ((time.monotonic() - self.started) / 60)


def write_connector(folder: Path, name: str, tables: list[str], **settings) -> None:
    """A connector file capturing ``tables``; ``settings`` are top-level pipeline settings (``queue``, ...)."""
    document = json.loads((ROOT / "include" / "connectors" / "clientes.json").read_text())
    document["name"] = name
    document.update(settings)
    document["config"].update({"table.include.list": ",".join(f"public.{t}" for t in tables), "topic.prefix": name,
                               "slot.name": f"slot_{name}", "publication.name": f"pub_{name}"})
    (folder / f"{name}.json").write_text(json.dumps(document, indent=2))


def retire(settings, names: list[str]) -> None:
    """Delete the connectors and drop their slots, as the tests do."""
    import httpx
    import psycopg

    for name in names:
        httpx.delete(f"{settings.connect_url}/connectors/{name}", timeout=30)
    with psycopg.connect(settings.pg_conninfo, autocommit=True) as conn:
        def dropped() -> bool:
            rows = conn.execute("SELECT slot_name, active, active_pid FROM pg_replication_slots WHERE slot_name = ANY(%s)",
                                ([f"slot_{n}" for n in names],)).fetchall()
            for slot, active, pid in rows:
                if active:
                    conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
                else:
                    conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            return not rows

        wait(dropped, what="the benchmark's slots to be dropped", timeout=120)


def dag_runs(api, dag_id: str) -> list[dict]:
    return api.request("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 1000}).json()["dag_runs"]


def run_in_flight(api, dag_id: str, since: float) -> bool:
    return any(run.get("start_date") and not run.get("end_date") and epoch(run["start_date"]) >= since
               for run in dag_runs(api, dag_id))


def run_durations(api, dag_id: str, since: float) -> list[float]:
    durations = []
    for run in dag_runs(api, dag_id):
        start, end = epoch(run.get("start_date")), epoch(run.get("end_date"))
        if start and end and start >= since:
            durations.append(end - start)
    return durations


def epoch(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def pct(values: list[float], p: int) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, -(-len(ordered) * p // 100) - 1)], 1)


def wait(check, *, what: str, timeout: float, interval: float = 1.0):
    from cdc_pipeline.waiting import wait_until

    return wait_until(check, what=what, timeout=timeout, interval=interval)


PLOTTED = (("snapshot_s", "snapshot (s)"), ("idle_cpu_over_floor", "idle CPU-s per minute over the floor"),
           ("load_cpu_s_per_min", "CPU-s per minute under load"), ("run_p95_s", "run duration p95 (s)"),
           ("freshness_p95_s", "freshness p95 (s)"), ("walsender_cpu_s_per_min", "walsender CPU-s per minute"))


def plot(result: dict, output: Path) -> None:
    """Each figure against the number of tables: one connector, and one connector per table where measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(int(n) for n in result["sizes"])
    figure, axes = plt.subplots(2, 3, figsize=(13, 7))
    for axis, (key, title) in zip(axes.flat, PLOTTED):
        for layout, style in (("one_connector", "o-"), ("one_connector_per_table", "s--")):
            points = [(n, result["sizes"][str(n)][layout].get(key)) for n in sizes
                      if layout in result["sizes"][str(n)] and result["sizes"][str(n)][layout].get(key) is not None]
            if points:
                axis.plot(*zip(*points), style, label=layout.replace("_", " "))
        if key == "freshness_p95_s":
            axis.axhline(90, linestyle=":", color="grey", label="target: 90 s")
        axis.set(xscale="log", xlabel="tables", title=title)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(f"Many tables on one connector: {result['setup']['rows']:,} rows each, "
                    f"{result['setup']['rate']:g} updates/s spread over the tables, {result['setup']['cpus']} CPUs")
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
