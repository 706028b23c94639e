"""Rebuild aside, swap atomically: recover from a data loss, a schema change, a failed verify or an operator's
request by building a new state from a fresh snapshot while destiny.csv keeps its last good content.

1. ``start_rebuild``: stop the connector (nothing more is produced), delete its source offsets (KIP-875: its
   next start takes a new snapshot), take the topic's end as the new resume point, set aside the unmerged
   buffer, create an empty state in a new lineage (epoch) beside the live one, resume the connector. Every
   step is idempotent, so a crash in the middle is repaired by starting again.
2. ``confirm_snapshot`` (register_connector, every run): Kafka Connect commits a source offset only after
   every record before it was acknowledged by the broker, so once the connector's committed offset is past
   the snapshot, every snapshot record is in the topic. We record when that was seen.
3. The consume step marks a batch that started after that moment and read every partition to its end: it
   holds the rest of the snapshot. After merging it, the merge step promotes the rebuilt state: destiny.csv
   switches to it in one rename, and rows deleted at the source during the gap are gone.

A connector of several tables rebuilds only the table concerned (recovery/incremental.py: Debezium's
incremental snapshot of that table while the others stream). The whole connector re-snapshots as above when
it captures one table, and for an upgrade of the state's format. Why the initial snapshot there: it needs no
signal channel, it is what the connector does by itself with no offsets, and its end is exact (see 2).
"""

from __future__ import annotations

import logging

from cdc_pipeline.connector_spec import ConnectorSpec
from cdc_pipeline.crashpoints import crashpoint
from cdc_pipeline.errors import DataLossError, SchemaChangedError
from cdc_pipeline.history import History, Recovery
from cdc_pipeline.kafka.client import KafkaClients
from cdc_pipeline.kafka.topic import inspect_topic
from cdc_pipeline.kafka_connect import KafkaConnectClient
from cdc_pipeline.pipeline_lock import table_locks
from cdc_pipeline.recovery import incremental
from cdc_pipeline.recovery.aside import ensure_registered, rebuild_aside, record_start
from cdc_pipeline.recovery.connector_stop import WHOLE_REBUILD, marked_stop
from cdc_pipeline.source.catalog import TableDescription

log = logging.getLogger(__name__)

REASONS = ("data_loss", "schema_change", "verify_mismatch", "operator", "upgrade", "table_added", "state_lost")


def remedy_command(spec: ConnectorSpec) -> str:
    table = f" --table {spec.qualified_table}" if spec.many_tables else ""
    return (f"python -m cdc_pipeline resnapshot --connector {spec.name}{table} --yes (or trigger the DAG "
            f"{spec.dag_id}_ops with operation=resnapshot{f' and table={spec.qualified_table}' if table else ''})")


def refuse(spec: ConnectorSpec, reason: str, summary: str) -> Exception:
    """The error for ``on_data_loss``/``on_schema_change`` = fail: what happened and the command that recovers."""
    if reason == "schema_change":
        return SchemaChangedError(f"{summary}. on_schema_change is 'fail', so nothing was merged: rebuild destiny.csv "
                                  f"from a new snapshot with {remedy_command(spec)}")
    return DataLossError(f"{summary}. on_data_loss is 'fail', so nothing was merged: rebuild destiny.csv from a new "
                         f"snapshot with {remedy_command(spec)}")


def start_rebuild(pipe, *, connect: KafkaConnectClient, kafka: KafkaClients, connector_config: dict[str, str] | None,
                  run_id: str | None, reason: str, detail: str, lost=None,
                  description: TableDescription | None = None) -> Recovery:
    """Start (or restart) a rebuild of ``pipe`` (a cdc_pipeline.pipeline.Pipeline); answer the recovery as recorded.

    A table of a connector of several re-snapshots alone (``incremental.start_table_rebuild``). Otherwise the
    connector re-snapshots whole: the caller holds the pipeline lock, and the connector lock when the connector
    captures several tables: deleting the connector's offsets re-snapshots every table it captures, so each of
    them rebuilds aside too (their locks are taken here). Otherwise a table that was not rebuilding would keep
    rows whose delete fell between two snapshots. ``connector_config`` is registered first when Kafka Connect
    forgot the connector; ``description`` is the table the rebuilt state will hold (default: as
    register_connector last read it).
    """
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {REASONS}")
    description = description or pipe.table_description()
    if description is None:
        raise DataLossError(f"{detail}; {pipe.spec.name} has never described its table, so no rebuild can start: let "
                            "register_connector succeed once")
    if incremental.rebuilds_alone(pipe.spec, reason) and not (reason == "data_loss" and _every_topic_lost(pipe, kafka)):
        return incremental.start_table_rebuild(pipe, connect=connect, kafka=kafka, connector_config=connector_config,
                                               run_id=run_id, reason=reason, detail=detail, lost=lost,
                                               description=description)
    return start_whole_rebuild(pipe, connect=connect, kafka=kafka, connector_config=connector_config, run_id=run_id,
                               reason=reason, detail=detail, lost=lost, description=description)


