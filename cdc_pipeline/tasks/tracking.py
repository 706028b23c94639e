"""Record a task try in the run history around its body."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cdc_pipeline.history import History, RunRef, TryStatus

DURATION_FIELDS = {
    "register_connector": "register_seconds",
    "consume_batch": "consume_seconds",
    "merge_batch": "merge_seconds",
}


@contextmanager
def tracked(history: History, run: RunRef, task_id: str) -> Iterator[dict[str, Any]]:
    """Record the try in task_tries and its duration in runs; the body fills the summary dict.

    A failed try records its error on the run (``<task>: <error>``, with the try number while retries are
    left) but no final status: the run's last task decides that, as Airflow does.
    """
    runs = history.runs
    with runs.transaction():  # one commit for the bookkeeping before and one after: each costs the journal's syncs
        runs.ensure_run(run)
        runs.start_try(run, task_id)
    started = time.monotonic()
    summary: dict[str, Any] = {}
    try:
        yield summary
    except BaseException as exc:
        duration = time.monotonic() - started
        tries = "" if run.last_try else f" (try {run.try_number} of {run.max_tries}, retrying)"
        with runs.transaction():
            runs.end_try(run, task_id, status=TryStatus.FAILED, duration=duration, summary=summary,
                         error=str(exc)[:4000])
            runs.update_run(run.run_id, error=f"{task_id}{tries}: {str(exc)[:4000]}")
        raise
    duration = time.monotonic() - started
    summary["seconds"] = round(duration, 3)
    with runs.transaction():
        runs.end_try(run, task_id, status=TryStatus.SUCCESS, duration=duration, summary=summary)
        fields: dict[str, Any] = {}
        if task_id in DURATION_FIELDS:
            fields[DURATION_FIELDS[task_id]] = round(duration, 3)
        record = runs.get_run(run.run_id) or {}
        if (record.get("error") or "").startswith(f"{task_id}"):
            fields["error"] = None  # a later try that succeeded clears its own task's error, not another's
        if fields:
            runs.update_run(run.run_id, **fields)
