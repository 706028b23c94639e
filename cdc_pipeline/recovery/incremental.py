"""One table of a connector of several re-snapshots alone, while the others stream.

1. ``start_table_rebuild``: the table's rebuild starts aside as a whole rebuild's does (its topic's end as the
   resume point, an empty state in a new lineage), then the pipeline sends Debezium an ``execute-snapshot``
   signal of type INCREMENTAL for that table alone on the connector's signal topic. Debezium reads the table in
   chunks between two watermarks (read-only: PostgreSQL snapshots, no write to the source) and drops a chunk's
   read of a row that changed meanwhile, so in the topic every row's last event is its current content.
2. ``confirm_table_snapshots`` (register_connector, every run): Debezium's notification topic says when the
   table was scanned (TABLE_SCAN_COMPLETED) and the whole snapshot ended (COMPLETED), under the id of the
   latest signal it acted on. Then the connector is stopped, which makes Kafka Connect wait until the broker
   has acknowledged every record the task sent and commit their offsets; if those offsets no longer list the
   table among the ones being snapshotted, every read of the table is in the topic. The connector resumes.
3. The consume and merge steps finish as for any rebuild: the next complete batch after that moment holds the
   rest, and the merge promotes the rebuilt state in one rename. A row that changed inside its chunk's window
   without its TOASTed value arrives with Debezium's placeholder for it; if the rebuilt state still holds one,
   the merge does not promote and the table is read again (step ``reread_needed``).

A signal that is lost (read by a task that then restarted before saving its progress: Debezium says nothing of it
for a minute) or refused is sent again;
after ``MAX_SIGNALS`` the connector re-snapshots whole, the proven path.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from cdc_pipeline.connector_spec import ConnectorSpec
from cdc_pipeline.history import Recovery
from cdc_pipeline.kafka.client import KafkaClients
from cdc_pipeline.kafka.signals import (Notification, ensure_signal_topic, new_signal_id, read_notifications,
                                        send_signal, signal_time_us)
from cdc_pipeline.kafka_connect import KafkaConnectClient
from cdc_pipeline.pipeline_lock import rebuild_locks
from cdc_pipeline.recovery.aside import ensure_registered, rebuild_aside, record_start
from cdc_pipeline.recovery.connector_stop import CONFIRM, marked_stop
from cdc_pipeline.source.catalog import TableDescription

log = logging.getLogger(__name__)

# What concerns one table only; an upgrade of the state's format re-snapshots the whole connector.
ALONE_REASONS = ("data_loss", "schema_change", "verify_mismatch", "operator", "table_added", "state_lost")
MAX_SIGNALS = 5
# A signal with no word from Debezium for this long is taken as lost and sent again: Debezium reads its signals
# every 5 s and says STARTED (or, adding to a running snapshot, IN_PROGRESS) at once, so a minute of silence means
# the signal was lost (read by a task stopping for a config change, say); a scan in progress says IN_PROGRESS at
# every chunk.
UNHEARD_S = 60
SILENCE_S = 600
# Debezium's notifications are stamped by the Connect worker's clock, the signal id by ours.
CLOCK_MARGIN_MS = 60_000
SCANNED = ("SUCCEEDED", "EMPTY")
# A scan that cannot succeed however often it is asked for. The others are asked again, up to MAX_SIGNALS: an
# SQL_EXCEPTION is often the task's own connection closed under it (a signal read while the task restarts for a
# config change, or while it looks for its WAL resume position), and a lasting one ends in the whole re-snapshot.
FAILED_SCANS = ("NO_PRIMARY_KEY",)
OFFSET_COLLECTIONS = "incremental_snapshot_collections"


def rebuilds_alone(spec: ConnectorSpec, reason: str) -> bool:
    return spec.many_tables and reason in ALONE_REASONS


def start_table_rebuild(pipe, *, connect: KafkaConnectClient, kafka: KafkaClients,
                        connector_config: dict[str, str] | None, run_id: str | None, reason: str, detail: str,
                        lost=None, description: TableDescription) -> Recovery:
    """Rebuild ``pipe``'s table alone from an incremental snapshot; the connector and its other tables go on."""
    recovery = record_start(pipe, run_id, reason, detail, lost, charged=True)
    ensure_registered(pipe.spec, connect, connector_config)
    ensure_signal_topic(kafka, pipe.spec.signal_topic)
    rebuild_aside(pipe, kafka, run_id, description, reason, recovery)
    # A snapshot of the table still running for an earlier rebuild needs no stop: Debezium appends the table to
    # its list again, and its COMPLETED comes only after that full read, under this signal's id or a later one.
    send_table_signal(pipe, kafka, recovery)
    return pipe.history.incidents.active_recovery()


