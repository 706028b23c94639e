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

Why Debezium's blocking initial snapshot and not an incremental one (a signal table): it needs no table
in the user's database and no write access, it is what the connector does by itself with no offsets, and
its end is exact (see 2). Its cost is a table read while streaming waits; for tables too large for that,
the incremental snapshot is the next step (docs/reliability.md).
"""

from __future__ import annotations

import logging

from cdc_pipeline.batch_buffer import BatchBuffer
from cdc_pipeline.connector_spec import ConnectorSpec
from cdc_pipeline.errors import DataLossError, SchemaChangedError
from cdc_pipeline.history import History, Recovery, RunStatus
from cdc_pipeline.kafka.client import KafkaClients
from cdc_pipeline.kafka.topic import inspect_topic
from cdc_pipeline.kafka_connect import KafkaConnectClient
from cdc_pipeline.pipeline_lock import table_locks
from cdc_pipeline.state import StateStore
from cdc_pipeline.source.catalog import TableDescription

log = logging.getLogger(__name__)

REASONS = ("data_loss", "schema_change", "verify_mismatch", "operator", "upgrade", "table_added", "state_lost")


def remedy_command(spec: ConnectorSpec) -> str:
    return (f"python -m cdc_pipeline resnapshot --connector {spec.name} --yes (or trigger the DAG {spec.dag_id}_ops "
            "with operation=resnapshot)")


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

    The caller holds the pipeline lock, and the connector lock when the connector captures several tables:
    deleting the connector's offsets re-snapshots every table it captures, so each of them rebuilds aside
    too (their locks are taken here). Otherwise a table that was not rebuilding would keep rows whose delete
    fell between two snapshots. ``connector_config`` is registered first when Kafka Connect forgot the
    connector; ``description`` is the table the rebuilt state will hold (default: as register_connector last
    read it).
    """
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {REASONS}")
    description = description or pipe.table_description()
    if description is None:
        raise DataLossError(f"{detail}; {pipe.spec.name} has never described its table, so no rebuild can start: let "
                            "register_connector succeed once")
    siblings = [(s, s.table_description()) for s in pipe.siblings()]
    siblings = [(s, described) for s, described in siblings if described is not None]
    with table_locks([s.layout for s, _ in siblings]):
        also = f"connector {pipe.spec.name} re-snapshots every table: {pipe.spec.qualified_table}: {detail}"
        started = [(pipe, run_id, description, _record_start(pipe, run_id, reason, detail, lost, charged=True))]
        started += [(s, None, described, _record_start(s, None, reason, also, None, charged=False))
                    for s, described in siblings]
        _stop_and_forget_offsets(pipe.spec, connect, connector_config)
        for each, each_run, each_description, recovery in started:
            _rebuild_aside(each, kafka, each_run, each_description, reason, recovery)
        connect.resume(pipe.spec.name)
        for each, _, _, recovery in started:
            each.history.incidents.recovery_step(recovery.id, "resumed")
    return pipe.history.incidents.active_recovery()


def _record_start(pipe, run_id: str | None, reason: str, detail: str, lost, *, charged: bool) -> Recovery:
    """The recovery in the table's history; ``charged``: this table's loss is what started it."""
    incidents, runs = pipe.history.incidents, pipe.history.runs
    epoch = max(runs.current_epoch(), _state_epoch(StateStore(pipe.layout))) + 1
    recovery_id = incidents.start_recovery(run_id=run_id, reason=reason, detail=detail, lost=lost, epoch=epoch)
    if reason == "data_loss" and charged:
        last_read = runs.last_run_where("status = ?", (RunStatus.MERGED.value,))
        incidents.link_data_loss(recovery_id, run_id=run_id, detail=detail,
                                 since=last_read["ended_at"] if last_read else None)
    return incidents.active_recovery()


def _stop_and_forget_offsets(spec: ConnectorSpec, connect: KafkaConnectClient,
                             connector_config: dict[str, str] | None) -> None:
    name = spec.name
    if connect.status(name) is None:
        # Only then: a caller's config may come from another environment than registration's (the CLI's).
        if connector_config is None:
            raise DataLossError(f"connector {name} is not registered on Kafka Connect; let register_connector run "
                                "once, then the rebuild starts again")
        connect.put_config(name, connector_config)
    connect.stop(name)
    connect.delete_offsets(name)


def _rebuild_aside(pipe, kafka: KafkaClients, run_id: str | None, description: TableDescription, reason: str,
                   recovery: Recovery) -> None:
    """With the connector stopped: the topic's end becomes the resume point, the unmerged buffer is set aside, an
    empty state in the new epoch is created aside."""
    spec, store = pipe.spec, StateStore(pipe.layout)
    incidents, runs = pipe.history.incidents, pipe.history.runs
    recovery_id, epoch = recovery.id, recovery.epoch
    topic = inspect_topic(kafka, spec.topic)
    incarnation = None
    ends: dict[int, int] = {}
    if topic.exists:
        # Nothing is produced while the connector is stopped, so the high watermark ListOffsets answered is the
        # topic's end and stays it.
        ends = dict(topic.listed_high)
        latest = incidents.latest_incarnation()
        if latest is not None and latest.topic_id == topic.topic_id:
            incarnation = latest.seq
        else:
            if latest is not None:
                incidents.end_incarnation(latest.seq, f"superseded by a rebuild ({reason})")
            incarnation = incidents.add_incarnation(spec.topic, topic.topic_id, run_id)
    set_aside = BatchBuffer(pipe.layout).clear(archive_as=f"superseded-by-rebuild-{recovery_id}")
    store.discard_rebuild()
    store.create(description, lineage="rebuild", epoch=epoch)
    runs.set_resume_point(reason="rebuild", incarnation=incarnation, epoch=epoch, ends=ends, run_id=run_id)
    log.warning("rebuild %s started (%s): connector %s re-snapshots %s; reading topic %s from %s%s; destiny.csv keeps "
                "its last good content until the snapshot is complete", recovery_id, reason, spec.name,
                spec.qualified_table, spec.topic, ends or "its beginning (it does not exist yet)",
                f"; unmerged events set aside in {set_aside}" if set_aside else "")


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


def _state_epoch(store) -> int:
    epochs = [info.epoch for info in (store.live(), store.rebuild()) if info is not None]
    return max(epochs, default=0)
