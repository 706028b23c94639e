"""The body of the operations DAG's task: validate the form, run the operation, say what was done."""

from __future__ import annotations

import logging
from typing import Any

from cdc_airflow.folder_owner import require_owned_folder
from cdc_airflow.hooks import PipelineKafkaHook, kafka_connect_client, password_reference, source_params
from cdc_airflow.operation_names import ALL_TABLES, CHANGING, OPERATIONS
from cdc_airflow.probes import airflow_probes
from cdc_pipeline import operations
from cdc_pipeline.connector_spec import ConnectorSpec
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.instants import parse_instant
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.pipeline import Pipeline, table_layout
from cdc_pipeline.status import pipeline_status
from cdc_pipeline.tasks.finish import run_line

log = logging.getLogger(__name__)


def run(spec: ConnectorSpec, layout: PipelineLayout, context) -> dict[str, Any]:
    params = context["params"]
    name = params.get("operation")
    if name not in OPERATIONS:
        raise ConfigError(f"operation {name!r} is not one of {', '.join(OPERATIONS)}")
    if name in CHANGING and not params.get("confirm"):
        raise ConfigError(f"{name} changes the pipeline ({OPERATIONS[name]}): trigger again with 'confirm' ticked "
                          "(conf {\"confirm\": true})")
    require_owned_folder(spec, layout.folder.parent)
    if not spec.many_tables:
        return _run_on_table(spec, layout, context, name)
    chosen = params.get("table") or ALL_TABLES
    names = spec.table_names if chosen == ALL_TABLES else (spec.for_table(chosen).qualified_table,)
    if name == "resnapshot" and chosen == ALL_TABLES:
        # The connector's own snapshot rebuilds every table at once; one table re-snapshots alone.
        first = spec.for_table(names[0])
        return {"tables": {ALL_TABLES: _run_on_table(first, table_layout(layout.folder.parent, first), context, name,
                                                     whole=True)}}
    data_dir = layout.folder.parent
    results = {}
    for table in names:
        scoped = spec.for_table(table)
        log.info("%s: %s", table, name)
        results[table] = _run_on_table(scoped, table_layout(data_dir, scoped), context, name)
    return {"tables": results}


def _run_on_table(spec: ConnectorSpec, layout: PipelineLayout, context, name: str, *,
                  whole: bool = False) -> dict[str, Any]:
    params = context["params"]
    pipe = Pipeline(spec, layout)
    origin = f"airflow:{context['dag_run'].run_id}"
    if name == "status":
        status = pipeline_status(pipe.label, layout, airflow_probes(spec, layout))
        for line in status.lines():
            log.info("%s", line)
        answers = _answerable(layout)
        log.info("%s", answers)
        return {**status.as_dict(), "backfill_answers": answers}
    if name == "history":
        rows = pipe.history.runs.recent_runs(20)
        for row in rows:
            log.info("%s %s: %s", row["run_id"], row["status"], run_line(row))
        return {"runs": [{k: row[k] for k in ("run_id", "status", "offset_ranges", "destiny_rows", "error")} for row in rows]}
    if name == "clear_unfinished_operation":
        message = operations.clear_operation(pipe, origin)
        log.warning("%s", message)
        return {"message": message}
    with PipelineKafkaHook(spec.name).clients() as kafka:
        if name == "verify":
            from cdc_pipeline.verify import verify

            not_yet = _nothing_to_verify_yet(pipe) if _scheduled(context) else None
            if not_yet:
                log.info("verify: %s; the next scheduled verify compares", not_yet)
                return {"result": "skipped", "reason": not_yet}
            with kafka_connect_client() as connect:
                result = verify(pipe, kafka, source_params(), run_id=context["dag_run"].run_id, connect=connect,
                                connector_config=lambda: _connector_config(spec))
            return result.as_dict()
        if name == "resnapshot":
            with kafka_connect_client() as connect:
                result = operations.resnapshot(pipe, kafka, connect, origin=origin,
                                               connector_config=_connector_config(spec), whole=whole)
        else:
            target = name.removeprefix("reset_to_")
            date = parse_instant(params.get("date"), "date") if target == "date" else None
            if target == "date" and date is None:
                raise ConfigError("reset_to_date needs 'date', e.g. 2026-11-24 or 2026-11-24T08:00:00Z")
            result = operations.reset(pipe, kafka, to=target, date=date, run_id=params.get("run_id"), origin=origin)
    log.warning("%s", result.message)
    return {"message": result.message, **result.detail}


def _answerable(layout: PipelineLayout) -> str:
    """Which instants as-of and backfills (cdc_<name>_backfill) can answer now: worth reading before one."""
    from cdc_pipeline.backfill.limits import answerable_now

    try:
        return answerable_now(layout)
    except Exception as exc:  # noqa: BLE001 - a status reports, never fails
        return f"{layout.name}: could not read the change log ({exc})"


def _scheduled(context) -> bool:
    return str(getattr(context["dag_run"], "run_type", "")).lower().endswith("scheduled")


def _nothing_to_verify_yet(pipe: Pipeline) -> str | None:
    """Why a scheduled verify (verify_every) has nothing to compare yet: the pipeline has not described its table
    or merged a first snapshot, or a rebuild is under way. A verify asked by hand still fails saying so."""
    if pipe.table_description() is None or not pipe.layout.history.exists():
        return f"{pipe.label} has not run yet"
    if pipe.history.incidents.active_recovery() is not None:
        return f"{pipe.label} is being rebuilt from a new snapshot"
    return None


def _connector_config(spec: ConnectorSpec) -> dict[str, str]:
    source = source_params()
    return spec.config_for_source(host=source.host, port=source.port, user=source.user, dbname=source.dbname,
                                  password_reference=password_reference())
