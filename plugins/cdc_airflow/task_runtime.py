"""What every CDC task needs from Airflow at run time: its run reference, the upstream failures, one-line errors.

Imported by the DAG factory at parse time, so it imports nothing heavy.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from cdc_pipeline.errors import CdcError
from cdc_pipeline.history.runs import RunRef

log = logging.getLogger(__name__)


def run_ref(context) -> RunRef:
    dag_run = context["dag_run"]
    ti = context["ti"]
    start = context.get("data_interval_start") or dag_run.logical_date
    end = context.get("data_interval_end") or dag_run.logical_date
    return RunRef(
        run_id=dag_run.run_id,
        try_number=int(ti.try_number),
        max_tries=int(ti.max_tries) + 1,  # Airflow's max_tries counts the retries: "try 1 out of max_tries + 1"
        logical_start=start.isoformat() if start else None,
        logical_end=end.isoformat() if end else None,
    )


def failed_upstream(context, task_ids: tuple[str, ...]) -> list[str]:
    """The run's tasks among ``task_ids`` that ended failed or upstream_failed, as Airflow recorded them.

    The execution API answers ``{run_id: {task_id: state}}`` (checked against the real Airflow in
    tests/airflow).
    """
    dag_run = context["dag_run"]
    states = context["ti"].get_task_states(dag_id=context["dag"].dag_id, run_ids=[dag_run.run_id],
                                           task_ids=list(task_ids))
    by_task = states[dag_run.run_id]
    return sorted(task for task, state in by_task.items() if getattr(state, "value", state) in ("failed", "upstream_failed"))


class RefusalExit(SystemExit):
    """The task ends on a refusal that trying again cannot change (``CdcError.retry_helps`` is False): the DAGs'
    retry policy (``refusals_fail_at_once``) fails it at once instead of after its retries."""


def refusals_fail_at_once():
    """The retry policy of every CDC task: a RefusalExit fails the task at once; anything else retries as set."""
    from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule

    return ExceptionRetryPolicy(rules=[RetryRule(
        exception=RefusalExit, action=RetryAction.FAIL,
        reason="trying again cannot change this answer (the error above says what to fix)")])


def one_line_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """An expected failure (an outage, a refusal, bad input) ends the task with one readable log line and no
    traceback; anything else is a bug and keeps its traceback. Retries apply, except to refusals that trying
    again cannot change."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except CdcError as exc:
            if not exc.expected:
                raise
            for line in str(exc).splitlines() or [type(exc).__name__]:
                log.error("%s", line)
            # The task runner logs a SystemExit as one line ("Task exited") and asks the retry policy.
            raise (SystemExit(1) if exc.retry_helps else RefusalExit(1)) from None

    return wrapper