def send_table_signal(pipe, kafka: KafkaClients, recovery: Recovery) -> str:
    spec = pipe.spec
    signal_id = new_signal_id()
    send_signal(kafka, spec.signal_topic, spec.config["topic.prefix"], {
        "id": signal_id, "type": "execute-snapshot",
        "data": {"type": "INCREMENTAL", "data-collections": [spec.qualified_table]}})
    pipe.history.incidents.recovery_signaled(recovery.id, signal_id)
    log.warning("rebuild %s (%s): %s re-snapshots alone while the connector's other tables stream (signal %s on %s)",
                recovery.id, recovery.reason, spec.qualified_table, signal_id, spec.signal_topic)
    return signal_id


@dataclass(frozen=True)
class Verdict:
    state: str          # scanned | waiting | again | failed
    detail: str = ""


def table_snapshot_verdict(notifications: list[Notification], signal_id: str, table: str, *,
                           now_ms: int | None = None) -> Verdict:
    """What Debezium's notifications say of the snapshot of ``table`` asked by ``signal_id``.

    A notification carries the id of the latest signal Debezium acted on, so only those of this signal or a
    later one (the pipeline's ids sort by time) can speak of it. COMPLETED means Debezium's list of tables to
    snapshot is empty: this table was scanned under this signal or a later one, or the signal was dropped.
    """
    sent = signal_time_us(signal_id)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    scanned, failure, completed, heard_at = False, "", False, None
    for n in notifications:
        at = signal_time_us(n.id)
        if n.aggregate_type != "Incremental Snapshot" or at is None or at < sent:
            continue
        heard_at = max(heard_at or 0, n.timestamp_ms or at // 1000)
        if n.type == "TABLE_SCAN_COMPLETED" and n.data.get("scanned_collection") == table:
            status = n.data.get("status", "")
            scanned, failure = status in SCANNED, "" if status in SCANNED else status
        elif n.type == "ABORTED" and table in _listed(n.data.get("data_collections"), table):
            scanned, failure = False, "ABORTED"
        elif n.type == "COMPLETED":
            completed = True
    if completed and scanned:
        return Verdict("scanned")
    if completed or failure == "ABORTED":
        why = (f"Debezium ended the scan of {table} with {failure}" if failure
               else f"Debezium's snapshot ended without scanning {table}")
        return Verdict("failed" if failure in FAILED_SCANS else "again", why)
    if heard_at is None and now_ms - sent // 1000 > UNHEARD_S * 1000:
        return Verdict("again", f"Debezium did not act on the signal within {UNHEARD_S} s")
    if heard_at is not None and now_ms - heard_at > SILENCE_S * 1000:
        return Verdict("again", f"no word from Debezium for {SILENCE_S // 60} minutes")
    return Verdict("waiting", "scan in progress" if heard_at else "signal sent, not acted on yet")


def _listed(collections: str | None, table: str) -> list[str]:
    if not collections:
        return [table]  # an ABORTED without a list stopped every table
    return [c.strip() for c in collections.split(",")]


def tables_still_snapshotting(offsets: list[dict] | None) -> set[str]:
    """The tables Kafka Connect's committed source offsets still list in Debezium's incremental snapshot."""
    if not offsets:
        return set()
    offset = offsets[0].get("offset") or {}
    raw = offset.get(OFFSET_COLLECTIONS)
    if not raw:
        return set()
    try:
        listed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"?"}  # unreadable: take it as still running
    return {str(item.get(f"{OFFSET_COLLECTIONS}_id", "?")) for item in listed if isinstance(item, dict)}


