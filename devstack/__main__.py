"""``python -m devstack`` (what ./stack calls): up, start, status, logs, stop, reset, demo-load."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from cdc_pipeline.errors import CdcError, WaitTimeout
from cdc_pipeline.layout import PipelineLayout
from devstack import process
from devstack.airflow import dag_files
from devstack.connect import connector_statuses
from devstack.demo import run_demo
from devstack.errors import StackError
from devstack.recorded import RECORD_PATH, forget_recorded, read_recorded, record_settings
from devstack.settings import StackSettings
from devstack.stack import PART_NAMES, Stack

COMMANDS_HELP = """\
Other commands:
  ./stack status                 each part's health check, each connector's and pipeline's state (exit 1 if not all OK)
  ./stack logs [part] [-n N]     last N lines of a part's log (all parts without a name)
  ./stack start [part...]        start some parts only (postgres broker connect airflow)
  ./stack demo-load [--count N] [--rate R]   inserts/updates/deletes on the demo tables
  ./stack stop [part...]         drain every pipeline, then stop everything; data kept (named parts: only those)
  ./stack reset                  stop and delete all local state and the recorded settings
  ./stack test [pytest args]     run the tests"""


def destiny_paths(settings: StackSettings) -> list[Path]:
    """Each table's destiny.csv: a connector's, or one per table when it captures several (a broken connector
    file: the folder its name, else its file name, gives)."""
    from cdc_pipeline.connector_spec import load_connector_files
    from cdc_pipeline.pipeline import connector_pipelines

    paths = []
    for path, spec in load_connector_files(settings.connectors_dir, settings.data_dir):
        if isinstance(spec, Exception):
            paths.append(PipelineLayout.under(settings.data_dir, _connector_name(path)).destiny)
        else:
            paths += [pipe.layout.destiny for pipe in connector_pipelines(settings.data_dir, spec)]
    return paths


def _connector_name(path: Path) -> str:
    try:
        return str(json.loads(path.read_text())["name"])
    except (ValueError, KeyError, TypeError):
        return path.stem


def cmd_up(stack: Stack, args: argparse.Namespace) -> int:
    began = time.monotonic()
    _record(stack, args, "./stack up")
    stack.start()
    s = stack.settings
    with stack["airflow"].client() as client:  # type: ignore[attr-defined]
        dags = client.list_dags()
        unpause_paused(client, dags)
        errors = client.import_errors()
        # The pipelines run once now; the operations DAGs only when someone triggers them with a form, the backfill
        # DAGs only for a backfill.
        pipelines = [d["dag_id"] for d in dags
                     if not {"operations", "backfill"} & {t.get("name") for t in d.get("tags") or []}]
        first_runs = _run_once(client, pipelines) if pipelines and not args.no_run else {}
    print(f"\nLocal stack is up in {time.monotonic() - began:.0f} s (state in {s.stack_home}).")
    print(f"  Airflow UI   {s.airflow_url}/   login {s.airflow_user} / {s.airflow_password}")
    print(f"  PostgreSQL   127.0.0.1:{s.pg_port} db {s.pg_db} (sink db {s.sink_db}) user {s.pg_user}, "
          f"password CDC_PG_PASSWORD in {args.recorded.path}")
    print(f"  Kafka        {s.kafka_bootstrap}      Kafka Connect {s.connect_address} (user {s.connect_user})")
    if dags:
        print(f"  DAGs unpaused: {', '.join(d['dag_id'] for d in dags)}")
    elif not dag_files(s):
        print(f"  No DAG files in {s.dags_folder} yet.")
    for error in errors:
        print(f"  DAG import error in {error['filename']}:\n{error.get('stack_trace', '')}")
    for dag_id, state in first_runs.items():
        print(f"  First run of {dag_id}: {state}")
    print(f"  CSV output   $CDC_DATA_DIR/<connector name>/buffer.csv and destiny.csv, here {s.data_dir}/<name>/ "
          "(<name>/<schema>.<table>/ for a connector of several tables)")
    for path in destiny_paths(s):
        print(f"               {path}")
    print("  Stop with    ./stack stop   (data kept; ./stack reset deletes it)\n")
    print(COMMANDS_HELP)
    return 0


def unpause_paused(client, dags: list[dict]) -> list[str]:
    """Unpause the DAGs that are paused (new DAGs start paused); returns their ids."""
    unpaused = [dag["dag_id"] for dag in dags if dag.get("is_paused")]
    for dag_id in unpaused:
        client.unpause(dag_id)
    return unpaused


def _run_once(client, dag_ids: list[str], timeout: float = 300.0) -> dict[str, str]:
    """Trigger one run of each DAG and wait for it, so `up` ends with the pipeline shown working."""
    states = {}
    for dag_id in dag_ids:
        try:
            run_id = client.trigger(dag_id)
            print(f"waiting for a first run of {dag_id} (registers the connector, snapshots the table)...")
            states[dag_id] = client.wait_for_run(dag_id, run_id, timeout=timeout)
        except (StackError, WaitTimeout) as exc:
            states[dag_id] = f"not finished ({exc}); see the Airflow UI"
    return states


def _record(stack: Stack, args: argparse.Namespace, command: str) -> None:
    """Record the settings before starting anything, so a half-started stack is found by later commands."""
    args.recorded = record_settings(stack.settings, os.environ, args.recorded, command)


def cmd_start(stack: Stack, args: argparse.Namespace) -> int:
    _record(stack, args, "./stack start")
    for result in stack.start(args.parts):
        print(f"{result.name:9} {'reused' if result.reused else 'started'} pid {result.pid} ({result.seconds:.1f} s)")
    return 0


def cmd_status(stack: Stack, args: argparse.Namespace) -> int:
    """Every part's real check, every connector's and task's state; exit 1 if anything is down or not RUNNING."""
    print(args.recorded.describe())
    print(f"state: {stack.settings.stack_home}")
    statuses = stack.status()
    for status in statuses:
        print(status.line())
    healthy = all(st.running and st.healthy for st in statuses)
    connect = next(st for st in statuses if st.name == "connect")
    if connect.running and connect.healthy:
        connectors_ok, lines = connector_lines(stack.settings)
        healthy = healthy and connectors_ok
        for line in lines:
            print(line)
    pipelines_ok, lines = pipeline_lines(stack.settings)
    healthy = healthy and pipelines_ok
    for line in lines:
        print(line)
    return 0 if healthy else 1


