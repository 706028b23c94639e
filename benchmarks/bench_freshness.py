"""Freshness under the one-minute schedule in a real Airflow: source commit -> row in destiny.csv, and idle runs.

Starts the whole local stack on free ports in a temporary home (PostgreSQL, Apache Kafka, Kafka Connect, Airflow 3
standalone, through devstack), with one connector file of its own (table ``public.fresh_events``: id,
version, note, written_at), unpauses its DAG and waits until a first row has come through. Then, for
``--minutes``, it commits ``--rate`` changes a second, one transaction each (an insert of a new id, or an
update of a recent one that raises its version), noting the wall time right after each commit; a watcher
polls destiny.csv every 0.1 s (it is swapped in whole: a hard link to the live generation) and notes when
each (id, version) first appears. A change's delay is the first time destiny.csv holds its version or a
later one, minus its commit time. After the load it waits for the backlog to drain and for ``--idle-runs``
scheduled runs that found nothing to do; a run's time is Airflow's start_date to end_date.

Prints progress, then as its LAST line one JSON object (``p50_s``, ``p95_s``, ``idle_run_s``, ...). Asserts
nothing. ``--recording FILE`` keeps what was measured (commits, sightings, runs and their tasks) so that
``--replay FILE`` recomputes the figures without a stack; the test suite replays a recorded run.

Run:    .venv/bin/python benchmarks/bench_freshness.py [--minutes 10] [--rate 20] [--idle-runs 3]
                     [--airflow-setting AIRFLOW__SECTION__KEY=VALUE ...] [--recording FILE]
Replay: .venv/bin/python benchmarks/bench_freshness.py --replay FILE
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NAME = "fresh"
TABLE = "public.fresh_events"
DAG_ID = f"cdc_{NAME}"
POLL_S = 0.1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the load runs")
    parser.add_argument("--rate", type=float, default=20.0, help="committed changes a second")
    parser.add_argument("--idle-runs", type=int, default=3, help="scheduled runs with nothing to do to time")
    parser.add_argument("--airflow-setting", action="append", default=[], metavar="AIRFLOW__SECTION__KEY=VALUE",
                        help="an Airflow setting for this run's Airflow (repeatable), e.g. to try a scheduler knob")
    parser.add_argument("--kafka-setting", action="append", default=[], metavar="KEY=VALUE",
                        help="a librdkafka setting added to the cdc_kafka connection (repeatable), e.g. to try a "
                             "consumer default before the pipeline sets it")
    parser.add_argument("--recording", type=Path, help="write what was measured to this JSON file")
    parser.add_argument("--replay", type=Path, help="recompute the figures of a recording (.json or .json.gz); "
                                                    "starts nothing")
    args = parser.parse_args()
    if args.replay:
        raw = args.replay.read_bytes()
        recording = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    else:
        recording = record(args)
        if args.recording:
            args.recording.write_text(json.dumps(recording))
    figures = measure(recording)
    print(json.dumps(figures))


# --- what the figures are, from a recording (no stack needed) -------------------------------------------------

def measure(recording: dict) -> dict:
    """The figures of one recorded run: delays of the load's changes and the times of idle and busy runs."""
    first_seen: dict[int, list[tuple[int, float]]] = {}
    for key, version, seen in recording["sightings"]:
        first_seen.setdefault(key, []).append((version, seen))
    delays, missing = [], 0
    for key, version, committed in recording["commits"]:
        # Reflected once destiny.csv holds this version or a later one (a later update may supersede it in
        # the same batch, so this exact version is never seen).
        times = [seen for seen_version, seen in first_seen.get(key, ()) if seen_version >= version]
        if times:
            delays.append(min(times) - committed)
        else:
            missing += 1
    runs = recording["runs"]
    idle = [r for r in runs if r.get("events") == 0 and r["state"] == "success"]
    busy = [r for r in runs if r.get("events") and r["state"] == "success"]
    figures = {
        "changes": len(recording["commits"]),
        "measured": len(delays),
        "missing": missing,
        "p50_s": _round(_percentile(delays, 50)),
        "p95_s": _round(_percentile(delays, 95)),
        "p99_s": _round(_percentile(delays, 99)),
        "max_s": _round(max(delays) if delays else None),
        "mean_s": _round(statistics.fmean(delays) if delays else None),
        "idle_run_s": _round(max((r["end"] - r["start"] for r in idle), default=None)),
        "idle_runs_s": [_round(r["end"] - r["start"]) for r in idle],
        "busy_run_median_s": _round(statistics.median([r["end"] - r["start"] for r in busy]) if busy else None),
        "busy_merge_done_median_s": _round(_median_task_end(busy, "merge_batch")),
        "start_lag_median_s": _round(statistics.median([r["start"] - r["scheduled"] for r in runs]) if runs else None),
        "idle_tasks": _task_profile(idle),
        "busy_tasks": _task_profile(busy),
        "runs": len(runs),
        "failed_runs": sum(1 for r in runs if r["state"] != "success"),
        **recording.get("setup", {}),
    }
    return figures


