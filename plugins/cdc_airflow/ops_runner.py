"""The body of the operations DAG's task: read the form, run the operation from cdc_pipeline.commands.operation_table with
services built from Airflow connections."""

from __future__ import annotations

from typing import Any

from cdc_airflow.folder_owner import require_owned_folder
from cdc_airflow.hooks import pipeline_services
from cdc_airflow.probes import airflow_probes
from cdc_pipeline.connector_spec import ConnectorSpec
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.instants import parse_instant
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.commands.operation_table import OperationRequest, operation_named, run_on_connector


def run(spec: ConnectorSpec, layout: PipelineLayout, context) -> dict[str, Any]:
    params = context["params"]
    operation = operation_named(params.get("operation"))
    if operation.changes and not params.get("confirm"):
        raise ConfigError(f"{operation.name} changes the pipeline ({operation.description}): trigger again with "
                          "'confirm' ticked (conf {\"confirm\": true})")
    require_owned_folder(spec, layout.folder.parent)
    run_id = context["dag_run"].run_id
    request = OperationRequest(
        origin=f"airflow:{run_id}", run_label=run_id, run_id=params.get("run_id"), scheduled=_scheduled(context),
        date=parse_instant(params.get("date"), "date") if "date" in operation.needs else None)
    return run_on_connector(operation, spec, layout.folder.parent,
                            pipeline_services(probes=lambda pipe: airflow_probes(pipe.spec, pipe.layout)), request,
                            params.get("table"))


def _scheduled(context) -> bool:
    return str(getattr(context["dag_run"], "run_type", "")).lower().endswith("scheduled")
