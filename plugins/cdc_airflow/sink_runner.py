"""The body of a sink task (``sink_parquet``, ``sink_postgres_<table>``): cdc_pipeline.tasks.sink.render_sink with the
sink database's details from its Airflow connection.

Imported inside the task callable only (it pulls in pyarrow and psycopg).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from cdc_airflow.task_runtime import run_ref
from cdc_pipeline.connector_spec import ConnectorSpec, SinkSpec
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.pipeline import Pipeline
from cdc_pipeline.sinks.postgres_target import TargetParams
from cdc_pipeline.tasks.sink import render_sink

DEFAULT_SINK_CONN_ID = "cdc_sink_postgres"


def run(spec: ConnectorSpec, layout: PipelineLayout, context, sink: SinkSpec) -> dict[str, Any]:
    pipe = Pipeline(spec, layout)
    target = (lambda: sink_target(sink.conn_id or DEFAULT_SINK_CONN_ID)) if sink.type == "postgres" else None
    return render_sink(pipe, sink, run_ref(context), target=target)


def sink_target(conn_id: str) -> TargetParams:
    """A postgres sink's database from an Airflow connection of type postgres (``schema`` is the database)."""
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # AirflowNotFoundException, or the secrets backend failing
        raise ConfigError(f"the Airflow connection {conn_id!r} of a postgres sink is not defined ({exc}). Add it "
                          "(type postgres: host, port, login, password, and the database in 'schema'), or set the "
                          "sink's \"conn_id\" in the connector file") from exc
    missing = [name for name, value in (("host", conn.host), ("login", conn.login), ("schema (database)", conn.schema))
               if not value]
    if missing:
        raise ConfigError(f"Airflow connection {conn_id!r} lacks {', '.join(missing)}; it describes a postgres sink's "
                          "database")
    return TargetParams(host=conn.host, port=int(conn.port or 5432), user=conn.login, password=conn.password or "",
                        dbname=conn.schema, conn_id=conn_id)
