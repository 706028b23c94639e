"""Operator commands that need no Airflow: read the run history, reset a pipeline.

    python -m cdc_pipeline history --connector clientes [--limit 20] [--run RUN_ID]
    python -m cdc_pipeline reset --connector clientes (--from-beginning | --from-date 2026-11-24) [--yes]
    python -m cdc_pipeline resnapshot --connector clientes [--yes]

Defaults come from the same CDC_* variables as the local stack (CDC_DATA_DIR, CDC_CONNECTORS_DIR,
CDC_KAFKA_PORT, CDC_KAFKA_GROUP_ID); pass --bootstrap-servers for another broker.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from cdc_pipeline.connector_spec import discover_connector_specs
from cdc_pipeline.errors import CdcError, ConfigError
from cdc_pipeline.run_history import RunHistory

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except CdcError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    stack_home = Path(os.environ.get("CDC_STACK_HOME") or REPO_ROOT / ".stack")
    parser = argparse.ArgumentParser(prog="python -m cdc_pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("CDC_DATA_DIR") or stack_home / "data"))
    parser.add_argument("--connectors-dir", type=Path,
                        default=Path(os.environ.get("CDC_CONNECTORS_DIR") or REPO_ROOT / "include" / "connectors"))
    sub = parser.add_subparsers(dest="command", required=True)

    history = sub.add_parser("history", help="recent runs of a pipeline, newest first")
    history.add_argument("--connector", required=True)
    history.add_argument("--limit", type=int, default=20)
    history.add_argument("--run", help="show every task try of this run id")
    history.set_defaults(func=cmd_history)

    reset = sub.add_parser("reset", help="set a pipeline's files aside and move its consumer group")
    reset.add_argument("--connector", required=True)
    where = reset.add_mutually_exclusive_group(required=True)
    where.add_argument("--from-beginning", action="store_true", help="rebuild destiny.csv from the whole topic")
    where.add_argument("--from-date", help="ISO date or date-time (UTC if no zone): only changes from then on")
    reset.add_argument("--bootstrap-servers", default=f"127.0.0.1:{os.environ.get('CDC_KAFKA_PORT', '19092')}")
    reset.add_argument("--group-prefix", default=os.environ.get("CDC_KAFKA_GROUP_ID", "cdc-csv"))
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    reset.set_defaults(func=cmd_reset)

    resnap = sub.add_parser("resnapshot", help="rebuild destiny.csv from a new snapshot of the table")
    resnap.add_argument("--connector", required=True)
    resnap.add_argument("--connect-url", default=f"http://127.0.0.1:{os.environ.get('CDC_CONNECT_PORT', '18083')}")
    resnap.add_argument("--bootstrap-servers", default=f"127.0.0.1:{os.environ.get('CDC_KAFKA_PORT', '19092')}")
    resnap.add_argument("--group-prefix", default=os.environ.get("CDC_KAFKA_GROUP_ID", "cdc-csv"))
    resnap.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    resnap.set_defaults(func=cmd_resnapshot)
    return parser


def _spec(args):
    for spec in discover_connector_specs(args.connectors_dir):
        if spec.name == args.connector:
            return spec
    raise ConfigError(f"no connector named {args.connector!r} in {args.connectors_dir}")


def cmd_history(args) -> int:
    path = args.data_dir / args.connector / "runs.sqlite"
    if not path.exists():
        raise ConfigError(f"no run history at {path}: has the DAG cdc_{args.connector} run yet? (--data-dir?)")
    history = RunHistory(path)
    if args.run:
        for row in history.tries(args.run):
            print(json.dumps(row, default=str))
        return 0
    fields = ("run_id", "status", "offset_ranges", "creates", "updates", "deletes", "reads", "dead_lettered",
              "merge_inserted", "merge_updated", "merge_deleted", "destiny_rows", "max_source_ts", "error")
    print("\t".join(fields))
    for run in history.recent_runs(args.limit):
        print("\t".join("" if run[f] is None else str(run[f]).replace("\n", " ")[:200] for f in fields))
    return 0


def cmd_reset(args) -> int:
    from confluent_kafka import Consumer

    from cdc_pipeline.kafka_batch import (
        batch_consumer_config, commit_offsets_exactly, group_id_for, offsets_at_time, topic_partitions, watermarks,
    )

    spec = _spec(args)
    folder = args.data_dir / spec.name
    group = group_id_for(args.group_prefix, spec.name)
    if not _confirm(args, f"Set {folder} aside and move group {group} on {spec.topic}? Pause the DAG cdc_{spec.name} first."):
        print("nothing changed")
        return 1
    consumer = Consumer(batch_consumer_config({"bootstrap.servers": args.bootstrap_servers}, group))
    try:
        partitions = topic_partitions(consumer, spec.topic) or []
        if args.from_beginning:
            targets = {p: watermarks(consumer, spec.topic, p)[0] for p in partitions}
        else:
            try:
                when = datetime.fromisoformat(args.from_date.replace("Z", "+00:00"))
            except ValueError as exc:
                raise ConfigError(f"--from-date {args.from_date!r} is not an ISO date or date-time, e.g. 2026-11-24 or 2026-11-24T08:00:00Z") from exc
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            targets = offsets_at_time(consumer, spec.topic, partitions, int(when.timestamp() * 1000))
        commit_offsets_exactly(consumer, spec.topic, targets)
    finally:
        consumer.close()
    _set_aside(folder)
    print(f"group {group} now starts {spec.topic} at {targets}; the next run of cdc_{spec.name} rebuilds {folder}/destiny.csv")
    return 0


def _set_aside(folder: Path) -> None:
    """Move a pipeline folder aside (nothing is deleted), keeping table.json for the key's types."""
    if not folder.exists():
        return
    aside = folder.with_name(f"{folder.name}.before-reset-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
    try:
        folder.rename(aside)
    except OSError as exc:
        raise ConfigError(
            f"the consumer group was moved, but {folder} could not be moved aside ({exc}): move it yourself "
            "before the next run, or the old destiny.csv stays mixed with the new events"
        ) from exc
    print(f"moved {folder} to {aside} (delete it when you no longer need it)")
    if (aside / "table.json").exists():
        # The key's types order destiny.csv; register_connector rewrites the file on every run anyway.
        folder.mkdir(parents=True)
        shutil.copy2(aside / "table.json", folder / "table.json")


def _confirm(args, question: str) -> bool:
    if args.yes or not sys.stdin.isatty():
        return True
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def cmd_resnapshot(args) -> int:
    """Stop the connector, forget its source offsets, move the group to the topic's end and the folder
    aside, resume: Debezium snapshots the table again and the next runs rebuild destiny.csv from it."""
    from confluent_kafka import Consumer

    from cdc_pipeline.kafka_batch import (
        batch_consumer_config, commit_offsets_exactly, group_id_for, read_range, topic_partitions, watermarks,
    )
    from cdc_pipeline.kafka_connect import KafkaConnectClient

    spec = _spec(args)
    folder = args.data_dir / spec.name
    group = group_id_for(args.group_prefix, spec.name)
    if not _confirm(args, f"Re-snapshot {spec.qualified_table}: set {folder} aside and skip what {spec.topic} holds? "
                          f"Pause the DAG cdc_{spec.name} first."):
        print("nothing changed")
        return 1
    with KafkaConnectClient(args.connect_url) as connect:
        if connect.status(spec.name) is None:
            raise ConfigError(f"connector {spec.name!r} is not registered on {args.connect_url}: run the DAG once first")
        connect.stop(spec.name)
        connect.delete_offsets(spec.name)
        consumer = Consumer(batch_consumer_config({"bootstrap.servers": args.bootstrap_servers}, group))
        try:
            partitions = topic_partitions(consumer, spec.topic) or []
            starts = {p: watermarks(consumer, spec.topic, p)[0] for p in partitions}
            # The true end of each partition (read through: Tansu's ListOffsets answers short of it).
            ends = read_range(consumer, spec.topic, starts, lambda m: None, max_events=None, max_seconds=600)
            targets = {p: r.end for p, r in ends.ranges.items()}
            commit_offsets_exactly(consumer, spec.topic, targets)
        finally:
            consumer.close()
        _set_aside(folder)
        connect.resume(spec.name)
    print(f"connector {spec.name} resumed without offsets: it snapshots {spec.qualified_table} again; group {group} "
          f"skips the old events ({targets}). Unpause cdc_{spec.name}: its next runs rebuild {folder}/destiny.csv")
    return 0
