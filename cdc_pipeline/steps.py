"""The three steps of a pipeline run, as plain functions: register, consume, merge.

Each takes its clients and paths as arguments (the Airflow edge builds them from connections), records
its try in the run history, logs a one-line human summary and returns a small summary dict (paths and
numbers, never data) that becomes the task's XCom value. Each is safe to retry and to run twice.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer

from cdc_pipeline.atomic import atomic_write_text
from cdc_pipeline.batch_buffer import BatchBuffer
from cdc_pipeline.connector_spec import ConnectorSpec
from cdc_pipeline.errors import KafkaError, RunFailedError
from cdc_pipeline.event_collector import EventCollector
from cdc_pipeline.kafka_batch import (
    OffsetOutOfRangeError,
    commit_offsets,
    plan_start,
    read_range,
    topic_partitions,
    watermarks,
)
from cdc_pipeline.kafka_connect import KafkaConnectClient
from cdc_pipeline.merge import DestinyTable, merge_batch
from cdc_pipeline.pipeline_lock import pipeline_lock
from cdc_pipeline.run_history import RunHistory, RunRef, utc_now
from cdc_pipeline.source.checks import SourceParams, check_source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelinePaths:
    """Where one pipeline keeps its files: ``<data dir>/<connector name>/``."""

    folder: Path

    @classmethod
    def for_connector(cls, data_dir: str | Path, spec: ConnectorSpec) -> PipelinePaths:
        return cls(Path(data_dir) / spec.name)

    @property
    def history(self) -> Path:
        return self.folder / "runs.sqlite"

    @property
    def table_info(self) -> Path:
        return self.folder / "table.json"

    @property
    def dead_letters(self) -> Path:
        return self.folder / "dead_letters.jsonl"


DURATION_COLUMNS = {
    "register_connector": "register_seconds",
    "consume_batch": "consume_seconds",
    "merge_batch": "merge_seconds",
}


@contextmanager
def tracked(history: RunHistory, run: RunRef, task_id: str) -> Iterator[dict[str, Any]]:
    """Record the try in task_tries and its duration in runs; the body fills the summary dict."""
    history.ensure_run(run)
    history.start_try(run, task_id)
    started = time.monotonic()
    summary: dict[str, Any] = {}
    try:
        yield summary
    except BaseException as exc:
        duration = time.monotonic() - started
        history.end_try(run, task_id, status="failed", duration=duration, summary=summary, error=str(exc)[:4000])
        history.update_run(run.run_id, status="failed", error=f"{task_id}: {str(exc)[:4000]}", ended_at=utc_now())
        raise
    duration = time.monotonic() - started
    summary["seconds"] = round(duration, 3)
    history.end_try(run, task_id, status="success", duration=duration, summary=summary)
    history.update_run(run.run_id, **{DURATION_COLUMNS[task_id]: round(duration, 3)})
    # A later try that succeeded clears its own task's error; another task's error stays visible.
    history.clear_error(run.run_id, task_id)


def register_connector(
    spec: ConnectorSpec,
    connect: KafkaConnectClient,
    source: SourceParams,
    paths: PipelinePaths,
    run: RunRef,
    *,
    timeout: float = 90.0,
) -> dict[str, Any]:
    """Check the source, create or update the connector (a no-op when unchanged), wait until RUNNING."""
    history = RunHistory(paths.history)
    with tracked(history, run, "register_connector") as summary:
        report = check_source(source, spec.schema, spec.table, spec.slot_name)
        atomic_write_text(
            paths.table_info,
            json.dumps({"table": spec.qualified_table, "key_columns": report.key_columns, "key_types": report.key_types}, indent=2) + "\n",
        )
        action = connect.put_config(spec.name, spec.config_for_source(
            host=source.host, port=source.port, user=source.user, password=source.password, dbname=source.dbname,
        ))
        status = connect.wait_until_running(spec.name, timeout=timeout)
        summary.update(
            connector=spec.name, config=action, state=status.describe(), wal_level=report.wal_level,
            slot=spec.slot_name, slot_exists=report.slot_exists, slot_retained_wal_bytes=report.slot_retained_wal_bytes,
            notes=report.notes,
        )
        history.update_run(run.run_id, topic=spec.topic)
        log.info(
            "connector %s: config %s; %s; source wal_level=%s, slot %s %s (retained WAL: %s bytes)",
            spec.name, action, status.describe(), report.wal_level, spec.slot_name,
            "exists" if report.slot_exists else "will be created", report.slot_retained_wal_bytes,
        )
    return summary


def consume_batch(
    spec: ConnectorSpec,
    consumer: Consumer,
    paths: PipelinePaths,
    run: RunRef,
    *,
    max_events: int,
    start_from: datetime | None = None,
    max_seconds: float = 120.0,
) -> dict[str, Any]:
    """Read a bounded batch into buffer.csv, commit its end offsets, record the resume point.

    A retry of the same run re-reads exactly the range its first try recorded. Offsets are committed
    only after buffer.csv is durable, so a crash at any point loses nothing: the next try or run reads
    the uncommitted events again, and the buffer deduplicates them.
    """
    history = RunHistory(paths.history)
    buffer = BatchBuffer(paths.folder)
    with tracked(history, run, "consume_batch") as summary, pipeline_lock(paths.folder):
        summary.update(topic=spec.topic, buffer=str(buffer.path))
        partitions = topic_partitions(consumer, spec.topic)
        if partitions is None:
            summary.update(events=0, notes=[f"topic {spec.topic} does not exist yet: no change captured so far"])
            history.update_run(run.run_id, topic=spec.topic, status="committed", notes=summary["notes"])
            log.info("consume: topic %s does not exist yet; nothing to read", spec.topic)
            return summary

        notes: list[str] = []
        recorded = history.recorded_ranges(run.run_id)
        if recorded is not None:
            notes.append("retry: re-reading the offset range recorded by the first try")
            starts = {p: r[0] for p, r in recorded.items()}
            fixed_ends: dict[int, int] | None = {p: r[1] for p, r in recorded.items()}
        else:
            start_from_ms = int(start_from.timestamp() * 1000) if start_from else None
            plan = plan_start(consumer, spec.topic, partitions,
                              last_recorded_ends=history.last_committed_ends(spec.topic), start_from_ms=start_from_ms)
            notes += plan.notes
            if plan.from_timestamp_ms is not None:
                # Kept for every later run and retry: events older than the cut-off are skipped for good.
                history.set_setting("start_from_ms", str(plan.from_timestamp_ms))
            starts, fixed_ends = plan.starts, None
        cutoff = history.get_setting("start_from_ms")
        collector, result = _read_batch(consumer, spec, starts, fixed_ends, notes, max_events=max_events,
                                        max_seconds=max_seconds, start_from_ms=int(cutoff) if cutoff else None)
        for note in notes:
            log.warning("consume: %s", note)

        buffered = 0
        if collector.rows:
            _, buffered = buffer.add(collector.meta(), collector.rows)
        if collector.dead_letters:
            collector.write_dead_letters(paths.dead_letters)
        ranges = {str(p): [r.start, r.end] for p, r in sorted(result.ranges.items())}
        counts = collector.counts()
        # Recorded before the commit: a retry after a failed commit re-reads exactly this range.
        history.update_run(
            run.run_id, topic=spec.topic, status="buffered", offset_ranges=ranges,
            max_lsn=collector.max_lsn, max_source_ts=collector.max_source_ts(), notes=notes or None, **counts,
        )
        commit_offsets(consumer, spec.topic, {p: r.end for p, r in result.ranges.items()})
        history.update_run(run.run_id, status="committed", offsets_committed=1)

        summary.update(
            events=result.records_read, complete=result.complete, offset_ranges=ranges, buffer_rows=buffered,
            dead_letters=str(paths.dead_letters) if collector.dead_letters else None, notes=notes, **counts,
        )
        log.info(
            "consume: read %s records of %s (%s); %s; c=%s u=%s d=%s r=%s, tombstones=%s, other tables=%s, "
            "dead-lettered=%s, before start=%s; offsets committed%s",
            result.records_read, spec.topic, _describe_ranges(result.ranges),
            f"{buffered} unmerged rows now in {buffer.path}" if collector.rows else f"{buffer.path} unchanged",
            counts["creates"], counts["updates"], counts["deletes"], counts["reads"], counts["tombstones"],
            counts["other_tables"], counts["dead_lettered"], counts["before_start"],
            "" if result.complete else " (batch limit reached: the next run continues)",
        )
    return summary


def _read_batch(consumer, spec, starts, fixed_ends, notes, *, max_events, max_seconds, start_from_ms):
    """read_range, restarting from the log start any partition whose position is past the log end.

    Past the end means the topic was recreated or the broker lost its data; below the log start means
    retention deleted unread events, which no restart repairs: that one fails with the remedy.
    """
    starts = dict(starts)
    for _ in range(len(starts) + 1):
        collector = EventCollector(spec, start_from_ms=start_from_ms)
        try:
            return collector, read_range(consumer, spec.topic, starts, collector.add, max_events=max_events,
                                         fixed_ends=fixed_ends, max_seconds=max_seconds)
        except OffsetOutOfRangeError as exc:
            low, _high = watermarks(consumer, spec.topic, exc.partition)
            if fixed_ends is not None or exc.offset < low:
                raise KafkaError(
                    f"{exc}. The events from offset {exc.offset} on partition {exc.partition} can no longer be read "
                    f"(log start {low}), so destiny.csv cannot be kept consistent from this topic: re-snapshot with "
                    f"python -m cdc_pipeline resnapshot --connector {spec.name} (README, Operations)."
                ) from exc
            notes.append(f"{exc}; re-reading partition {exc.partition} from {low}")
            starts[exc.partition] = low
    raise KafkaError(f"every partition of {spec.topic} kept answering out of range; see the broker's log")


def merge_buffer(paths: PipelinePaths, run: RunRef, *, archive_keep: int = 50) -> dict[str, Any]:
    """Apply buffer.csv to destiny.csv (see cdc_pipeline.merge), then archive the buffer."""
    history = RunHistory(paths.history)
    buffer = BatchBuffer(paths.folder)
    table = DestinyTable(paths.folder)
    with tracked(history, run, "merge_batch") as summary, pipeline_lock(paths.folder):
        meta, frame = buffer.read()
        summary.update(destiny=str(table.csv_path))
        if meta is None:
            summary.update(events=0, notes=["no buffer yet: nothing captured so far"])
            log.info("merge: no buffer yet; nothing to merge")
            history.update_run(run.run_id, status="merged", ended_at=utc_now())
            return summary
        key_types = _read_key_types(paths.table_info)
        result = merge_batch(table, meta, frame, key_types)
        archived = buffer.archive(run.run_id, archive_keep) if len(frame) else None
        history.update_run(
            run.run_id, status="merged", ended_at=utc_now(), merge_inserted=result.inserted,
            merge_updated=result.updated, merge_deleted=result.deleted, merge_stale=result.stale,
            destiny_rows=result.destiny_rows,
        )
        summary.update(result.as_dict(), archived_buffer=str(archived) if archived else None)
        log.info(
            "merge: %s events -> inserted %s, updated %s, deleted %s, already applied or older %s; "
            "%s rows in %s%s",
            result.events, result.inserted, result.updated, result.deleted, result.stale, result.destiny_rows,
            table.csv_path,
            f"; {result.unavailable_values} unchanged-TOAST values had no earlier value (see README)" if result.unavailable_values else "",
        )
    return summary


def _read_key_types(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8")).get("key_types", {})


def _describe_ranges(ranges) -> str:
    return ", ".join(f"p{p}: {r.start}..{r.end}" for p, r in sorted(ranges.items())) or "no partitions"


RUN_SUMMARY_FIELDS = (
    "status", "offset_ranges", "creates", "updates", "deletes", "reads", "tombstones", "other_tables",
    "dead_lettered", "before_start", "max_lsn", "max_source_ts", "merge_inserted", "merge_updated",
    "merge_deleted", "merge_stale", "destiny_rows", "register_seconds", "consume_seconds", "merge_seconds", "error",
)


def finish_run(paths: PipelinePaths, run: RunRef, failed_tasks: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Close the run in the history and answer its summary; raise if one of its tasks failed.

    ``failed_tasks`` are what the orchestrator saw fail; a task can fail before it reaches the history
    (a missing connection, say), so both sources count.
    """
    history = RunHistory(paths.history)
    history.ensure_run(run)
    record = history.get_run(run.run_id) or {}
    failed = record.get("error") or (f"{', '.join(failed_tasks)} failed: see their task logs" if failed_tasks else None)
    if failed and not record.get("error"):
        history.update_run(run.run_id, error=failed)
    history.update_run(run.run_id, status="failed" if failed else record.get("status"), ended_at=utc_now())
    summary = {k: record.get(k) for k in RUN_SUMMARY_FIELDS}
    summary.update(status="failed" if failed else record.get("status"), history=str(paths.history),
                   destiny=str(paths.folder / "destiny.csv"))
    if failed:
        raise RunFailedError(f"this run had a failed task: {failed}")
    log.info("run %s: %s; %s rows in destiny.csv", run.run_id, summary["status"], summary["destiny_rows"])
    return summary
