"""What every pipeline DAG shares, one table or several: schedule, retries, params, the register and consume tasks'
settings. Imported at parse time: nothing heavy."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Param

from cdc_airflow.task_runtime import refusals_fail_at_once
from cdc_pipeline.connector_spec import ConnectorSpec

DEFAULT_MAX_EVENTS = 10_000
START_FROM_PATTERN = r"^\d{4}-\d{2}-\d{2}([T ][0-9:.+\-]*Z?)?$"
SCHEDULE = "* * * * *"  # cron, so run ids are whole minutes
PIPELINE_TASKS = ("register_connector", "consume_batch", "merge_batch")
# Registration retries briefly and runs beside the drain: an unreachable source or Kafka Connect never holds
# back what Kafka already has.
REGISTER_TASK = dict(task_id="register_connector", retries=1, retry_delay=timedelta(seconds=10),
                     retry_exponential_backoff=False, execution_timeout=timedelta(minutes=5), multiple_outputs=False)
CONSUME_TASK = dict(task_id="consume_batch", execution_timeout=timedelta(minutes=15), multiple_outputs=False)
RETRIES = {"retries": 3, "retry_delay": timedelta(seconds=20), "retry_exponential_backoff": True,
           "max_retry_delay": timedelta(minutes=5), "retry_policy": refusals_fail_at_once()}


def connector_task_defaults(spec: ConnectorSpec, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every task of a connector's DAGs: ``base`` plus, when the connector file names one, its Airflow queue, so
    the worker that holds the connector's folder runs them all (CeleryExecutor; LocalExecutor ignores queues)."""
    defaults = dict(base or {})
    if spec.settings.queue:
        defaults["queue"] = spec.settings.queue
    return defaults


def pipeline_dag_arguments(spec: ConnectorSpec, description: str, doc_md: str) -> dict[str, Any]:
    """What every pipeline DAG shares, one table or several: schedule, retries, params."""
    return dict(
        dag_id=spec.dag_id,
        description=description,
        schedule=SCHEDULE,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        # Backfills go to the connector's backfill DAG: here, reprocessing a scheduled run would rewrite its record.
        allowed_run_types=["scheduled", "manual"],
        max_active_runs=1,
        dagrun_timeout=timedelta(minutes=30),
        default_args=connector_task_defaults(spec, RETRIES),
        tags=["cdc", "debezium", "csv", spec.name],
        doc_md=doc_md,
        params={
            "max_events": Param(DEFAULT_MAX_EVENTS, type="integer", minimum=1, maximum=5_000_000,
                                title="Most events this run reads" + (" per table" if spec.many_tables else ""),
                                description="The next run continues where this one stopped. Example: 10000."),
            # The pattern refuses what is plainly not a date at trigger time (422); the task parses the rest.
            "start_from": Param(None, type=["null", "string"], maxLength=40, pattern=START_FROM_PATTERN,
                                title="Start from (new pipelines only)",
                                description="ISO date or date-time, UTC if no zone, e.g. 2026-11-24 or "
                                            "2026-11-24T08:00:00Z: events committed before it are skipped. Only for a "
                                            f"pipeline that has not read anything yet; to move an existing one, trigger "
                                            f"{spec.dag_id}_ops with operation=reset_to_date."),
            "connector_timeout_seconds": Param(60, type="integer", minimum=5, maximum=900,
                                               title="Seconds register_connector waits for RUNNING"),
        },
        render_template_as_native_obj=True,
    )
