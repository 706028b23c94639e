"""``python -m cdc_pipeline``: the operator's commands, without Airflow.

    status      health, backlog, data as of, per pipeline (exit 1 when one is not OK)
    history     recent runs of a pipeline (or every try of one run)
    outages     when PostgreSQL, Kafka Connect or the broker were down, and what it cost
    reset       start a pipeline over: from the topic's beginning, from a date, or from a recorded run
    resnapshot  rebuild destiny.csv from a new snapshot of the table, aside, switched in one step
    verify      compare destiny.csv with the source table at one consistent point
    drain       merge everything the broker holds and record a clean end (./stack stop does this)
    operations  show, or --clear, an operator command that did not finish
    claim       make this worker the owner of a connector's folder (moved here, or started afresh)
    as-of       the table as it was at an instant, from the change log (docs/backfill.md)
    changes     the change events committed in a window, from the change log
    init        list a schema's tables, say which can be captured exactly, write their connector file

A connector capturing several tables has one pipeline per table, named connector/schema.table: the commands
take --table schema.table, which status, history, verify and drain need not (they go over every table).

Services and folders come from the CDC_* variables, else from what ./stack up recorded
(.stack/settings.json), else the local stack's defaults; flags override them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from datetime import UTC, datetime

from cdc_pipeline.commands.backfill_commands import add_subcommands as add_backfill_commands
from cdc_pipeline.commands.claim import add_claim_command
from cdc_pipeline.commands.init_connector import add_init_command
from cdc_pipeline.connector_spec import ConnectorSpec, discover_connector_specs, find_connector_spec
from cdc_pipeline.environment import PipelineEnvironment
from cdc_pipeline.errors import CdcError, ConfigError
from cdc_pipeline.history import History
from cdc_pipeline.formatting import one_line
from cdc_pipeline.instants import parse_instant
from cdc_pipeline.commands.operation_table import OPERATIONS, OperationRequest
from cdc_pipeline.pipeline import Pipeline
from cdc_pipeline.commands.table_choice import add_table_option, chosen_folders, chosen_pipelines

HISTORY_FIELDS = ("run_id", "status", "offset_ranges", "creates", "updates", "deletes", "reads", "truncates",
                  "dead_lettered", "merge_inserted", "merge_updated", "merge_deleted", "destiny_rows", "backlog",
                  "max_source_ts", "recovery", "schema_change", "error")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CdcError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cdc_pipeline", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--data-dir", help="the folder holding one folder per pipeline (CDC_DATA_DIR)")
    parser.add_argument("--connectors-dir", help="the connector files (CDC_CONNECTORS_DIR)")
    parser.add_argument("--bootstrap-servers", help="Kafka, e.g. 127.0.0.1:19092 (CDC_KAFKA_BOOTSTRAP / CDC_KAFKA_PORT)")
    parser.add_argument("--group-prefix", help="consumer group prefix (CDC_KAFKA_GROUP_ID)")
    parser.add_argument("--connect-url", help="Kafka Connect's REST API (CDC_CONNECT_URL / CDC_CONNECT_PORT)")
    sub = parser.add_subparsers(dest="command", required=True)

    history = sub.add_parser("history", help="recent runs of a pipeline, newest first")
    history.add_argument("--connector", required=True)
    add_table_option(history, every=True)
    history.add_argument("--limit", type=int, default=20)
    history.add_argument("--status", help="only runs with this status (merged, failed, skipped, ...)")
    history.add_argument("--with-data", action="store_true", help="only runs that carried changes or recovered")
    history.add_argument("--run", help="show every task try of this run id")
    history.set_defaults(func=cmd_history)

    status = sub.add_parser("status", help="health, backlog and data as of, per pipeline; exit 1 when one is not OK")
    status.add_argument("--connector", action="append", help="a pipeline (repeat; default: every connector file)")
    add_table_option(status, every=True)
    status.add_argument("--json", action="store_true", help="the status as JSON")
    status.add_argument("--offline", action="store_true", help="only the run history: do not ask the services")
    status.set_defaults(func=cmd_status)

    outages = sub.add_parser("outages", help="outages of PostgreSQL, Kafka Connect and the broker")
    outages.add_argument("--connector", required=True)
    add_table_option(outages)
    outages.set_defaults(func=cmd_outages)

    reset = sub.add_parser("reset", help="start a pipeline over (its files are moved aside, nothing is deleted)")
    reset.add_argument("--connector", required=True)
    add_table_option(reset)
    where = reset.add_mutually_exclusive_group(required=True)
    where.add_argument("--to-beginning", action="store_true", help="rebuild destiny.csv from the whole topic")
    where.add_argument("--to-date", help="ISO date or date-time (UTC if no zone): only changes committed from then on")
    where.add_argument("--to-run", help="read again from where this recorded run started")
    reset.add_argument("--yes", action="store_true", help="do not ask (required without a terminal)")
    reset.set_defaults(func=cmd_reset)

    resnap = sub.add_parser("resnapshot", help="rebuild destiny.csv from a new snapshot, aside, switched in one step")
    resnap.add_argument("--connector", required=True)
    add_table_option(resnap)
    resnap.add_argument("--all-tables", action="store_true",
                        help="re-snapshot every table of a connector of several (the connector's own snapshot) "
                             "instead of one --table alone")
    resnap.add_argument("--yes", action="store_true", help="do not ask (required without a terminal)")
    resnap.set_defaults(func=cmd_resnapshot)

    verify_cmd = sub.add_parser("verify", help="compare destiny.csv with the source at one consistent point")
    verify_cmd.add_argument("--connector", required=True)
    add_table_option(verify_cmd, every=True)
    verify_cmd.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the pipeline to catch up")
    verify_cmd.set_defaults(func=cmd_verify)

    drain = sub.add_parser("drain", help="merge everything the broker holds; record a clean end (stop Connect first)")
    drain.add_argument("--connector", action="append", help="a pipeline (repeat; default: every connector file)")
    add_table_option(drain, every=True)
    drain.set_defaults(func=cmd_drain)

    ops = sub.add_parser("operations", help="operator commands of a pipeline; --clear one that did not finish")
    ops.add_argument("--connector", required=True)
    add_table_option(ops)
    ops.add_argument("--clear", action="store_true")
    ops.set_defaults(func=cmd_operations)
    add_backfill_commands(sub, environment)
    add_init_command(sub, environment)
    add_claim_command(sub, environment)
    return parser


def environment(args) -> PipelineEnvironment:
    return PipelineEnvironment.load(
        data_dir=args.data_dir and _path(args.data_dir), connectors_dir=args.connectors_dir and _path(args.connectors_dir),
        bootstrap_servers=args.bootstrap_servers, group_prefix=args.group_prefix, connect_url=args.connect_url)


def pipeline(args, env: PipelineEnvironment | None = None) -> Pipeline:
    """The one pipeline a command changes: the connector's, or its ``--table``'s when it captures several."""
    env = env or environment(args)
    return chosen_pipelines(env.data_dir, find_connector_spec(env.connectors_dir, args.connector, env.data_dir), args.table)[0]


def every_pipeline(args, env: PipelineEnvironment, spec: ConnectorSpec) -> list[Pipeline]:
    """The connector's pipelines a reading or draining command goes over: ``--table``'s, else each table's."""
    return chosen_pipelines(env.data_dir, spec, args.table, every=True)


