"""The DAG of a connector that captures several tables.

register_connector and consume_batch run once for the connector (one slot, one Debezium task, every topic read
in one bounded batch); the per-table work runs in the mapped task group ``table``, one instance per table that
has something to merge (up to the connector file's ``max_table_tasks``; beyond, the tables share them, each
instance merging its tables in turn), so a table that fails retries alone and shows alone in the grid, and a
quiet table costs no task. finish_run closes every table's run and writes one line per table on the run's note.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, TriggerRule, get_current_context, task, task_group

from cdc_airflow.dag_arguments import CONSUME_TASK, REGISTER_TASK, pipeline_dag_arguments
from cdc_airflow.settings import DagSettings
from cdc_airflow.task_runtime import failed_upstream, one_line_errors
from cdc_pipeline.connector_spec import ConnectorSpec

TABLE_GROUP = "table"
# The grid and the task list name each mapped instance by its tables instead of a bare index: the task puts the
# label in its context first thing (Airflow's documented way); ``default`` keeps the early rendering harmless.
TABLES_LABEL = "{{ cdc_tables_label | default('') }}"
CONNECTOR_TASKS = ("register_connector", "consume_batch")

TABLES_DOC = """
### CDC of {count} tables into one folder each

Connector file `{path}` · one slot `{slot}` · tables {tables} · files in `{folder}/<schema>.<table>/` ·
[CDC dashboard](/dags/{dag_id}/plugin/cdc-dashboard)

Every minute: **register_connector** checks every table and keeps the connector running; **consume_batch**
reads every table's topic in one bounded batch into that table's `buffer.csv`; the mapped group **table**
merges (and renders the sinks of) each table that has something new, each with its own retries and log;
**finish_run** closes each table's run and fails the run if one table failed (its name is on the run's note).
"""


def build_tables_dag(spec: ConnectorSpec, settings: DagSettings) -> DAG:
    data_dir = settings.data_dir
    folder = data_dir / spec.name
    listed = [f"`{t}`" for t in spec.table_names] + [f"pattern `{p}`" for p in spec.patterns]
    doc = TABLES_DOC.format(count=len(spec.tables), path=spec.path, slot=spec.slot_name, folder=folder,
                            tables=", ".join(listed), dag_id=spec.dag_id)
    sinks = [sink.type for sink in spec.settings.sinks if sink.type != "csv"]
    with DAG(**pipeline_dag_arguments(spec, f"CDC of {len(spec.tables)} tables into {folder}", doc)) as dag:

        @task(**REGISTER_TASK)
        @one_line_errors
        def register_connector() -> dict[str, Any]:
            from cdc_airflow import runners

            return runners.register_tables(spec, data_dir, get_current_context())

        # Its return value is what the table group is mapped over, the tables of each instance (Airflow maps over
        # return values only); the batch's summary is its XCom "summary".
        @task(**CONSUME_TASK)
        @one_line_errors
        def consume_batch() -> list[list[str]]:
            from cdc_airflow import runners

            context = get_current_context()
            summary = runners.consume_all_tables(spec, data_dir, context)
            context["ti"].xcom_push(key="summary", value=summary)
            return share_tables(summary["to_merge"], spec.settings.max_table_tasks)

        @task_group(group_id=TABLE_GROUP)
        def per_table(tables: list[str]):
            @task(task_id="merge_batch", execution_timeout=timedelta(minutes=15), multiple_outputs=False,
                  map_index_template=TABLES_LABEL)
            @one_line_errors
            def merge_batch(tables: list[str]) -> dict[str, Any]:
                from cdc_airflow import runners

                return runners.merge_tables(spec, data_dir, labelled(get_current_context(), tables), tables)

            merged = merge_batch(tables)
            for sink_type in sinks:
                merged >> _sink_task(spec, data_dir, sink_type)(tables)

        watched = CONNECTOR_TASKS + tuple(f"{TABLE_GROUP}.{name}" for name in ("merge_batch", *map(sink_task_id, sinks)))

        @task(task_id="finish_run", trigger_rule=TriggerRule.ALL_DONE, retries=0, multiple_outputs=False)
        @one_line_errors
        def finish_run() -> dict[str, Any]:
            from cdc_airflow import runners

            context = get_current_context()
            shares = context["ti"].xcom_pull(task_ids="consume_batch") or []
            upstream = failed_upstream(context, watched)
            failed = failed_by_table(upstream, spec.table_names, shares)
            return runners.finish_all_tables(spec, data_dir, context, failed,
                                             connector_failed=[t for t in upstream if t in CONNECTOR_TASKS])

        consumed = consume_batch()
        tables = per_table.expand(tables=consumed)
        [register_connector(), tables] >> finish_run()
    return dag


def labelled(context, tables: list[str]):
    """The context, with the mapped instance's label (its tables) for ``map_index_template``."""
    label = ", ".join(tables)
    context["cdc_tables_label"] = label if len(label) <= 250 else f"{label[:240]}… ({len(tables)} tables)"
    return context


def sink_task_id(sink_type: str) -> str:
    return f"sink_{sink_type}"


def _sink_task(spec: ConnectorSpec, data_dir, sink_type: str):
    @task(task_id=sink_task_id(sink_type), execution_timeout=timedelta(minutes=30), multiple_outputs=False, retries=1,
          retry_delay=timedelta(seconds=10), retry_exponential_backoff=False, map_index_template=TABLES_LABEL)
    @one_line_errors
    def render_sink(tables: list[str]) -> dict[str, Any]:
        from cdc_airflow import runners

        return runners.sink_tables(spec, data_dir, labelled(get_current_context(), tables), sink_type, tables)

    return render_sink


_MAPPED = re.compile(rf"^{TABLE_GROUP}\.(?P<task>[a-z_]+)_(?P<index>\d+)$")


def share_tables(tables: list[str], most: int) -> list[list[str]]:
    """One list per mapped instance: one table each while there are at most ``most``, else ``most`` lists of
    neighbouring tables (in the connector file's order, so a table keeps its instance from run to run)."""
    if not tables:
        return []
    count = min(len(tables), most)
    size, extra = divmod(len(tables), count)
    shares, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        shares.append(tables[start:end])
        start = end
    return shares


def failed_by_table(failed: list[str], tables: tuple[str, ...], shares: list[list[str]]) -> dict[str, list[str]]:
    """Airflow names a failed mapped task ``table.merge_batch_<map index>``; the index is a position in
    ``shares``, whose tables it may concern. A connector-wide task that failed concerns every table (finish_run
    then asks each table's own history whether its try of that task succeeded)."""
    by_table: dict[str, list[str]] = {table: [] for table in tables}
    for task_id in failed:
        match = _MAPPED.match(task_id)
        if match and int(match["index"]) < len(shares):
            for table in shares[int(match["index"])]:
                by_table.setdefault(table, []).append(match["task"])
        elif match is None or task_id in CONNECTOR_TASKS:
            for names in by_table.values():
                names.append(task_id)
    return by_table
