"""Build one CDC DAG per connector file: register_connector >> consume_batch >> merge_batch."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, TriggerRule, get_current_context, task

from cdc_airflow.hooks import BatchConsumerHook, kafka_connect_client, source_params
from cdc_airflow.settings import DagSettings
from cdc_pipeline import steps
from cdc_pipeline.connector_spec import ConnectorSpec, load_connector_files
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.run_history import RunRef

log = logging.getLogger(__name__)

DAG_ID_PREFIX = "cdc_"
DEFAULT_MAX_EVENTS = 10_000
# An ISO date or date-time, checked when the run is triggered (jsonschema's "format" is not enforced here).
START_FROM_PATTERN = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$"

DOC_MD = """
### CDC of `{table}` into CSV

Connector file: `{path}` · topic `{topic}` · files in `{folder}`

Every minute, three tasks:

1. **register_connector** checks PostgreSQL (`wal_level=logical`, the table's primary key, the replication
   slot `{slot}`), then creates or updates the Debezium connector `{name}` on Kafka Connect (nothing is sent
   when the config is unchanged) and waits until it and every task are `RUNNING`, restarting failed tasks once.
   A failure quotes Debezium's trace. It registers on every run because a standalone Connect worker forgets its
   connectors on restart; the replication slot keeps every change meanwhile.
2. **consume_batch** reads at most `max_events` events from the consumer group's committed offsets (the first
   run: the beginning of the topic, or `start_from`) up to the end offsets seen when it starts, writes them to
   `buffer.csv` atomically, commits the offsets synchronously and records the range in the run history. It runs
   even when registration failed, so what Kafka already holds keeps flowing while the source is down.
   A retry re-reads exactly the range its first try recorded.
3. **merge_batch** applies `buffer.csv` to `destiny.csv`: per primary key the latest source position (LSN, then
   partition offset) wins; deletes are kept as tombstones so an older batch never brings a row back. Then the
   buffer is archived under `archive/`.
4. **finish_run** runs whatever happened before it: it marks the run in the history and fails the run if any
   task failed (so a failed registration shows red even though the drain succeeded). Its return value is the
   run's summary.

