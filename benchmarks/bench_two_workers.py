"""The same many-table load on one Celery worker and on two, each worker with its own queue and data folder.

Starts the local stack's services on free ports in a temporary home (PostgreSQL, Apache Kafka, Kafka Connect) and,
for each layout, an Airflow on the CeleryExecutor (devstack/celery_airflow.py: Redis, api-server, scheduler,
dag-processor) with its workers:

- ``one_worker``: one worker serving both queues (``--queues host-a,host-b``), one data folder;
- ``two_workers``: worker-a serving host-a and worker-b serving host-b, each with its own data folder.

Two connectors of ``--tables`` tables each (``bench_a<i>``, ``bench_b<i>``; id, version, note; ``--rows`` rows),
one on queue host-a and one on host-b. Per layout: its floor first (the workers up, no pipeline: CPU-s per minute
of the whole machine and of each worker's process tree), then the snapshot, then ``--load-seconds`` at ``--rate``
updates a second spread over every table: the machine's and each worker's CPU-s per minute, and freshness (one
change a second watched for in its table's destiny.csv; delay = first seen - commit), p50 and p95.

Both layouts share this machine's cores: the figures show how the work splits over the workers and that freshness
holds, not a speed-up (that needs a second machine). A worker's CPU counts its main process and its pool
processes with the task processes they have reaped; a task still running at the end is left out (under a second).

Prints progress, then as its LAST line one JSON object: per layout ``floor_cpu_s_per_min``,
``floor_worker_cpu_s_per_min``, ``snapshot_s``, ``load_cpu_s_per_min``, ``load_cpu_over_floor``,
``worker_cpu_s_per_min`` (by worker), ``freshness_p50_s``, ``freshness_p95_s``, ``samples``. Asserts nothing.

Run: .venv/bin/python benchmarks/bench_two_workers.py [--tables 10] [--rows 2000] [--rate 40]
                      [--floor-seconds 60] [--load-seconds 120] [--layouts one_worker,two_workers]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_many_tables import (  # noqa: E402
    Load, Source, Watcher, cpu_seconds, pct, retire, rows_in, wait, write_connector,
)

SERVICES = ["postgres", "broker", "connect"]
LAYOUTS = {"one_worker": [("host-a,host-b", "worker-1")],
           "two_workers": [("host-a", "worker-a"), ("host-b", "worker-b")]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=10, help="tables per connector (two connectors)")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=40.0, help="updates per second over every table")
    parser.add_argument("--floor-seconds", type=float, default=60.0)
    parser.add_argument("--load-seconds", type=float, default=120.0)
    parser.add_argument("--layouts", default="one_worker,two_workers",
                        help="which layouts, in this order (the first one also warms Kafka and Connect up)")
    args = parser.parse_args()
    print(json.dumps(run(args)), flush=True)


def run(args: argparse.Namespace) -> dict:
    from devstack.stack import Stack
    from devstack.testing import make_test_settings

    settings = make_test_settings(prefix="cdc-bench-workers-")
    stack = Stack(settings)
    results: dict = {"setup": {"tables_per_connector": args.tables, "rows": args.rows, "rate": args.rate,
                               "floor_s": args.floor_seconds, "load_s": args.load_seconds, "cpus": os.cpu_count()},
                     "layouts": {}}
    try:
        stack.start(SERVICES)
        source = Source(settings.pg_conninfo)
        for layout in args.layouts.split(","):
            workers = LAYOUTS[layout]
            figures = measure_layout(settings, source, layout, workers, args)
            results["layouts"][layout] = figures
            print(f"{layout}: {figures}", flush=True)
    finally:
        stack.stop()
        shutil.rmtree(settings.stack_home, ignore_errors=True)
    return results


def measure_layout(settings, source: Source, layout: str, workers: list[tuple[str, str]],
                   args: argparse.Namespace) -> dict:
    from devstack.celery_airflow import CeleryAirflow, CeleryWorker

    home = Path(tempfile.mkdtemp(prefix=f"cdc-bench-{layout}-"))
    connectors = home / "connectors"
    airflow = CeleryAirflow(settings, home, connectors,
                            [CeleryWorker(queue, name, home / f"disk-{name}") for queue, name in workers])
    tables = {"a": [f"bench_a{i}" for i in range(args.tables)], "b": [f"bench_b{i}" for i in range(args.tables)]}
    names = {side: f"bench_{layout}_{side}" for side in tables}
    try:
        airflow.start()
        time.sleep(15)  # let the just-started scheduler settle before the floor
        floor = Cpu(airflow).per_minute(args.floor_seconds)
        print(f"  {layout} floor: {floor}", flush=True)
        destinies = {}
        for side, side_tables in tables.items():
            source.create_tables(side_tables, args.rows)
            connectors.mkdir(parents=True, exist_ok=True)
            write_connector(connectors, names[side], side_tables, queue=f"host-{side}", max_table_tasks=4)
            disk = next(w.data_dir for w in airflow.workers.values() if f"host-{side}" in w.queue.split(","))
            for table in side_tables:
                destinies[table] = disk / names[side] / f"public.{table}" / "destiny.csv"
        with airflow.client() as api:
            dag_ids = [f"cdc_{name}" for name in names.values()]
            for dag_id in dag_ids:
                api.wait_for_dag(dag_id, timeout=300)
            began = time.time()
            for dag_id in dag_ids:
                api.trigger(dag_id)
            wait(lambda: all(rows_in(path) >= args.rows for path in destinies.values()),
                 what=f"{len(destinies)} tables to be snapshotted", timeout=1800, interval=5)
            snapshot_s = time.time() - began
            print(f"  {layout}: {len(destinies)} tables snapshotted in {snapshot_s:.0f} s", flush=True)
            watcher = Watcher(destinies)
            watcher.start()
            cpu = Cpu(airflow)
            every_table = [t for side in tables.values() for t in side]
            samples = Load(source, every_table, args.rows, args.rate, watcher).run(args.load_seconds)
            load = cpu.since_start()
            wait(lambda: watcher.pending() == 0, what="the sampled changes to reach destiny.csv", timeout=900,
                 interval=2)
            watcher.stop()
            for dag_id in dag_ids:
                api.set_paused(dag_id, True)
        delays = watcher.delays(samples)
        return {
            "workers": [name for _, name in workers],
            "floor_cpu_s_per_min": floor["machine"], "floor_worker_cpu_s_per_min": floor["workers"],
            "snapshot_s": round(snapshot_s, 1), "load_cpu_s_per_min": load["machine"],
            "load_cpu_over_floor": round(load["machine"] - floor["machine"], 1),
            "worker_cpu_s_per_min": load["workers"], "samples": len(delays),
            "freshness_p50_s": pct(delays, 50), "freshness_p95_s": pct(delays, 95),
        }
    finally:
        airflow.stop()
        retire(settings, list(names.values()))
        for side_tables in tables.values():
            source.drop_tables(side_tables)
        shutil.rmtree(home, ignore_errors=True)


class Cpu:
    """CPU-seconds of the whole machine (/proc/stat) and of each worker's process tree, from now on."""

    def __init__(self, airflow) -> None:
        self.airflow = airflow
        self.started = time.monotonic()
        self.machine = cpu_seconds()
        self.workers = {name: worker_cpu(airflow.pids[f"worker-{name}"]) for name in airflow.workers}

    def since_start(self) -> dict:
        minutes = (time.monotonic() - self.started) / 60
        return {"machine": round((cpu_seconds() - self.machine) / minutes, 1),
                "workers": {name: round((worker_cpu(self.airflow.pids[f"worker-{name}"]) - before) / minutes, 1)
                            for name, before in self.workers.items()}}

    def per_minute(self, seconds: float) -> dict:
        time.sleep(seconds)
        return self.since_start()


def worker_cpu(pid: int) -> float:
    """A Celery worker's CPU-seconds: its main process and its pool processes, each with what the task processes it
    reaped used (psutil's children_user/children_system)."""
    import psutil

    total = 0.0
    main = psutil.Process(pid)
    for process in [main, *main.children()]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


if __name__ == "__main__":
    main()
