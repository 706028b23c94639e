"""``cdc_new_connector``: start from a database from the Airflow UI, as ``python -m cdc_pipeline init`` does.

Trigger it with a schema (and optionally a name and a table list): the log lists every table with what stands
between it and an exact destiny.csv; with ``write`` ticked it writes the connector file into the connectors
folder, and the dag-processor turns it into the connector's DAG (unpaused, so it starts on its own).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task

from cdc_airflow.settings import DagSettings
from cdc_airflow.task_runtime import one_line_errors

log = logging.getLogger(__name__)

DAG_ID = "cdc_new_connector"


def build_init_dag(settings: DagSettings) -> DAG:
    with DAG(
        dag_id=DAG_ID,
        description="List a schema's tables, say which can be captured exactly, write their connector file",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        tags=["cdc", "operations"],
        doc_md=__doc__,
        params={
            "schema": Param("public", type="string", minLength=1, maxLength=63, title="Schema"),
            "name": Param(None, type=["null", "string"], maxLength=80, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
                          title="Connector name (default: the schema's)"),
            "tables": Param(None, type=["null", "string"], maxLength=20000, title="Only these tables",
                            description="Comma-separated table names of the schema; empty: every table that can be "
                                        "captured"),
            "write": Param(False, type="boolean", title="Write the connector file",
                           description="Unticked: only list the tables and show the file"),
        },
    ) as dag:

        @task(task_id="survey_and_write", retries=0, execution_timeout=timedelta(minutes=10), multiple_outputs=False)
        @one_line_errors
        def survey_and_write() -> dict[str, Any]:
            from cdc_airflow.hooks import source_params
            from cdc_pipeline.commands.init_connector import connector_document, survey_schema, write_connector_file

            params = get_current_context()["params"]
            schema = params["schema"]
            verdicts = survey_schema(source_params(), schema)
            if params.get("tables"):
                wanted = {f"{schema}.{t.strip()}" for t in params["tables"].split(",") if t.strip()}
                verdicts = [v for v in verdicts if v.qualified in wanted]
            for verdict in verdicts:
                log.info("%s", verdict.line().strip())
            tables = [v.qualified for v in verdicts if v.capturable]
            name = params.get("name") or schema
            result = {"tables": tables, "skipped": {v.qualified: list(v.problems) for v in verdicts if not v.capturable}}
            if params.get("write"):
                path = write_connector_file(settings.connectors_dir, name, tables)
                log.info("wrote %s: %s tables; the DAG cdc_%s appears within 30 s", path, len(tables), name)
                return {**result, "file": str(path)}
            log.info("not written (tick 'write'): %s", connector_document(name, tables))
            return result

        survey_and_write()
    return dag