def connector_lines(settings: StackSettings) -> tuple[bool, list[str]]:
    """One line per connector and per task; False when any is not RUNNING (or Connect does not answer)."""
    try:
        connectors = connector_statuses(settings)
    except Exception as exc:  # status reports, never raises
        return False, [f"connectors: Kafka Connect did not list them ({type(exc).__name__}: {exc})"]
    if not connectors:
        return True, ["connectors: none registered yet (each DAG run registers its connector)"]
    lines = ["connectors:"]
    for connector in connectors:
        lines.append(f"  {connector.name:20} {_connector_mark(connector)}")
        lines += [f"  {'':20}    task {task.get('id')} {task.get('state')} on {task.get('worker_id', '?')}"
                  for task in connector.tasks] or [f"  {'':20}    no tasks"]
        if connector.trace or connector.failed_tasks:
            trace = connector.trace or connector.failed_tasks[0].get("trace") or ""
            lines.append(f"  {'':20}    {trace.splitlines()[0] if trace else ''}")
    return all(c.is_running for c in connectors), lines


def _connector_mark(connector) -> str:
    """``ok connector RUNNING``, or NOT RUNNING naming what is not: the connector, or which task."""
    if connector.is_running:
        return f"ok connector {connector.state}"
    if connector.state != "RUNNING":
        return f"NOT RUNNING connector {connector.state}"
    stuck = [f"task {t.get('id')} {t.get('state')}" for t in connector.tasks if t.get("state") != "RUNNING"]
    return f"NOT RUNNING: {', '.join(stuck) or 'no tasks'} (connector RUNNING)"


def pipeline_lines(settings: StackSettings) -> tuple[bool, list[str]]:
    """Per-pipeline status lines (cdc_pipeline.commands.status: backlog, data as of, last merge, ...), one block per table
    of a connector that captures several, and False when a pipeline is not healthy."""
    from cdc_pipeline.commands.cli import connector_probes
    from cdc_pipeline.connector_spec import load_connector_files
    from cdc_pipeline.environment import PipelineEnvironment
    from cdc_pipeline.pipeline import connector_pipelines
    from cdc_pipeline.commands.status import table_statuses

    env = PipelineEnvironment.load(env=settings.as_env())
    healthy, lines = True, []
    for path, spec in load_connector_files(env.connectors_dir, env.data_dir):
        if isinstance(spec, Exception):
            healthy = False
            lines.append(f"{path.name}: INVALID CONNECTOR FILE: {spec}")
            continue
        try:
            with connector_probes(env, spec) as probes_of:
                statuses = table_statuses(connector_pipelines(env.data_dir, spec), probes_of)
        except Exception as exc:  # status reports, never raises
            healthy = False
            lines.append(f"{spec.name}: status unavailable: {exc}")
            continue
        for status in statuses:
            healthy = healthy and (status.healthy or status.state == "not started")
            lines += status.lines()
    return healthy, lines