def _percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every figure is a delay that happened)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def _median_task_end(runs: list[dict], task_id: str) -> float | None:
    ends = [t["end"] - r["start"] for r in runs for t in r["tasks"] if t["task_id"] == task_id and t.get("end")]
    return statistics.median(ends) if ends else None


def _task_profile(runs: list[dict]) -> dict[str, dict[str, float | None]]:
    """Per task, medians over the runs: queued after the run start, start lag after queued, run time."""
    profile: dict[str, dict[str, float | None]] = {}
    task_ids = sorted({t["task_id"] for r in runs for t in r["tasks"]})
    for task_id in task_ids:
        rows = [(r, t) for r in runs for t in r["tasks"] if t["task_id"] == task_id and t.get("start") and t.get("end")]
        if not rows:
            continue
        profile[task_id] = {
            "queued_after_run_start_s": _round(statistics.median([t["queued"] - r["start"] for r, t in rows if t.get("queued")] or [0])),
            "start_after_queued_s": _round(statistics.median([t["start"] - t["queued"] for _, t in rows if t.get("queued")] or [0])),
            "duration_s": _round(statistics.median([t["end"] - t["start"] for _, t in rows])),
            "ended_after_run_start_s": _round(statistics.median([t["end"] - r["start"] for r, t in rows])),
        }
    return profile


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# --- the live measurement ----------------------------------------------------------------------------------------