**Recover:** every task is safe to clear and re-run. The run history is `runs.sqlite` in the folder above
(`runs`: one row per run with its offsets and counts; `task_tries`: one row per try). A message that cannot be
decoded is in `dead_letters.jsonl` and counted; the run goes on. See the README's Operations section for
starting from a date, resetting, and backfilling.
"""


def build_dags(settings: DagSettings | None = None) -> dict[str, DAG]:
    """One DAG per connector file. A broken file gets a DAG that fails and says why, so one bad file
    neither hides the others nor goes unnoticed."""
    settings = settings or DagSettings.from_env()
    dags: dict[str, DAG] = {}
    for path, loaded in load_connector_files(settings.connectors_dir):
        if isinstance(loaded, ConfigError):
            log.error("skipping connector file %s: %s", path, loaded)
            dag = build_invalid_connector_dag(path, loaded)
        else:
            dag = build_pipeline_dag(loaded, settings)
        dags[dag.dag_id] = dag
    return dags


def build_invalid_connector_dag(path: Path, error: ConfigError) -> DAG:
    """A DAG that only reports what is wrong with a connector file (its one task fails with the message)."""
    with DAG(
        dag_id=f"{DAG_ID_PREFIX}{path.stem}_invalid",
        description=f"{path.name} is not a valid connector file",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        tags=["cdc", "invalid-connector"],
        doc_md=f"### `{path.name}` is not a valid connector file\n\n{error}\n\nFix the file; this DAG then disappears.",
    ) as dag:

        @task(task_id="report_invalid_connector", retries=0)
        def report_invalid_connector() -> None:
            raise ConfigError(str(error))

        report_invalid_connector()
    return dag


def build_pipeline_dag(spec: ConnectorSpec, settings: DagSettings) -> DAG:
    paths = steps.PipelinePaths.for_connector(settings.data_dir, spec)
    with DAG(
        dag_id=f"{DAG_ID_PREFIX}{spec.name}",
        description=f"CDC of {spec.qualified_table} from Debezium into {paths.folder}/destiny.csv",
        schedule=timedelta(minutes=1),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=timedelta(minutes=30),
        default_args={"retries": 3, "retry_delay": timedelta(seconds=20), "retry_exponential_backoff": True,
                      "max_retry_delay": timedelta(minutes=5)},
        tags=["cdc", "debezium", "csv", spec.name],
        doc_md=DOC_MD.format(table=spec.qualified_table, path=spec.path, topic=spec.topic, folder=paths.folder,
                             slot=spec.slot_name, name=spec.name),
        params={
            "max_events": Param(DEFAULT_MAX_EVENTS, type="integer", minimum=1, maximum=5_000_000,
                                description="Most change events one run reads; the next run continues."),
            "start_from": Param(None, type=["null", "string"], pattern=START_FROM_PATTERN,
                                description="ISO date-time (UTC if no zone). Only for a pipeline with no resume "
                                            "point yet: skip events older than this instead of reading all history."),
            "connector_timeout_seconds": Param(90, type="integer", minimum=5, maximum=900,
                                               description="How long register_connector waits for RUNNING."),
        },
        render_template_as_native_obj=True,
    ) as dag:

        @task(task_id="register_connector", execution_timeout=timedelta(minutes=10))
        def register_connector() -> dict[str, Any]:
            context = get_current_context()
            with kafka_connect_client() as connect:
                return steps.register_connector(spec, connect, source_params(), paths, _run_ref(context),
                                                timeout=float(context["params"]["connector_timeout_seconds"]))

        @task(task_id="consume_batch", trigger_rule=TriggerRule.ALL_DONE, execution_timeout=timedelta(minutes=15))
        def consume_batch() -> dict[str, Any]:
            context = get_current_context()
            params = context["params"]
            consumer = BatchConsumerHook(spec.name).get_conn
            try:
                return steps.consume_batch(spec, consumer, paths, _run_ref(context),
                                           max_events=int(params["max_events"]),
                                           start_from=parse_start_from(params.get("start_from")))
            finally:
                consumer.close()

        @task(task_id="merge_batch", execution_timeout=timedelta(minutes=15))
        def merge_batch() -> dict[str, Any]:
            return steps.merge_buffer(paths, _run_ref(get_current_context()))

        @task(task_id="finish_run", trigger_rule=TriggerRule.ALL_DONE, retries=0)
        def finish_run() -> dict[str, Any]:
            # Airflow takes a run's state from its last task; without this one, a failed registration
            # followed by a successful drain would show green.
            context = get_current_context()
            return steps.finish_run(paths, _run_ref(context), failed_tasks=_failed_upstream(context))

        register_connector() >> consume_batch() >> merge_batch() >> finish_run()
    return dag


def parse_start_from(value: str | None) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"start_from {value!r} is not an ISO date or date-time, e.g. 2026-11-24 or 2026-11-24T08:00:00Z.") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


PIPELINE_TASKS = ("register_connector", "consume_batch", "merge_batch")


def _failed_upstream(context) -> list[str]:
    """The run's pipeline tasks that ended failed or upstream_failed, as Airflow recorded them."""
    states = context["ti"].get_task_states(dag_id=context["dag"].dag_id, run_ids=[context["dag_run"].run_id],
                                           task_ids=list(PIPELINE_TASKS))
    by_task = states.get(context["dag_run"].run_id, states)
    return sorted(task for task, state in by_task.items() if getattr(state, "value", state) in ("failed", "upstream_failed"))


def _run_ref(context) -> RunRef:
    dag_run = context["dag_run"]
    start = context.get("data_interval_start") or dag_run.logical_date
    end = context.get("data_interval_end") or dag_run.logical_date
    return RunRef(
        run_id=dag_run.run_id,
        try_number=int(context["ti"].try_number),
        logical_start=start.isoformat() if start else None,
        logical_end=end.isoformat() if end else None,
    )