def cmd_logs(stack: Stack, args: argparse.Namespace) -> int:
    for name in [args.part] if args.part else PART_NAMES:
        path = stack[name].log_path
        print(f"==> {path} <==")
        print(process.log_tail(path, args.lines) or "(no log yet)")
    return 0


def cmd_stop(stack: Stack, args: argparse.Namespace) -> int:
    # Named parts stop alone (PostgreSQL with a fast shutdown), without a drain: the broker keeps every event.
    stopped = stack.stop(args.parts) if args.parts else stack.stop_draining(report=print)
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def cmd_reset(stack: Stack, args: argparse.Namespace) -> int:
    contents = {p: sorted(c.name for c in p.iterdir()) for p in (stack.settings.stack_home, stack.settings.data_dir)
                if p.is_dir()}
    deleted = stack.reset()
    if forget_recorded(args.recorded.path):  # the default home holds it, and is gone with it
        deleted.append(args.recorded.path)
    for path in deleted:
        inside = contents.get(path)
        print(f"deleted {path}" + (f" ({', '.join(inside)})" if inside else ""))
    if not deleted:
        print(f"nothing to delete ({stack.settings.stack_home} does not exist)")
    return 0


def cmd_demo_load(stack: Stack, args: argparse.Namespace) -> int:
    summary = run_demo(stack.settings, count=args.count, rate=args.rate, seed=args.seed, report=print)
    print(f"done: {summary.inserts} inserts, {summary.updates} updates, {summary.deletes} deletes")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="./stack", description="The local, Docker-free CDC stack.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start everything, unpause the DAGs, run each once, print where things are")
    up.add_argument("--no-run", action="store_true", help="do not trigger and wait for a first run")
    up.set_defaults(func=cmd_up)
    start = sub.add_parser("start", help="start some parts (default all)")
    start.add_argument("parts", nargs="*", metavar="part", help=f"any of {', '.join(PART_NAMES)}")
    start.set_defaults(func=cmd_start)
    sub.add_parser("status", help="real health check of each part, connector and pipeline; exit 1 unless all are OK"
                   ).set_defaults(func=cmd_status)
    logs = sub.add_parser("logs", help="tail of a part's log")
    logs.add_argument("part", nargs="?", choices=PART_NAMES)
    logs.add_argument("-n", "--lines", type=int, default=40)
    logs.set_defaults(func=cmd_logs)
    stop = sub.add_parser("stop", help="stop everything, keep data; pipelines are drained first so the files are "
                                       "current. With part names, stop only those (no drain)")
    # No choices=: argparse refuses an empty list against them; Stack.stop names the unknown part instead.
    stop.add_argument("parts", nargs="*", metavar="part",
                      help=f"one of {', '.join(PART_NAMES)} (default: all, after a drain)")
    stop.set_defaults(func=cmd_stop)
    sub.add_parser("reset", help="stop and delete all local state and the recorded settings"
                   ).set_defaults(func=cmd_reset)
    demo = sub.add_parser("demo-load", help="a bounded stream of changes on the demo tables (clientes, productos, pedidos)")
    demo.add_argument("--count", type=int, default=60, help="number of changes (default 60)")
    demo.add_argument("--rate", type=float, default=2.0, help="changes per second (default 2)")
    demo.add_argument("--seed", type=int, default=None, help="random seed, for a repeatable stream")
    demo.set_defaults(func=cmd_demo_load)
    return parser


def main(argv: list[str] | None = None, record_path: Path = RECORD_PATH) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        # Explicit environment > the settings `up` recorded > defaults.
        args.recorded = read_recorded(record_path)
        return args.func(Stack(StackSettings.load(recorded=args.recorded.values)), args)
    except (StackError, CdcError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
