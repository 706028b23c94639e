"""One operations DAG per pipeline, ``cdc_<name>_ops``: what an operator does without a shell.

Trigger it with a form: pick the operation, fill the field it needs, tick ``confirm`` for the ones that
change the pipeline. The task log says what was done. Every operation is the same code as the command line
(``python -m cdc_pipeline ...``). With ``verify_every`` in the connector file the DAG also runs ``verify`` on
that schedule.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task

from cdc_airflow.dag_arguments import connector_task_defaults
from cdc_airflow.settings import DagSettings
from cdc_airflow.task_runtime import one_line_errors
from cdc_pipeline.connector_spec import ConnectorSpec
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.commands.operation_table import ALL_TABLES, CHANGING, OPERATIONS, needing

DOC = """
### Operations of `{name}` ({table})

Trigger with config. `operation`:

{operations}

Operations that change the pipeline need `confirm` ticked; they take the pipeline's lock (waiting for an
in-flight run to finish its step) and scheduled runs of `{dag_id}` step aside until they are done. Files:
`{folder}`.
"""


def _table_param(spec: ConnectorSpec) -> dict[str, Param]:
    """A connector of several tables: which table the operation is for (``*``: each in turn)."""
    if not spec.many_tables:
        return {}
    return {"table": Param(ALL_TABLES, enum=[ALL_TABLES, *spec.table_names], title="Table",
                           description="The table to operate on, or * for each table in turn. A resnapshot "
                                       "re-snapshots every table of the connector whichever you pick.")}


def _only_for(field: str) -> str:
    """The form's section of a field few operations read, titled by them."""
    return "Only for " + ", ".join(needing(field))


def build_ops_dag(spec: ConnectorSpec, settings: DagSettings) -> DAG:
    layout = PipelineLayout.under(settings.data_dir, spec.name)
    every = spec.settings.verify_every_minutes
    with DAG(
        dag_id=f"{spec.dag_id}_ops",
        description=f"Operations of the CDC pipeline {spec.name}: reset, resnapshot, verify, status",
        schedule=timedelta(minutes=every) if every else None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=connector_task_defaults(spec),
        tags=["cdc", "operations", spec.name],
        doc_md=DOC.format(name=spec.name, table=spec.qualified_table, dag_id=spec.dag_id, folder=layout.folder,
                          operations="\n".join(f"- `{k}`: {op.description}" for k, op in OPERATIONS.items())),
        params={
            # Each operation is named in the form by what it does; the fields only some operations use sit in
            # their own sections, titled by the operations that read them.
            "operation": Param("verify" if every else "status", enum=list(OPERATIONS), title="Operation",
                               values_display={k: f"{k}{' (needs Confirm)' if op.changes else ''}: {op.description}"
                                               for k, op in OPERATIONS.items()},
                               description="What to do. Those marked 'needs Confirm' change the pipeline: tick "
                                           "Confirm below. The task log says what was done."),
            "date": Param(None, type=["null", "string"], maxLength=40, title="Date",
                          section=_only_for("date"),
                          description="ISO date or date-time, UTC if no zone, e.g. 2026-11-24 or 2026-11-24T08:00:00Z"),
            "run_id": Param(None, type=["null", "string"], maxLength=250, title="Run id",
                            section=_only_for("run_id"),
                            description="A run of the pipeline DAG, e.g. scheduled__2026-11-24T08:00:00+00:00"),
            "confirm": Param(False, type="boolean", title="Confirm", section="Only for operations that change the pipeline",
                             description="Tick for " + ", ".join(sorted(CHANGING)) + "; the others ignore it."),
            **_table_param(spec),
        },
    ) as dag:

        @task(task_id="run_operation", retries=0, execution_timeout=timedelta(minutes=30), multiple_outputs=False)
        @one_line_errors
        def run_operation() -> dict[str, Any]:
            from cdc_airflow import ops_runner

            return ops_runner.run(spec, layout, get_current_context())

        run_operation()
    return dag
