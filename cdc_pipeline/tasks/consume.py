"""consume_batch: a bounded batch of change events into buffer.csv, offsets committed once it is durable.

Order of the steps, and what a crash between them leaves (every case is in the crash-matrix tests):
1. where to read: the run history's resume point, checked against what Kafka still holds (recovery.detection);
   a loss starts a rebuild (on_data_loss=resnapshot) or fails the run (fail);
2. read and decode; too many undecodable messages, or a schema change, stop here with nothing written;
3. buffer.csv written atomically                 — crash: the next run reads the same range again, deduplicated;
4. the range recorded as the new resume point     — crash: the retry commits it, no second read;
5. the offsets committed to the consumer group    — a mirror of the history, for lag monitoring.
"""

from __future__ import annotations

import functools
import json
import logging
from datetime import datetime
from typing import Any

from cdc_pipeline.buffer.batch_buffer import BatchBuffer
from cdc_pipeline.connector_folder import refuse_flat_over_nested
from cdc_pipeline.crashpoints import crashpoint
from cdc_pipeline.debezium.events import RenderContext
from cdc_pipeline.errors import BrokerUnreachableError, DeadLettersError
from cdc_pipeline.buffer.event_collector import EventCollector
from cdc_pipeline.formatting import describe_counts, describe_moved, describe_ranges
from cdc_pipeline.history import DURABLE, RunRef, RunStatus, utc_now
from cdc_pipeline.kafka.client import KafkaClients
from cdc_pipeline.kafka.offsets import commit_offsets, committed_offsets, offsets_at_time
from cdc_pipeline.kafka.reader import ReadResult, read_range
from cdc_pipeline.kafka.topic import TopicState, inspect_topic
from cdc_pipeline.pipeline import Pipeline
from cdc_pipeline.pipeline_lock import rebuild_locks
from cdc_pipeline.recovery.detection import LossFound, NothingToRead, ReadPlan, plan_read
from cdc_pipeline.recovery.rebuild import refuse, start_rebuild
from cdc_pipeline.recovery.schema_signature import signature_change
from cdc_pipeline.services import Services
from cdc_pipeline.state import StateStore
from cdc_pipeline.tasks.operations_guard import skip_for_operation
from cdc_pipeline.tasks.tracking import tracked

log = logging.getLogger(__name__)

START_FROM_SETTING = "start_from_ms"


def consume_batch(
    pipe: Pipeline,
    services: Services,
    run: RunRef,
    *,
    max_events: int,
    kafka: KafkaClients | None = None,
    start_from: datetime | None = None,
    max_seconds: float = 120.0,
) -> dict[str, Any]:
    """Read one bounded batch into buffer.csv and record it. ``kafka``: clients already open for the connector (a
    connector of several tables reads them all with one consumer); else the services' are opened for this batch.
    Kafka Connect is asked only when a data loss or a schema change starts a rebuild."""
    if kafka is None:
        with services.kafka(pipe.spec.name) as clients:
            return consume_batch(pipe, services, run, max_events=max_events, kafka=clients, start_from=start_from,
                                 max_seconds=max_seconds)
    connect = services.connect
    connector_config = functools.partial(services.connector_config, pipe.spec)
    history = pipe.history
    with tracked(history, run, "consume_batch") as summary:
        summary.update(topic=pipe.spec.topic, buffer=str(pipe.layout.buffer))
        refuse_flat_over_nested(pipe.connector_folder.parent, pipe.spec)
        if skip_for_operation(pipe, run, summary, holding_lock=False):
            return summary
        with rebuild_locks(pipe):  # a loss or a schema change found here starts a rebuild
            if skip_for_operation(pipe, run, summary, holding_lock=True):
                return summary
            return _consume_locked(pipe, kafka, run, summary, max_events=max_events, connect=connect,
                                   connector_config=connector_config, start_from=start_from, max_seconds=max_seconds)


