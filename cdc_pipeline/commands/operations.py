"""Operator commands, one implementation each, reached from the CLI and from the operations DAG alike through
:mod:`cdc_pipeline.commands.operation_table` (drain: from the CLI and ``./stack stop``).

Each holds the pipeline lock for its whole duration (it waits for an in-flight run to finish its step) and
leaves a marker in the run history while it works, so scheduled runs step aside with a clear log line; a
command that dies leaves the marker, and runs keep stepping aside until it is run again or cleared.

- reset: start over from the topic's beginning, from a date, or from where a recorded run started. The
  state, destiny.csv, the buffer and the change log are moved aside (nothing is deleted); the run history
  stays and records the new resume point.
- resnapshot: rebuild from a new snapshot, aside; destiny.csv keeps its content until the rebuild is live.
- drain: merge everything the broker holds (``./stack stop`` does it after stopping Kafka Connect and
  before stopping the broker), then record that the topic incarnation ended cleanly there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from cdc_pipeline.errors import ConfigError, DataLossError, OperationInProgressError
from cdc_pipeline.history import RunRef
from cdc_pipeline.kafka.client import KafkaClients
from cdc_pipeline.kafka.offsets import commit_offsets, offsets_at_time
from cdc_pipeline.kafka.topic import inspect_topic
from cdc_pipeline.kafka_connect import KafkaConnectClient
from cdc_pipeline.pipeline import Pipeline
from cdc_pipeline.services import Services
from cdc_pipeline.pipeline_lock import pipeline_lock, rebuild_locks
from cdc_pipeline.recovery.detection import deleted_before
from cdc_pipeline.recovery.rebuild import start_rebuild, start_whole_rebuild
from cdc_pipeline.formatting import describe_positions
from cdc_pipeline.tasks.consume import START_FROM_SETTING, consume_batch
from cdc_pipeline.tasks.merge import merge_batch
from cdc_pipeline.tasks.finish import finish_run

log = logging.getLogger(__name__)

RESET_TARGETS = ("beginning", "date", "run")


@dataclass(frozen=True)
class OperationResult:
    message: str
    detail: dict


@contextlib.contextmanager
def operation(pipe: Pipeline, kind: str, params: dict, origin: str, *, lock_timeout: float = 900.0) -> Iterator[int]:
    """Hold the lock and the marker for the body; the marker records how it ended."""
    incidents = pipe.history.incidents
    with rebuild_locks(pipe, timeout=lock_timeout):
        running = incidents.running_operation()
        if running is not None:
            log.warning("operator command %s (started %s from %s) did not finish; %s replaces it", running["kind"],
                        running["started_at"], running["origin"], kind)
            incidents.end_operation(running["id"], ok=False, detail=f"abandoned; replaced by {kind} from {origin}")
        op_id = incidents.begin_operation(kind, params, origin)
        try:
            yield op_id
        except BaseException as exc:
            incidents.end_operation(op_id, ok=False, detail=str(exc))
            raise
        incidents.end_operation(op_id, ok=True, detail="done")


def clear_operation(pipe: Pipeline, origin: str) -> str:
    with pipeline_lock(pipe.layout, timeout=10):
        running = pipe.history.incidents.running_operation()
        if running is None:
            return "no operator command is marked running"
        pipe.history.incidents.end_operation(running["id"], ok=False, detail=f"cleared by {origin}")
        return f"cleared the marker of {running['kind']} started {running['started_at']} from {running['origin']}"


def reset(pipe: Pipeline, kafka: KafkaClients, *, to: str, date: datetime | None = None, run_id: str | None = None,
          origin: str) -> OperationResult:
    if to not in RESET_TARGETS:
        raise ConfigError(f"reset target must be one of {', '.join(RESET_TARGETS)} (got {to!r})")
    if to == "date" and date is None:
        raise ConfigError("reset to a date needs the date, e.g. 2026-11-24 or 2026-11-24T08:00:00Z")
    if to == "run" and not run_id:
        raise ConfigError("reset to a run needs the run id, e.g. scheduled__2026-11-24T08:00:00+00:00 "
                          "(python -m cdc_pipeline history lists them)")
    spec, history = pipe.spec, pipe.history
    params = {"to": to, "date": date.isoformat() if date else None, "run_id": run_id}
    with operation(pipe, "reset", params, origin):
        topic = inspect_topic(kafka, spec.topic)
        if not topic.exists:
            raise ConfigError(f"topic {spec.topic} does not exist, so there is nothing to reset to; the connector "
                              "creates it with its first snapshot (let the DAG run)")
        latest = history.incidents.latest_incarnation()
        incarnation = latest.seq if latest and latest.topic_id == topic.topic_id else \
            history.incidents.add_incarnation(spec.topic, topic.topic_id, origin)
        cutoff = None
        if to == "beginning":
            gone = {p: low for p, low in topic.low.items() if low > 0}
            if gone:
                raise DataLossError(
                    f"topic {spec.topic} no longer starts at offset 0 ({gone}): retention deleted its oldest events, the "
                    "snapshot among them, so a table rebuilt from it would be partial. Re-snapshot instead: "
                    f"python -m cdc_pipeline resnapshot --connector {spec.name}")
            starts = {p: 0 for p in topic.partitions}
        elif to == "date":
            cutoff = int(date.timestamp() * 1000)
            starts = offsets_at_time(kafka, spec.topic, list(topic.partitions), cutoff)
            gone = deleted_before(topic, starts)
            if gone:
                raise DataLossError(
                    f"topic {spec.topic} no longer holds its records before offsets {gone}: retention deleted them, and "
                    f"some may be newer than {date.isoformat()}, so reading from there could skip changes silently. "
                    f"Choose a later date, or re-snapshot: python -m cdc_pipeline resnapshot --connector {spec.name}")
        else:
            starts = _run_starts(pipe, run_id, incarnation, topic.partitions)
        aside = _set_aside(pipe, "before-reset")
        epoch = history.runs.current_epoch() + 1
        history.runs.set_setting(START_FROM_SETTING, str(cutoff) if cutoff is not None else None)
        history.runs.set_resume_point(reason=f"reset to {to}", incarnation=incarnation, epoch=epoch, ends=starts,
                                      run_id=origin)
        commit_offsets(kafka, spec.topic, starts)
    message = (f"reset {pipe.label} to {_target(to, date, run_id)}: the next run reads {spec.topic} from "
               f"{describe_positions(starts)} and rebuilds destiny.csv"
               + (f"; the previous files are in {aside}" if aside else ""))
    log.warning("%s", message)
    return OperationResult(message, {"starts": starts, "aside": str(aside) if aside else None, "epoch": epoch})


def resnapshot(pipe: Pipeline, kafka: KafkaClients, connect: KafkaConnectClient, *, origin: str,
               connector_config: dict[str, str] | None, whole: bool = False) -> OperationResult:
    """Rebuild ``pipe``'s table from a new snapshot: alone when its connector captures several tables (an
    incremental snapshot), every table of the connector when ``whole`` (the connector's own snapshot)."""
    description = pipe.table_description()
    if description is None:
        raise ConfigError(f"{pipe.spec.name} has never described its table (table.json): let register_connector run "
                          "once before re-snapshotting")
    start = start_whole_rebuild if whole else start_rebuild
    with operation(pipe, "resnapshot", {"whole": whole} if whole else {}, origin):
        recovery = start(pipe, connect=connect, kafka=kafka, connector_config=connector_config, run_id=origin,
                         reason="operator", description=description, detail=f"re-snapshot asked by {origin}")
    what = (f"every table of connector {pipe.spec.name}" if whole and pipe.spec.many_tables
            else f"{pipe.spec.qualified_table}" + (" alone" if recovery.incremental else ""))
    message = (f"rebuild {recovery.id} started: connector {pipe.spec.name} re-snapshots {what}; destiny.csv keeps its "
               "current content until the new snapshot is complete, then switches in one step")
    log.warning("%s", message)
    return OperationResult(message, {"recovery": recovery.id, "epoch": recovery.epoch})


def drain(pipe: Pipeline, services: Services, *, run_label: str, kafka: KafkaClients | None = None,
          max_batches: int = 100, max_events: int = 100_000) -> OperationResult:
    """Consume and merge until every partition was read to its end; then record the clean end.

    The caller stops Kafka Connect first, so the end does not move; while Connect still runs the connector the
    drain happens but no clean end is recorded (the message says so). Each batch is a run of kind ``drain`` in
    the history, through the same code as a scheduled run. ``kafka``: clients already open for the connector
    (its tables drained one after the other), else the services' are opened.
    """
    if kafka is None:
        with services.kafka(pipe.spec.name) as clients:
            return drain(pipe, services, run_label=run_label, kafka=clients, max_batches=max_batches,
                         max_events=max_events)
    for number in range(1, max_batches + 1):
        run = RunRef(f"drain__{run_label}-{number}", 1, 1)
        consumed = consume_batch(pipe, services, run, kafka=kafka, max_events=max_events)
        merge_batch(pipe, run)
        finish_run(pipe, run)  # closed like any run: status and end time
        if consumed.get("skipped"):
            raise OperationInProgressError(f"drain of {pipe.label} skipped: {consumed['skipped']}")
        if consumed.get("recovery") or consumed.get("schema_change"):
            continue  # a rebuild started: read on (its snapshot arrives once Connect runs again)
        if consumed.get("complete", True):
            break
    else:
        raise OperationInProgressError(f"drain of {pipe.label} did not reach the end in {max_batches} batches")
    resume = pipe.history.runs.resume_point()
    if resume is None or resume.incarnation is None:
        return OperationResult(f"{pipe.label}: nothing to drain (no topic read yet)", {})
    running = _connector_still_publishing(pipe, services.connect)
    if running:
        # Events can still arrive after this end: a broker that later lost them would look cleanly stopped.
        message = (f"{pipe.label}: drained to the current end of incarnation {resume.incarnation} "
                   f"({describe_positions(resume.ends)}); NOT recorded as a clean end: Kafka Connect still runs "
                   f"connector {pipe.spec.name} ({running}), so more events can arrive. Stop Kafka Connect first "
                   "(./stack stop connect), then drain again")
        log.warning("%s", message)
        return OperationResult(message, {"incarnation": resume.incarnation, "ends": resume.ends, "clean_end": False})
    pipe.history.incidents.mark_clean_end(resume.incarnation, resume.ends)
    message = (f"{pipe.label}: drained to the end of incarnation {resume.incarnation} "
               f"({describe_positions(resume.ends)}); recorded as a clean end")
    log.debug("%s", message)  # the caller prints it (the CLI, ./stack stop): at INFO it showed twice
    return OperationResult(message, {"incarnation": resume.incarnation, "ends": resume.ends, "clean_end": True})


def _connector_still_publishing(pipe: Pipeline, connect_factory) -> str | None:
    """The connector's state when Kafka Connect still runs it (it may publish more); None when Connect does not
    answer (stopped, as ./stack stop leaves it), does not know the connector, or has it stopped or paused."""
    try:
        with connect_factory() as client:
            status = client.status(pipe.spec.name)
    except Exception:  # noqa: BLE001 - an unreachable Connect publishes nothing
        return None
    if status is None or status.state in ("STOPPED", "PAUSED"):
        return None
    return status.state


def _run_starts(pipe: Pipeline, run_id: str, incarnation: int, partitions) -> dict[int, int]:
    run = pipe.history.runs.get_run(run_id)
    if run is None or not run.get("offset_ranges"):
        raise ConfigError(f"run {run_id!r} is not in {pipe.layout.history} or read nothing; pick a run with offsets "
                          "(python -m cdc_pipeline history)")
    if run.get("incarnation") != incarnation:
        raise ConfigError(f"run {run_id!r} read incarnation {run.get('incarnation')} of the topic, which the broker no "
                          f"longer holds (now {incarnation}); reset to the beginning or to a date instead")
    starts = {int(p): r[0] for p, r in json.loads(run["offset_ranges"]).items()}
    return {p: starts.get(p, 0) for p in partitions}


def _set_aside(pipe: Pipeline, label: str):
    present = [path for path in pipe.layout.derived_files() if path.exists()]
    if not present:
        return None
    aside = pipe.layout.aside(f"{label}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
    aside.mkdir(parents=True)
    for path in present:
        shutil.move(str(path), str(aside / path.name))
    return aside


def _target(to: str, date: datetime | None, run_id: str | None) -> str:
    return {"beginning": "the topic's beginning", "date": f"{date.isoformat() if date else ''}",
            "run": f"where run {run_id} started"}[to]
