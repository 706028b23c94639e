"""Scheduled runs step aside while an operator command (reset, resnapshot) is running or unfinished."""

from __future__ import annotations

import logging

from cdc_pipeline.history import RunRef, RunStatus
from cdc_pipeline.pipeline import Pipeline
from cdc_pipeline.pipeline_lock import is_locked

log = logging.getLogger(__name__)


def operation_in_progress(pipe: Pipeline, *, holding_lock: bool) -> str | None:
    """A one-line description of the operator command that holds this pipeline, or None.

    An operator command holds the pipeline lock from start to end, so a command marked running whose lock is
    free (or held by the caller itself) has died.
    """
    running = pipe.history.incidents.running_operation()
    if running is None:
        return None
    if not holding_lock and is_locked(pipe.layout):
        return (f"operator command {running['kind']} (started {running['started_at']} from {running['origin']}) is "
                "running; this run waits for the next schedule")
    return (f"operator command {running['kind']} started {running['started_at']} from {running['origin']} did not "
            f"finish (its process is gone): run it again, or clear it with python -m cdc_pipeline operations "
            f"--connector {pipe.spec.name} --clear")


def skip_for_operation(pipe: Pipeline, run: RunRef, summary: dict, *, holding_lock: bool) -> bool:
    reason = operation_in_progress(pipe, holding_lock=holding_lock)
    if reason is None:
        return False
    pipe.history.runs.update_run(run.run_id, status=RunStatus.SKIPPED.value, notes=[reason])
    summary.update(skipped=reason)
    log.warning("skipped: %s", reason)
    return True