def _consume_locked(pipe: Pipeline, kafka: KafkaClients, run: RunRef, summary: dict, *, max_events, connect,
                    connector_config, start_from, max_seconds) -> dict[str, Any]:
    history = pipe.history
    record = history.runs.get_run(run.run_id) or {}
    if record.get("status") in DURABLE:
        return _finish_recorded_batch(pipe, kafka, run, record, summary)
    if _written_by_the_previous_version(pipe):
        return _upgrade(pipe, kafka, run, summary, connect, connector_config)
    out_of_step = state_out_of_step(pipe)
    if out_of_step:
        return _rebuild_instead(pipe, kafka, run, summary, reason="state_lost", detail=out_of_step, lost=None,
                                field="recovery", connect=connect, connector_config=connector_config)
    try:
        topic = inspect_topic(kafka, pipe.spec.topic)
        decision = _decide(pipe, kafka, topic, run, start_from)
    except BrokerUnreachableError as exc:
        history.incidents.seen_down("broker", run.run_id, str(exc))
        raise
    history.incidents.seen_up("broker", run.run_id)
    if isinstance(decision, NothingToRead):
        history.runs.update_run(run.run_id, topic=pipe.spec.topic, status=RunStatus.COMMITTED.value,
                                notes=[decision.reason])
        summary.update(events=0, notes=[decision.reason])
        log.info("consume: %s", decision.reason)
        return summary
    if isinstance(decision, LossFound):
        return _rebuild_instead(pipe, kafka, run, summary, reason="data_loss", detail=decision.summary,
                                lost=decision.lost, field="recovery", connect=connect, connector_config=connector_config)
    return _read_and_buffer(pipe, kafka, run, topic, decision, summary, max_events=max_events,
                            max_seconds=max_seconds, connect=connect, connector_config=connector_config)


def _decide(pipe: Pipeline, kafka: KafkaClients, topic: TopicState, run: RunRef, start_from: datetime | None):
    history = pipe.history
    resume = history.runs.resume_point()
    incarnation = history.incidents.incarnation(resume.incarnation) if resume and resume.incarnation else None
    committed = None
    first_starts = None
    if topic.exists and resume is not None and incarnation is not None and incarnation.topic_id == topic.topic_id:
        committed = committed_offsets(kafka, pipe.spec.topic, list(topic.partitions))
    if resume is None and start_from is not None and topic.exists:
        cutoff = int(start_from.timestamp() * 1000)
        history.runs.set_setting(START_FROM_SETTING, str(cutoff))
        first_starts = offsets_at_time(kafka, pipe.spec.topic, list(topic.partitions), cutoff)
    return plan_read(topic, resume, incarnation, committed=committed, first_starts=first_starts)


def _read_and_buffer(pipe: Pipeline, kafka: KafkaClients, run: RunRef, topic: TopicState, plan: ReadPlan,
                     summary: dict, *, max_events: int, max_seconds: float, connect, connector_config) -> dict:
    history, spec = pipe.history, pipe.spec
    resume = history.runs.resume_point()
    epoch = resume.epoch if resume else 0
    incarnation = plan.incarnation
    if incarnation is None:
        incarnation = history.incidents.add_incarnation(spec.topic, plan.topic_id, run.run_id)
        log.warning("consume: topic %s is incarnation %s (id %s)", spec.topic, incarnation, plan.topic_id)
    else:
        known = history.incidents.incarnation(incarnation)
        if known and known.clean_end is not None:
            history.incidents.clear_clean_end(incarnation)  # its broker kept it: a later stop records a new end
    notes = list(plan.notes)
    description = pipe.table_description()
    context = RenderContext.from_description(description) if description else RenderContext()
    cutoff = history.runs.get_setting(START_FROM_SETTING)
    collector = EventCollector(spec, incarnation=incarnation, context=context,
                               start_from_ms=int(cutoff) if cutoff else None)
    consume_started = utc_now()
    result = read_range(kafka, spec.topic, plan.starts, collector.add, max_events=max_events, max_seconds=max_seconds)
    if collector.dead_letters and len(collector.dead_letters) > spec.settings.max_dead_letters:
        collector.write_dead_letters(pipe.layout.dead_letters)
        raise DeadLettersError(
            f"{len(collector.dead_letters)} messages of this batch cannot be decoded (max_dead_letters is "
            f"{spec.settings.max_dead_letters}); nothing was buffered or committed. First: {collector.first_dead_letter()}. "
            f"All are in {pipe.layout.dead_letters}. Fix the cause (usually a connector setting or a column type), or "
            "raise max_dead_letters in the connector file to let that many pass.")
    change = signature_change(history.runs, collector.signatures, epoch)
    if change:
        return _rebuild_instead(pipe, kafka, run, summary, reason="schema_change", detail=change, field="schema_change",
                                connect=connect, connector_config=connector_config)
    buffered = 0
    columns = _buffer_columns(collector, description)
    if collector.rows:
        key_columns = collector.key_columns or (tuple(description.key_columns) if description else ())
        buffered = BatchBuffer(pipe.layout).add(collector.meta(columns, key_columns, epoch), collector.rows)
    if collector.dead_letters:
        collector.write_dead_letters(pipe.layout.dead_letters)
        notes.append(f"{len(collector.dead_letters)} undecodable messages set aside in {pipe.layout.dead_letters} "
                     f"(max_dead_letters {spec.settings.max_dead_letters}); first: {collector.first_dead_letter()}")
    crashpoint("consume.after_buffer_write")
    ranges = {p: (r.start, r.end) for p, r in result.ranges.items()}
    counts = collector.counts()
    backlog = _backlog(topic, result)
    history.runs.record_batch(
        run.run_id, incarnation=incarnation, epoch=epoch, ranges=ranges, topic=spec.topic,
        batch_complete=int(result.complete), max_lsn=collector.max_lsn, max_source_ts=collector.max_source_ts(),
        backlog=backlog, notes=notes or None, **counts)
    crashpoint("consume.after_history_buffered")
    commit_offsets(kafka, spec.topic, {p: end for p, (_, end) in ranges.items()})
    crashpoint("consume.after_commit")
    history.runs.update_run(run.run_id, status=RunStatus.COMMITTED.value, offsets_committed=1)
    _note_rebuild_progress(pipe, run, result, consume_started, collector)
    summary.update(events=result.records_read, complete=result.complete, incarnation=incarnation,
                   offset_ranges={str(p): list(r) for p, r in sorted(ranges.items())}, buffer_rows=buffered,
                   backlog=backlog, notes=notes, **counts)
    for note in notes:
        log.warning("consume: %s", note)
    log.info("consume: %s records from %s: %s%s", result.records_read, spec.topic, describe_moved(ranges),
             "" if result.complete else " (batch limit reached: the next run continues)")
    log.info("consume: %s; %s unmerged rows in %s; backlog %s", describe_counts(counts), buffered,
             pipe.layout.buffer.name, backlog)
    return summary