def connector_specs(args, env: PipelineEnvironment) -> list[ConnectorSpec]:
    """The connectors of ``--connector`` (repeated), default every connector file; ``--table`` needs one."""
    specs = [s for s in discover_connector_specs(env.connectors_dir, env.data_dir) if not args.connector or s.name in args.connector]
    if args.table and len(specs) != 1:
        raise ConfigError("--table names a table of one connector: pass it with one --connector")
    return specs


def read_histories(args, *, every: bool = False) -> list[tuple[str, History | None]]:
    """Each chosen table's run history, by its pipeline's label (None: no run yet); at least one exists."""
    env = environment(args)
    folders = chosen_folders(env.data_dir, env.connectors_dir, args.connector, args.table, every=every)
    if not any(layout.history.exists() for _, layout in folders):
        raise ConfigError(f"no run history at {folders[0][1].history}: has the DAG cdc_{args.connector} run yet? "
                          "(--data-dir?)")
    return [(label, History.open(layout.history, readonly=True) if layout.history.exists() else None)
            for label, layout in folders]


def say(label: str, args, text: str) -> None:
    """Print ``text``, headed by the table's pipeline when the connector captures several tables."""
    print(text if label == args.connector else f"{label}: {text}")


def cmd_history(args) -> int:
    for label, history in read_histories(args, every=True):
        if label != args.connector:
            print(f"# {label}" + ("" if history else ": no run history yet"))
        if history is not None:
            _print_history(history, args)
    return 0


def _print_history(history: History, args) -> None:
    if args.run:
        for row in history.runs.tries(args.run):
            print(json.dumps(row, default=str))
        return
    print("\t".join(HISTORY_FIELDS))
    for run in history.runs.recent_runs(args.limit, status=args.status, with_data=args.with_data):
        print("\t".join("" if run[f] is None else str(run[f]).replace("\n", " ")[:200] for f in HISTORY_FIELDS))


def cmd_status(args) -> int:
    from cdc_pipeline.commands.status import table_statuses

    env = environment(args)
    statuses = []
    for spec in connector_specs(args, env):
        with contextlib.ExitStack() as stack:
            probes_of = None if args.offline else stack.enter_context(connector_probes(env, spec))
            statuses += table_statuses(every_pipeline(args, env, spec), probes_of)
    if args.json:
        print(json.dumps([s.as_dict() for s in statuses], indent=2, default=str))
    else:
        for status in statuses:
            print("\n".join(status.lines()))
    return 0 if all(s.healthy for s in statuses) else 1