def _every_topic_lost(pipe, kafka: KafkaClients) -> bool:
    """Did the broker lose every topic of the connector (each gone, or created again under a new id)? Then one
    snapshot of the whole connector rebuilds them all, instead of one incremental snapshot per table."""
    for each in [pipe, *pipe.siblings()]:
        known = each.history.incidents.latest_incarnation()
        if known is None:
            continue  # never read: no evidence either way
        topic = inspect_topic(kafka, each.spec.topic)
        if topic.exists and topic.topic_id == known.topic_id:
            return False
    return True


def start_whole_rebuild(pipe, *, connect: KafkaConnectClient, kafka: KafkaClients,
                        connector_config: dict[str, str] | None, run_id: str | None, reason: str, detail: str,
                        lost=None, description: TableDescription) -> Recovery:
    """The connector re-snapshots every table it captures (its offsets deleted), each table rebuilding aside."""
    siblings = [(s, s.table_description()) for s in pipe.siblings()]
    siblings = [(s, described) for s, described in siblings if described is not None]
    with table_locks([s.layout for s, _ in siblings]):
        also = f"connector {pipe.spec.name} re-snapshots every table: {pipe.spec.qualified_table}: {detail}"
        started = [(pipe, run_id, description, record_start(pipe, run_id, reason, detail, lost, charged=True))]
        started += [(s, None, described, record_start(s, None, reason, also, None, charged=False))
                    for s, described in siblings]
        # Stopped under a marker: a step killed before the connector resumes is started again by the next
        # registration (recovery/connector_stop.py), each of these steps being safe to repeat.
        ensure_registered(pipe.spec, connect, connector_config)
        with marked_stop(pipe, connect, WHOLE_REBUILD, rebuild=started[0][3].id):
            connect.delete_offsets(pipe.spec.name)
            for each, each_run, each_description, recovery in started:
                rebuild_aside(each, kafka, each_run, each_description, reason, recovery)
            crashpoint("whole_rebuild.before_resume")
            connect.resume(pipe.spec.name)
            crashpoint("whole_rebuild.resumed")
            for each, _, _, recovery in started:
                each.history.incidents.recovery_step(recovery.id, "resumed")
    return pipe.history.incidents.active_recovery()


def snapshot_completed(offsets: list[dict] | None) -> bool:
    """Has the connector committed a source offset past its snapshot? (Debezium's PostgreSQL offset carries
    ``"snapshot": "INITIAL", "snapshot_completed": false`` while it snapshots, and neither key after.)"""
    if not offsets:
        return False
    offset = offsets[0].get("offset") or {}
    return "lsn" in offset and (offset.get("snapshot") in (None, False, "false") or offset.get("snapshot_completed") is True)


def confirm_snapshot(history: History, connect: KafkaConnectClient, spec: ConnectorSpec) -> Recovery | None:
    """For the active rebuild: record the moment its snapshot is known to be complete in the topic."""
    recovery = history.incidents.active_recovery()
    if recovery is None or recovery.step != "resumed":
        return recovery
    if snapshot_completed(connect.offsets(spec.name)):
        history.incidents.recovery_step(recovery.id, "snapshot_confirmed")
        log.info("rebuild %s: connector %s finished its snapshot; the next complete batch finishes the rebuild",
                 recovery.id, spec.name)
        return history.incidents.active_recovery()
    return recovery