def record(args: argparse.Namespace) -> dict:
    from devstack.airflow_api import AirflowClient
    from devstack.stack import Stack
    from devstack.testing import make_test_settings

    connectors = Path(tempfile.mkdtemp(prefix="bench-fresh-connectors-"))
    _write_connector(connectors)
    settings = make_test_settings(prefix="cdc-bench-fresh-", connectors_dir=connectors)
    for setting in args.airflow_setting:  # passed through: the launcher only sets the variables it owns
        key, _, value = setting.partition("=")
        os.environ[key] = value
    if args.kafka_setting:
        _extend_kafka_connection(settings, dict(s.split("=", 1) for s in args.kafka_setting))
    stack = Stack(settings)
    try:
        started = time.monotonic()
        stack.start(["postgres", "broker", "connect"])
        source = Source(settings.pg_conninfo)
        source.create_table()
        stack.start(["airflow"])
        print(f"stack up in {time.monotonic() - started:.0f} s", flush=True)
        destiny = settings.data_dir / NAME / "destiny.csv"
        watcher = Watcher(destiny)
        watcher.start()
        with AirflowClient(settings.airflow_url, settings.airflow_user, settings.airflow_password) as api:
            _wait_for_dag(api)
            api.unpause(DAG_ID)
            warm_up_started = time.time()
            source.change(0, 1)
            _wait(lambda: watcher.seen(0, 1), what="the first row to reach destiny.csv", timeout=600)
            print(f"pipeline live after {time.time() - warm_up_started:.0f} s; load: {args.rate:g} changes/s for "
                  f"{args.minutes:g} min", flush=True)
            load_started = time.time()
            commits = Load(source, args.rate).run(args.minutes * 60)
            load_ended = time.time()
            print(f"{len(commits):,} changes committed; waiting for them to reach destiny.csv", flush=True)
            last_id, last_version, _ = commits[-1]
            _wait(lambda: watcher.seen(last_id, last_version) and all(watcher.seen(k, v) for k, v, _ in commits[-200:]),
                  what="the last changes to reach destiny.csv", timeout=600)
            drained = time.time()
            print(f"drained {drained - load_ended:.0f} s after the load; timing {args.idle_runs} idle runs", flush=True)
            runs = _wait(lambda: (found := _runs(api)) and sum(1 for r in found if r["start"] > drained + 1
                                                               and r["state"] in ("success", "failed")) >= args.idle_runs
                         and found, what=f"{args.idle_runs} scheduled runs after the drain", timeout=args.idle_runs * 60 + 240)
            api.set_paused(DAG_ID, True)
        watcher.stop()
    finally:
        stack.stop()
        shutil.rmtree(settings.stack_home, ignore_errors=True)
        shutil.rmtree(connectors, ignore_errors=True)
    return {
        "commits": [[k, v, t] for k, v, t in commits],
        "sightings": watcher.sightings(),
        "runs": [r for r in runs if r["start"] >= load_started - 60],
        "setup": {"minutes": args.minutes, "rate": args.rate, "airflow_settings": args.airflow_setting,
                  "kafka_settings": args.kafka_setting,
                  "machine": f"{os.cpu_count()} cpu, {platform.python_implementation()} {platform.python_version()}"},
    }


def _extend_kafka_connection(settings, extra: dict[str, str]) -> None:
    """The launcher's cdc_kafka connection plus ``extra``, served by a local-file secrets backend, which Airflow
    asks before the AIRFLOW_CONN_* variables the launcher sets."""
    from devstack.airflow import airflow_environment

    connection = json.loads(airflow_environment(settings)["AIRFLOW_CONN_CDC_KAFKA"])
    connection["extra_dejson"] = {**connection.pop("extra"), **extra}
    path = settings.stack_home / "connections.json"  # not beside the connector files: each is a DAG
    path.write_text(json.dumps({"cdc_kafka": connection}))
    os.environ["AIRFLOW__SECRETS__BACKEND"] = "airflow.secrets.local_filesystem.LocalFilesystemBackend"
    os.environ["AIRFLOW__SECRETS__BACKEND_KWARGS"] = json.dumps({"connections_file_path": str(path)})


def _write_connector(folder: Path) -> None:
    shipped = json.loads((ROOT / "include" / "connectors" / "clientes.json").read_text())
    shipped["name"] = NAME
    shipped["config"].update({"table.include.list": TABLE, "topic.prefix": NAME, "slot.name": f"slot_{NAME}",
                              "publication.name": f"pub_{NAME}"})
    (folder / f"{NAME}.json").write_text(json.dumps(shipped, indent=2))


class Source:
    """The source table, and one change per transaction."""

    def __init__(self, conninfo: str) -> None:
        import psycopg

        self.connection = psycopg.connect(conninfo, autocommit=True)

    def create_table(self) -> None:
        self.connection.execute(f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, version integer NOT NULL, "
                                "note text, written_at timestamptz NOT NULL DEFAULT clock_timestamp())")

    def change(self, key: int, version: int) -> float:
        """Insert (version 1) or update the row to ``version``; answer the wall time right after the commit."""
        if version == 1:
            self.connection.execute(f"INSERT INTO {TABLE} (id, version, note) VALUES (%s, 1, %s)", (key, f"row {key}"))
        else:
            self.connection.execute(f"UPDATE {TABLE} SET version = %s, written_at = clock_timestamp() WHERE id = %s",
                                    (version, key))
        return time.time()


