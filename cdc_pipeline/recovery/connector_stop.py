"""The pipeline stops its connector for a moment in two places: a whole rebuild (its offsets are deleted while it is
stopped) and the confirmation that a table's incremental snapshot is in the topic (stopping makes Kafka Connect
flush and commit). While it is stopped, a marker in the connector's folder says who stopped it and why, and the
step holds the connector's stop lock (``connector_stop_lock``) until the connector runs again (``marked_stop``).

A task killed in between (SIGKILL, an OOM, a lost worker) leaves the connector STOPPED and the marker behind, and
the lock free. The next registration heals it: a whole rebuild that had not resumed the connector starts again
(every one of its steps is safe to repeat), a confirmation's stop is resumed. A marker whose step still runs is
never taken as stale: its lock is held. A connector STOPPED with no marker was stopped by someone else: the pipeline
does not override that, it says how to resume it.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from cdc_pipeline.atomic import atomic_write_text
from cdc_pipeline.crashpoints import crashpoint
from cdc_pipeline.errors import ConnectorError
from cdc_pipeline.history import Recovery
from cdc_pipeline.kafka_connect import KafkaConnectClient
from cdc_pipeline.pipeline_lock import CONNECTOR_STOPPED, connector_stop_lock, rebuild_locks

log = logging.getLogger(__name__)

WHOLE_REBUILD = "whole_rebuild"
CONFIRM = "confirm_snapshot"


def marker_path(pipe) -> Path:
    return pipe.connector_folder / CONNECTOR_STOPPED


def read_marker(pipe) -> dict | None:
    path = marker_path(pipe)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # a torn write cannot happen (atomic), a hand edit can
        return {"purpose": "unreadable", "detail": f"{path}: {exc}"}


@contextlib.contextmanager
def marked_stop(pipe, connect: KafkaConnectClient, purpose: str, **detail) -> Iterator[None]:
    """Stop the connector for the body, under the stop lock and with the marker written first; the body resumes
    it. The marker goes when the body ends; an exception leaves it: the next registration finishes the step or
    starts it again."""
    with connector_stop_lock(pipe.connector_folder):
        atomic_write_text(marker_path(pipe), json.dumps(
            {"connector": pipe.spec.name, "purpose": purpose, "table": pipe.spec.qualified_table,
             "at": datetime.now(UTC).isoformat(timespec="seconds"), **detail}, indent=2) + "\n")
        connect.stop(pipe.spec.name)
        crashpoint(f"{purpose}.stopped")
        yield
        _clear_marker(pipe)


def _clear_marker(pipe) -> None:
    marker_path(pipe).unlink(missing_ok=True)


def heal_interrupted_stop(pipes, connect: KafkaConnectClient, *, restart_whole_rebuild: Callable) -> str | None:
    """Before registration waits for RUNNING: finish what a killed step left. Answers a line for the run's summary
    when it healed something. ``restart_whole_rebuild(pipe, recovery)`` starts a whole rebuild again."""
    first = pipes[0]
    name = first.spec.name
    marker = read_marker(first)
    if marker is None:
        status = connect.status(name)
        if status is None or status.state != "STOPPED":
            return None
        # Read again under the stop lock: a step of ours may have been stopping or resuming it just then.
        with connector_stop_lock(first.connector_folder):
            marker = read_marker(first)
            status = connect.status(name)
            if marker is None and status is not None and status.state == "STOPPED":
                raise _stopped_by_someone_else(first)
        if marker is None:
            return None
    pipe = {p.spec.qualified_table: p for p in pipes}.get(marker.get("table", ""), first)
    # The step that wrote the marker holds this lock until it resumed the connector: free means it is gone.
    with connector_stop_lock(first.connector_folder):
        marker = read_marker(first)
        if marker is None:
            return None  # it finished while we waited
        if _interrupted_rebuild(pipe, marker) is None:
            status = connect.status(name)
            if status is not None and status.state == "STOPPED":
                log.warning("connector %s was left STOPPED by an interrupted step (%s at %s): resuming it", name,
                            marker.get("purpose"), marker.get("at"))
                connect.resume(name)
            _clear_marker(first)
            return f"connector {name} was left stopped by an interrupted {marker.get('purpose')}: resumed"
    # Started again under the locks its caller held (start_whole_rebuild takes the stop lock itself).
    with rebuild_locks(pipe):
        marker = read_marker(first)
        recovery = _interrupted_rebuild(pipe, marker) if marker is not None else None
        if recovery is None:
            return None  # another step finished or restarted it meanwhile
        log.warning("connector %s: a whole rebuild (rebuild %s of %s) was interrupted before it resumed the "
                    "connector; starting it again", name, recovery.id, pipe.spec.qualified_table)
        again = restart_whole_rebuild(pipe, recovery)
        _end_dead_resnapshot(pipe, again.id)
    return (f"rebuild {recovery.id} of {pipe.spec.qualified_table} was interrupted before the connector resumed: "
            f"started again as rebuild {again.id}")


def _end_dead_resnapshot(pipe, rebuild_id: int) -> None:
    """An operator's resnapshot that died here is done once its rebuild started again: the runs that step aside for
    an unfinished command (tasks/operations_guard.py) go on. Any other dead command still waits for the operator."""
    running = pipe.history.incidents.running_operation()
    if running is not None and running["kind"] == "resnapshot":
        pipe.history.incidents.end_operation(
            running["id"], ok=True, detail=f"its process died with the connector stopped; register_connector started "
            f"its rebuild again (rebuild {rebuild_id})")


def _interrupted_rebuild(pipe, marker: dict) -> Recovery | None:
    """The whole rebuild the marker is for, when it had not resumed the connector; else None."""
    if marker.get("purpose") != WHOLE_REBUILD:
        return None
    recovery = pipe.history.incidents.active_recovery()
    return recovery if recovery is not None and recovery.step == "requested" else None


def _stopped_by_someone_else(first) -> ConnectorError:
    name = first.spec.name
    return ConnectorError(
        f"connector {name} is STOPPED in Kafka Connect, and not by this pipeline (no {CONNECTOR_STOPPED} in "
        f"{first.connector_folder}): nothing is captured while it is. Resume it with PUT /connectors/{name}/resume on "
        f"Kafka Connect's REST API (curl -u \"$CDC_CONNECT_USER\" -X PUT <connect url>/connectors/{name}/resume), or "
        f"pause the DAG {first.spec.dag_id} to stop the pipeline instead")
