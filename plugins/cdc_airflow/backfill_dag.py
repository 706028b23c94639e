"""A connector's backfill DAG, ``cdc_<name>_backfill``: Airflow's backfills of the pipeline, kept apart from it.

One task, ``backfill_interval``: for each table of the connector, the table as of the run's interval end and the
interval's changes, from the change log (``backfill_runner``). The runs are its own, so a backfill never clears,
re-runs or re-labels a run of the live DAG; its timetable walks the live DAG's cron ticks for backfills and
schedules nothing by itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, get_current_context, task

from cdc_airflow.backfill_timetable import BackfillOnlyTimetable
from cdc_airflow.dag_arguments import RETRIES, SCHEDULE, connector_task_defaults
from cdc_airflow.dag_docs import backfill_doc
from cdc_airflow.settings import DagSettings
from cdc_airflow.task_runtime import one_line_errors
from cdc_pipeline.connector_spec import ConnectorSpec


def backfill_dag_id(spec: ConnectorSpec) -> str:
    return f"{spec.dag_id}_backfill"


def build_backfill_dag(spec: ConnectorSpec, settings: DagSettings) -> DAG:
    data_dir = settings.data_dir
    with DAG(
        dag_id=backfill_dag_id(spec),
        description=f"Backfills of {', '.join(spec.table_names)}: snapshots/ and changes/ from the change log",
        schedule=BackfillOnlyTimetable(SCHEDULE, timezone="UTC"),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        allowed_run_types=["backfill", "manual"],
        default_args=connector_task_defaults(spec, RETRIES),
        tags=["cdc", "backfill", spec.name],
        doc_md=backfill_doc(spec),
    ) as dag:

        @task(task_id="backfill_interval", execution_timeout=timedelta(minutes=30), multiple_outputs=False)
        @one_line_errors
        def backfill_interval() -> dict[str, Any]:
            from cdc_airflow import backfill_runner

            return backfill_runner.run(spec, data_dir, get_current_context())

        backfill_interval()
    return dag