class Load:
    """``rate`` changes a second, evenly spaced: 70 % inserts, 30 % updates of one of the last 500 rows."""

    def __init__(self, source: Source, rate: float) -> None:
        self.source = source
        self.rate = rate
        self.rng = random.Random(1)

    def run(self, seconds: float) -> list[tuple[int, int, float]]:
        commits: list[tuple[int, int, float]] = []
        versions: dict[int, int] = {}
        next_id = 1
        started = time.monotonic()
        for number in range(int(seconds * self.rate)):
            pause = started + number / self.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if versions and self.rng.random() < 0.3:
                key = self.rng.choice(list(versions)[-500:])
                versions[key] += 1
            else:
                key, next_id = next_id, next_id + 1
                versions[key] = 1
            commits.append((key, versions[key], self.source.change(key, versions[key])))
        return commits


class Watcher(threading.Thread):
    """Polls destiny.csv; notes when each (id, version) first appears in it."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True, name="destiny-watcher")
        self.path = path
        self._first: dict[tuple[int, int], float] = {}
        self._latest: dict[int, int] = {}
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        last = None
        while not self._halt.is_set():
            try:
                stat = self.path.stat()
                identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
                if identity != last:
                    text = self.path.read_text(encoding="utf-8")
                    now = time.time()
                    last = identity
                    self._note(text, now)
            except FileNotFoundError:
                pass
            self._halt.wait(POLL_S)

    def _note(self, text: str, now: float) -> None:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header is None:
            return
        id_at, version_at = header.index("id"), header.index("version")
        with self._lock:
            for row in reader:
                key = (int(row[id_at]), int(row[version_at]))
                if key not in self._first:
                    self._first[key] = now
                    self._latest[key[0]] = max(self._latest.get(key[0], 0), key[1])

    def seen(self, key: int, version: int) -> bool:
        with self._lock:
            return self._latest.get(key, 0) >= version

    def sightings(self) -> list[list]:
        with self._lock:
            return [[k, v, t] for (k, v), t in sorted(self._first.items())]

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def _wait_for_dag(api) -> None:
    _wait(lambda: any(d["dag_id"] == DAG_ID for d in api.list_dags()), what=f"the DAG {DAG_ID} to be parsed",
          timeout=180)


def _runs(api) -> list[dict]:
    """The DAG's scheduled runs with their tasks' times (epoch seconds) and the events each consumed."""
    found = api.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns", params={"limit": 1000}).json()["dag_runs"]
    runs = []
    for run in found:
        if run.get("run_type") != "scheduled" or not run.get("start_date"):
            continue
        entry = {"run_id": run["dag_run_id"], "state": run["state"], "start": _epoch(run["start_date"]),
                 "end": _epoch(run.get("end_date")), "scheduled": _epoch(run.get("run_after") or run.get("data_interval_end"))}
        if entry["end"] is None:
            entry["state"] = "running"
        entry["tasks"] = [{"task_id": t["task_id"], "state": t.get("state"), "queued": _epoch(t.get("queued_when")),
                           "start": _epoch(t.get("start_date")), "end": _epoch(t.get("end_date"))}
                          for t in api.task_instances(DAG_ID, run["dag_run_id"])]
        entry["events"] = _consumed_events(api, run["dag_run_id"])
        runs.append(entry)
    return sorted(runs, key=lambda r: r["start"])


def _consumed_events(api, run_id: str) -> int | None:
    try:
        value = api.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/consume_batch/xcomEntries/"
                                   "return_value").json()["value"]
    except Exception:  # noqa: BLE001 - a run that failed or is still running has no summary
        return None
    summary = value if isinstance(value, dict) else json.loads(value)
    return summary.get("events")


def _epoch(text: str | None) -> float | None:
    return None if not text else datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _wait(check, *, what: str, timeout: float):
    from cdc_pipeline.waiting import wait_until

    return wait_until(check, what=what, timeout=timeout, interval=1.0)


if __name__ == "__main__":
    main()
