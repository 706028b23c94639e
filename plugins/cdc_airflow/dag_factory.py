"""Build one CDC DAG per connector file; the tasks are thin wrappers around cdc_pipeline.tasks.

Parsing imports only Airflow's SDK and the light parts of cdc_pipeline (connector files, paths): the
pipeline's heavy imports (pandas, pyarrow, confluent_kafka, psycopg) happen inside the task callables, so
the dag-processor does not pay for them on every parse.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, TriggerRule, get_current_context, task

from cdc_airflow.backfill_dag import build_backfill_dag
from cdc_airflow.dag_arguments import CONSUME_TASK, PIPELINE_TASKS, REGISTER_TASK, pipeline_dag_arguments
from cdc_airflow.dag_docs import pipeline_doc
from cdc_airflow.init_dag import DAG_ID as INIT_DAG_ID, build_init_dag
from cdc_airflow.ops_dag import build_ops_dag
from cdc_airflow.settings import DagSettings
from cdc_airflow.tables_dag import build_tables_dag
from cdc_airflow.task_runtime import failed_upstream, one_line_errors
from cdc_pipeline.connector_spec import ConnectorSpec, load_connector_files
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.layout import PipelineLayout

log = logging.getLogger(__name__)

def build_dags(settings: DagSettings | None = None) -> dict[str, DAG]:
    """One DAG per connector file. A broken file gets a DAG that fails and says why, so one bad file
    neither hides the others nor goes unnoticed."""
    settings = settings or DagSettings.from_env()
    dags: dict[str, DAG] = {INIT_DAG_ID: build_init_dag(settings)}
    for path, loaded in load_connector_files(settings.connectors_dir, settings.data_dir):
        if isinstance(loaded, ConfigError):
            log.error("skipping connector file %s: %s", path, loaded)
            dag = build_invalid_connector_dag(path, loaded)
        else:
            for extra in (build_ops_dag(loaded, settings), build_backfill_dag(loaded, settings)):
                dags[extra.dag_id] = extra
            dag = build_pipeline_dag(loaded, settings)
        dags[dag.dag_id] = dag
    return dags


def build_invalid_connector_dag(path: Path, error: ConfigError) -> DAG:
    """A DAG that only reports what is wrong with a connector file (its one task fails with the message)."""
    with DAG(
        dag_id=f"cdc_{path.stem}_invalid",
        description=f"{path.name} is not a valid connector file",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        tags=["cdc", "invalid-connector"],
        doc_md=f"### `{path.name}` is not a valid connector file\n\n{error}\n\nFix the file; this DAG then disappears.",
    ) as dag:

        @task(task_id="report_invalid_connector", retries=0)
        @one_line_errors
        def report_invalid_connector() -> None:
            raise ConfigError(str(error))

        report_invalid_connector()
    return dag


def destiny_asset(spec: ConnectorSpec, layout: PipelineLayout) -> Asset:
    return Asset(name=f"cdc_{spec.name}_destiny", uri=f"file://{layout.destiny}", group="cdc")


def build_pipeline_dag(spec: ConnectorSpec, settings: DagSettings) -> DAG:
    if spec.many_tables:
        return build_tables_dag(spec, settings)
    layout = PipelineLayout.under(settings.data_dir, spec.name)
    destiny = destiny_asset(spec, layout)
    with DAG(**pipeline_dag_arguments(spec, f"CDC of {spec.qualified_table} into {layout.destiny}",
                                      pipeline_doc(spec, layout))) as dag:

        @task(**REGISTER_TASK)
        @one_line_errors
        def register_connector() -> dict[str, Any]:
            from cdc_airflow import runners

            return runners.register(spec, layout, get_current_context())

        @task(**CONSUME_TASK)
        @one_line_errors
        def consume_batch() -> dict[str, Any]:
            from cdc_airflow import runners

            return runners.consume(spec, layout, get_current_context())

        @task(task_id="merge_batch", execution_timeout=timedelta(minutes=15), multiple_outputs=False)
        @one_line_errors
        def merge_batch() -> dict[str, Any]:
            from cdc_airflow import runners

            return runners.merge(spec, layout, get_current_context())

        # destiny.csv as an Asset: its event only when the file changed (a skipped task emits none).
        @task(task_id="publish_destiny", outlets=[destiny], retries=0, multiple_outputs=False)
        @one_line_errors
        def publish_destiny(merged: dict[str, Any] | None) -> dict[str, Any]:
            from cdc_airflow import runners

            return runners.publish_destiny(get_current_context(), destiny, merged)

        sink_tasks = [_sink_task(spec, layout, sink) for sink in spec.settings.sinks if sink.type != "csv"]
        watched = PIPELINE_TASKS + tuple(sink.task_id for sink in spec.settings.sinks if sink.type != "csv")

        @task(task_id="finish_run", trigger_rule=TriggerRule.ALL_DONE, retries=0, multiple_outputs=False)
        @one_line_errors
        def finish_run() -> dict[str, Any]:
            # Airflow takes a run's state from its last task; without this one, a failed registration
            # followed by a successful drain would show green.
            from cdc_airflow import runners

            context = get_current_context()
            return runners.finish(spec, layout, context, failed_upstream(context, watched))

        registered = register_connector()
        merged = merge_batch()
        consume_batch() >> merged
        rendered = [merged >> sink() for sink in sink_tasks] or [merged]
        [registered, *rendered, publish_destiny(merged)] >> finish_run()
    return dag


def _sink_task(spec: ConnectorSpec, layout: PipelineLayout, sink):
    """One task per sink beside destiny.csv: a sink that fails fails (and retries) alone; the offsets are already
    committed and the other sinks go on. One brief retry: the next run renders the sink again anyway (it catches
    up from its ledger), and a long retry would hold the run open, and with it the next run's destiny.csv."""

    @task(task_id=sink.task_id, execution_timeout=timedelta(minutes=30), multiple_outputs=False, retries=1,
          retry_delay=timedelta(seconds=10), retry_exponential_backoff=False)
    @one_line_errors
    def render_sink() -> dict[str, Any]:
        from cdc_airflow import runners

        return runners.sink(spec, layout, get_current_context(), sink)

    return render_sink