def confirm_table_snapshots(pipes, connect: KafkaConnectClient, kafka_factory, *, whole_rebuild) -> dict[str, str]:
    """For each table re-snapshotting alone: ask again when needed, confirm when its snapshot is in the topic.
    ``whole_rebuild`` (rebuild.start_whole_rebuild) is the fallback of a table whose snapshot never completes.
    Answers a line per table that moved, for the run's summary."""
    lines: dict[str, str] = {}
    stuck = [(pipe, recovery) for pipe in pipes
             if (recovery := pipe.history.incidents.active_recovery()) is not None and _never_signaled(recovery)]
    for pipe, recovery in stuck:
        lines[pipe.spec.qualified_table] = _start_again(pipe, recovery, connect, kafka_factory)
    waiting = [(pipe, recovery) for pipe in pipes
               if (recovery := pipe.history.incidents.active_recovery()) is not None and recovery.incremental
               and recovery.step in ("signaled", "reread_needed")]
    if not waiting:
        return lines
    spec = pipes[0].spec
    with kafka_factory() as clients:
        since = min(signal_time_us(r.signal_id) or 0 for _, r in waiting) // 1000 - CLOCK_MARGIN_MS
        notifications = read_notifications(clients, spec.notification_topic, since)
        scanned = []
        for pipe, recovery in waiting:
            table = pipe.spec.qualified_table
            if recovery.step == "reread_needed":
                verdict = Verdict("again", "the rebuilt state still holds unchanged-TOAST placeholders")
            else:
                verdict = table_snapshot_verdict(notifications, recovery.signal_id, table)
            if verdict.state == "scanned":
                scanned.append((pipe, recovery))
            elif verdict.state in ("again", "failed"):
                lines[table] = _ask_again(pipe, recovery, verdict, connect, clients, whole_rebuild)
            else:
                lines[table] = f"rebuild {recovery.id}: {verdict.detail}"
        if scanned:
            lines.update(_confirm_in_topic(scanned, connect))
    return lines


def _never_signaled(recovery: Recovery) -> bool:
    """A table's rebuild recorded but never signaled: its step crashed between the two (the step holding the
    table's lock finishes both within seconds, so a minute is a crash)."""
    started = datetime.fromisoformat(recovery.started_at)
    return (recovery.step == "requested" and recovery.signal_id is None and recovery.reason in ALONE_REASONS
            and datetime.now(UTC) - started > timedelta(minutes=1))


def _start_again(pipe, recovery: Recovery, connect: KafkaConnectClient, kafka_factory) -> str:
    """Every step of the start is safe to repeat: a new recovery supersedes the one that never got its signal."""
    with rebuild_locks(pipe), kafka_factory() as clients:
        current = pipe.history.incidents.active_recovery()
        if current is None or current.id != recovery.id or not _never_signaled(current):
            return f"rebuild {recovery.id}: moved on meanwhile"
        again = start_table_rebuild(pipe, connect=connect, kafka=clients, connector_config=None, run_id=None,
                                    reason=recovery.reason, detail=f"{recovery.detail} (started again: rebuild "
                                    f"{recovery.id} was never signaled)", description=pipe.table_description())
    return f"rebuild {recovery.id} was never signaled (a crash between its steps): started again as rebuild {again.id}"


def _ask_again(pipe, recovery: Recovery, verdict: Verdict, connect: KafkaConnectClient, clients: KafkaClients,
               whole_rebuild) -> str:
    table = pipe.spec.qualified_table
    if recovery.signals >= MAX_SIGNALS or verdict.state == "failed":
        why = (f"the incremental snapshot of {table} did not complete ({verdict.detail}; {recovery.signals} "
               "signals sent): the whole connector re-snapshots instead")
        log.error("rebuild %s: %s", recovery.id, why)
        with rebuild_locks(pipe):
            whole = whole_rebuild(pipe, connect=connect, kafka=clients, connector_config=None, run_id=None,
                                  reason=recovery.reason, detail=f"{recovery.detail}; {why}",
                                  description=pipe.table_description())
        return f"rebuild {whole.id}: {why}"
    log.warning("rebuild %s: asking Debezium again for %s (%s)", recovery.id, table, verdict.detail)
    # The rebuilt state is kept: a read again of every row overwrites what it holds.
    signal_id = send_table_signal(pipe, clients, recovery)
    return f"rebuild {recovery.id}: {verdict.detail}; signal {signal_id} sent again"


def _confirm_in_topic(scanned, connect: KafkaConnectClient) -> dict[str, str]:
    """Debezium has scanned these tables: stop the connector so that Kafka Connect flushes what the task sent and
    commits its offsets, then check those offsets no longer list the tables; resume. A marked stop
    (recovery/connector_stop.py): a task killed while the connector is stopped leaves it to the next registration."""
    first = scanned[0][0]
    with marked_stop(first, connect, CONFIRM):
        try:
            still = tables_still_snapshotting(connect.offsets(first.spec.name))
        finally:
            connect.resume(first.spec.name)
    lines = {}
    for pipe, recovery in scanned:
        table = pipe.spec.qualified_table
        if table in still or "?" in still:
            lines[table] = f"rebuild {recovery.id}: scanned, but Kafka Connect's offsets still list it; checked again next run"
            continue
        pipe.history.incidents.recovery_step(recovery.id, "snapshot_confirmed")
        log.info("rebuild %s: %s was read whole and every read is in the topic; the next complete batch finishes "
                 "the rebuild", recovery.id, table)
        lines[table] = f"rebuild {recovery.id}: snapshot of {table} confirmed"
    return lines