@contextlib.contextmanager
def connector_probes(env: PipelineEnvironment, spec: ConnectorSpec):
    """Yield the probes of each table of ``spec`` (given the spec scoped to it): one Kafka client reads each
    table's backlog from its topic; Kafka Connect and the slot, the connector's, are asked once."""
    from cdc_pipeline.probes import asked_once, connector_probe, dag_paused_probe, slot_probe
    from cdc_pipeline.commands.status import Probes, kafka_backlog

    services = env.services()
    connector = asked_once(connector_probe(services.connect, spec.name))
    slot = asked_once(slot_probe(services.source(), spec.slot_name))
    paused = asked_once(dag_paused_probe(env.airflow_url, env.airflow_user, env.airflow_password, spec.dag_id)) \
        if env.airflow_url else None
    with services.kafka(spec.name) as kafka:
        yield lambda scoped: Probes(backlog=kafka_backlog(kafka, scoped.topic), connector=connector, slot=slot,
                                    paused=paused)


def cmd_outages(args) -> int:
    [(_, history)] = read_histories(args)
    outages = history.incidents.outages()
    if not outages:
        print("no outage recorded")
    for o in outages:
        back = f"back at {o['back_at']}" if o["back_at"] else "STILL DOWN"
        lost = f"; data lost, recovered by rebuild {o['recovery_id']}" if o["data_lost"] else ""
        print(f"{o['service']}: down since {o['first_seen_down_at']} (first seen by {o['first_run_id']}), {back}; "
              f"{o['runs_affected']} run(s) affected{lost}; last error: {one_line(o['last_error'], 200) or ''}")
    return 0


def run_operation(name: str, pipe: Pipeline, env: PipelineEnvironment, request: OperationRequest) -> str:
    """Run the operation ``name`` (cdc_pipeline.commands.operation_table, as the operations DAG does) on ``pipe``; what
    was done, in words."""
    return OPERATIONS[name](pipe, env.services(), request).message


def cmd_reset(args) -> int:
    env = environment(args)
    pipe = pipeline(args, env)
    name = "reset_to_beginning" if args.to_beginning else "reset_to_date" if args.to_date else "reset_to_run"
    date = parse_instant(args.to_date, "--to-date") if args.to_date else None
    _confirm(args, f"Reset {pipe.label}: move its state, destiny.csv and buffer aside and read {pipe.spec.topic} again "
                   f"from {args.to_date or args.to_run or 'the beginning'}?")
    print(run_operation(name, pipe, env, _request(date=date, run_id=args.to_run)))
    return 0


def cmd_resnapshot(args) -> int:
    env = environment(args)
    if args.all_tables and args.table:
        raise ConfigError("--all-tables and --table exclude each other: leave one out")
    if args.all_tables:
        pipe = chosen_pipelines(env.data_dir, find_connector_spec(env.connectors_dir, args.connector, env.data_dir), None, every=True)[0]
        tables = ", ".join(pipe.spec.table_names)
    else:
        pipe = pipeline(args, env)
        tables = pipe.spec.qualified_table
    _confirm(args, f"Re-snapshot {tables}: the connector reads {'each' if args.all_tables else 'the whole'} "
                   "table again and destiny.csv switches to the new snapshot once it is complete?")
    print(run_operation("resnapshot", pipe, env, _request(whole=args.all_tables)))
    return 0


def cmd_verify(args) -> int:
    env = environment(args)
    spec = find_connector_spec(env.connectors_dir, args.connector, env.data_dir)
    request = _request(run_label=f"cli-{datetime.now(UTC):%Y%m%dT%H%M%SZ}", timeout=args.timeout)
    for pipe in every_pipeline(args, env, spec):
        say(pipe.label, args, run_operation("verify", pipe, env, request))
    return 0


def cmd_drain(args) -> int:
    from cdc_pipeline.commands import operations

    env = environment(args)
    label = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for spec in connector_specs(args, env):
        services = env.services()
        with services.kafka(spec.name) as kafka:
            for pipe in every_pipeline(args, env, spec):
                print(operations.drain(pipe, services, run_label=label, kafka=kafka).message)
    return 0


def cmd_operations(args) -> int:
    env = environment(args)
    pipe = pipeline(args, env)
    if args.clear:
        print(run_operation("clear_unfinished_operation", pipe, env, _request()))
        return 0
    for op in pipe.history.incidents.operations(20):
        print(f"{op['id']}\t{op['kind']}\t{op['status']}\t{op['started_at']}\t{op['ended_at'] or ''}\t{op['origin']}\t"
              f"{op['params']}\t{(op['detail'] or '')[:200]}")
    return 0


def _confirm(args, question: str) -> None:
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise ConfigError("this command changes the pipeline: pass --yes to run it without a terminal")
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        raise ConfigError("nothing changed")


def _request(**fields) -> OperationRequest:
    """An operation asked from this command line: its origin is the user and host."""
    import getpass
    import socket

    origin = f"cli:{getpass.getuser()}@{socket.gethostname()}"
    return OperationRequest(origin=origin, run_label=fields.pop("run_label", origin), **fields)


def _path(value: str):
    from pathlib import Path

    return Path(value)