def _finish_recorded_batch(pipe: Pipeline, kafka: KafkaClients, run: RunRef, record: dict, summary: dict) -> dict:
    """A retry after the batch was made durable: only the commit may be missing; nothing is read again."""
    ranges = json.loads(record.get("offset_ranges") or "{}")
    if not record.get("offsets_committed"):
        incarnation = pipe.history.incidents.incarnation(record["incarnation"]) if record.get("incarnation") else None
        topic = inspect_topic(kafka, pipe.spec.topic)
        if incarnation is not None and topic.exists and topic.topic_id == incarnation.topic_id:
            commit_offsets(kafka, pipe.spec.topic, {int(p): r[1] for p, r in ranges.items()})
        pipe.history.runs.update_run(run.run_id, status=RunStatus.COMMITTED.value, offsets_committed=1)
    summary.update(events=sum(r[1] - r[0] for r in ranges.values()), offset_ranges=ranges,
                   notes=["retry: this run's batch was already in buffer.csv; committed its offsets"])
    log.info("consume: retry of a recorded batch %s: nothing read again", describe_ranges(ranges))
    return summary


def _rebuild_instead(pipe: Pipeline, kafka: KafkaClients, run: RunRef, summary: dict, *, reason: str, detail: str,
                     lost=None, field: str, connect, connector_config) -> dict:
    """The batch is not merged: a rebuild from a new snapshot starts instead (or the run fails, per the connector
    file's on_data_loss / on_schema_change). ``field`` is the run history column that tells the story."""
    spec = pipe.spec
    policy = spec.settings.on_schema_change if reason == "schema_change" else spec.settings.on_data_loss
    if policy == "fail" and reason != "upgrade":
        pipe.history.runs.update_run(run.run_id, **{field: f"{detail}; {'on_schema_change' if reason == 'schema_change' else 'on_data_loss'}=fail: nothing merged"})
        raise refuse(spec, reason, detail)
    with connect() as client:
        recovery = start_rebuild(pipe, connect=client, kafka=kafka, connector_config=connector_config(),
                                 run_id=run.run_id, reason=reason, detail=detail, lost=lost)
    done = (f"{detail}. Rebuilding from a new snapshot (rebuild {recovery.id}); destiny.csv keeps its last good "
            "content until the snapshot is complete")
    pipe.history.runs.update_run(run.run_id, topic=spec.topic, status=RunStatus.COMMITTED.value, **{field: done})
    log.warning("consume: %s%s", "DATA LOSS: " if reason == "data_loss" else "", detail)
    log.warning("consume: rebuild %s started; destiny.csv keeps its last good content until it completes", recovery.id)
    summary.update(events=0, lost=lost, **{field: done})
    return summary


def state_out_of_step(pipe: Pipeline) -> str | None:
    """Why ``state/`` cannot hold what the run history says was merged into it (None when it can).

    Reading on would resume into a partial table: ``state/`` lost (a hand deletion, a disk replaced) while the
    history records merged batches of the current lineage, or restored from a backup older than the last merged
    batch, whose events it then lacks (a batch's events lie inside its offset range, and a state that merged them
    has a merged range ending past that range's start in some partition)."""
    store = StateStore(pipe.layout)
    if store.rebuild() is not None or pipe.layout.legacy_state.exists():
        return None  # a rebuild (or the upgrade of an old folder) replaces the live state anyway
    live, runs = store.live(), pipe.history.runs
    epoch = live.epoch if live is not None else runs.current_epoch()
    last = runs.last_run_where(
        "status = 'merged' AND epoch = ? AND offset_ranges IS NOT NULL AND coalesce(creates, 0) + "
        "coalesce(updates, 0) + coalesce(deletes, 0) + coalesce(reads, 0) + coalesce(truncates, 0) > "
        "coalesce(merge_stale, 0)", (epoch,))  # a batch whose every event was stale wrote no generation
    if last is None:
        return None
    when = last.get("ended_at") or last.get("started_at")
    if live is None:
        return (f"state/ holds no table, but run {last['run_id']} merged {last.get('destiny_rows')} rows into it at "
                f"{when}: the state was lost (a restore without it, a full disk, a hand deletion), so reading on "
                "would build a partial table")
    ranges = {int(p): r for p, r in json.loads(last["offset_ranges"]).items() if r[1] > r[0]}
    incarnation = last.get("incarnation")
    if not ranges or incarnation is None:
        return None
    merged_past_start = any(end > ranges[p][0] for p in ranges
                            for _start, end, _lsn in live.merged_ranges.get((incarnation, p), []))
    if merged_past_start:
        return None
    return (f"state/ ({live.id}, {live.rows} rows) lacks the events of run {last['run_id']} (offsets "
            f"{describe_ranges({p: tuple(r) for p, r in ranges.items()})}, merged at {when}): it was restored from "
            "an earlier time than runs.sqlite, so reading on would keep a partial table")


def _written_by_the_previous_version(pipe: Pipeline) -> bool:
    store = StateStore(pipe.layout)
    return pipe.layout.legacy_state.exists() and store.live() is None and store.rebuild() is None


def _upgrade(pipe: Pipeline, kafka: KafkaClients, run: RunRef, summary: dict, connect, connector_config) -> dict:
    """A folder of the previous version (a whole-table Parquet state): rebuild it once from a new snapshot, aside;
    its destiny.csv stays as it is until the rebuilt state replaces it."""
    if pipe.table_description() is None:
        note = "this folder was written by the previous version; waiting for register_connector to describe the table"
        pipe.history.runs.update_run(run.run_id, status=RunStatus.COMMITTED.value, notes=[note])
        summary.update(events=0, notes=[note])
        return summary
    detail = (f"upgrade: {pipe.layout.legacy_state.name} is the previous version's state; the keyed state store is "
              "built from a new snapshot")
    return _rebuild_instead(pipe, kafka, run, summary, reason="upgrade", detail=detail, field="recovery",
                            connect=connect, connector_config=connector_config)


def _note_rebuild_progress(pipe: Pipeline, run: RunRef, result: ReadResult, consume_started: str,
                           collector: EventCollector) -> None:
    """A complete batch that started after the rebuild's snapshot was confirmed holds all of it."""
    recovery = pipe.history.incidents.active_recovery()
    if recovery is None:
        return
    if recovery.step == "snapshot_confirmed" and result.complete and recovery.snapshot_confirmed_at <= consume_started:
        pipe.history.incidents.recovery_step(recovery.id, "snapshot_read")
        log.warning("consume: rebuild %s: the whole snapshot is read (%s snapshot reads in this batch); the merge "
                    "makes it live", recovery.id, collector.snapshot_reads)
    elif collector.snapshot_reads:
        log.info("consume: rebuild %s: %s snapshot reads so far in this batch%s", recovery.id, collector.snapshot_reads,
                 " (Debezium marked the last one)" if collector.last_snapshot_marker else "")


def _buffer_columns(collector: EventCollector, description) -> tuple[str, ...]:
    if collector.signatures:
        return next(iter(collector.signatures.values()))
    return tuple(description.column_names) if description else ()


def _backlog(topic: TopicState, result: ReadResult) -> int:
    """Offsets left after this batch, up to each partition's high watermark as ListOffsets answered it before the
    read (records produced since are not counted; gaps left by compaction or transaction markers are)."""
    left = 0
    for p, r in result.ranges.items():
        left += max(0, topic.listed_high.get(p, r.end) - r.end)
    return left
