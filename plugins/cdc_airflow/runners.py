"""The bodies of the CDC tasks: build clients from Airflow connections, call cdc_pipeline.tasks.

Imported inside the task callables only. Each task is a process of its own, so what only some steps use is
imported inside them: Kafka's and PostgreSQL's clients, consume and register by the connector's steps, the
state (pandas, pyarrow, numpy) by the merge; a merge task does not load the former, finish_run and
publish_destiny load neither (docs/performance.md, "A small batch into many tables").
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from cdc_airflow.folder_owner import require_owned_folder
from cdc_airflow.run_notes import set_run_note
from cdc_airflow.task_runtime import run_ref
from cdc_pipeline.connector_spec import ConnectorSpec
from cdc_pipeline.errors import CdcError, SourceUnreachableError, TablesFailedError
from cdc_pipeline.formatting import folded
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.pipeline import Pipeline, connector_pipelines, table_layout
from cdc_pipeline.tasks.finish import finish_run, finish_tables

log = logging.getLogger(__name__)


def register(spec: ConnectorSpec, layout: PipelineLayout, context) -> dict[str, Any]:
    require_owned_folder(spec, layout.folder.parent)
    return _register(spec, [Pipeline(spec, layout)], context)


def consume(spec: ConnectorSpec, layout: PipelineLayout, context) -> dict[str, Any]:
    from cdc_pipeline.tasks.consume import consume_batch

    require_owned_folder(spec, layout.folder.parent)
    pipe = Pipeline(spec, layout)
    return _consume(spec, [pipe], context, functools.partial(consume_batch, pipe))


def _register(spec: ConnectorSpec, pipes: list[Pipeline], context) -> dict[str, Any]:
    from cdc_airflow.hooks import pipeline_services
    from cdc_pipeline.tasks.register import register_connector

    return register_connector(pipes, pipeline_services(), run_ref(context),
                              timeout=float(context["params"]["connector_timeout_seconds"]))


def _consume(spec: ConnectorSpec, pipes: list[Pipeline], context, consume_step) -> dict[str, Any]:
    from cdc_airflow.hooks import pipeline_services
    from cdc_pipeline.commands.operation_table import check_start_from

    params = context["params"]
    start_from = check_start_from(spec, pipes, params.get("start_from"))
    return consume_step(pipeline_services(), run_ref(context), max_events=int(params["max_events"]),
                        start_from=start_from)


def merge(spec: ConnectorSpec, layout: PipelineLayout, context) -> dict[str, Any]:
    from cdc_pipeline.tasks.merge import merge_batch

    require_owned_folder(spec, layout.folder.parent)
    return merge_batch(Pipeline(spec, layout), run_ref(context))


def publish_destiny(context, destiny_asset, merged: dict[str, Any] | None) -> dict[str, Any]:
    """The asset event "destiny.csv updated", with the merge's counts, only when destiny.csv changed: a skipped
    task emits none, so a DAG scheduled on the asset runs when there is something new, not every minute."""
    if not merged or not merged.get("destiny_changed"):
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("destiny.csv did not change in this run: no asset event")
    extra = {key: merged.get(key) or 0 for key in ("events", "inserted", "updated", "deleted", "truncated",
                                                   "destiny_rows")}
    if merged.get("generation"):
        extra["generation"] = merged["generation"]
    context["outlet_events"][destiny_asset].extra = extra
    return extra


def sink(spec: ConnectorSpec, layout: PipelineLayout, context, sink_spec) -> dict[str, Any]:
    from cdc_airflow import sink_runner

    require_owned_folder(spec, layout.folder.parent)
    return sink_runner.run(spec, layout, context, sink_spec)


def finish(spec: ConnectorSpec, layout: PipelineLayout, context, failed_tasks: list[str]) -> dict[str, Any]:
    def close() -> dict[str, Any]:
        require_owned_folder(spec, layout.folder.parent)
        return finish_run(Pipeline(spec, layout), run_ref(context), failed_tasks)

    return _noted(context, close)


def _noted(context, close) -> dict[str, Any]:
    """Close the run; its one line (or its failure) becomes the Airflow run's note."""
    try:
        summary = close()
    except Exception as exc:
        set_run_note(context, f"FAILED: {exc}")
        raise
    set_run_note(context, summary["line"])
    return summary


# A connector of several tables: register and consume once for all, merge and sinks per table (mapped).

def register_tables(spec: ConnectorSpec, data_dir, context) -> dict[str, Any]:
    require_owned_folder(spec, data_dir)
    return _register(spec, connector_pipelines(data_dir, expanded_tables(spec)), context)


def expanded_tables(spec: ConnectorSpec) -> ConnectorSpec:
    """A connector whose table list has patterns: the tables they match in the source now. While the source
    does not answer, the tables last sent to Kafka Connect (registration then records the outage)."""
    if not spec.patterns:
        return spec
    from cdc_airflow.hooks import source_params
    from cdc_pipeline.source.checks import expand_table_patterns

    try:
        return expand_table_patterns(source_params(), spec)
    except SourceUnreachableError:
        if not spec.tables:
            raise
        log.warning("the source did not answer: %s keeps the tables last sent to Kafka Connect", spec.name)
        return spec


def consume_all_tables(spec: ConnectorSpec, data_dir, context) -> dict[str, Any]:
    from cdc_pipeline.tasks.consume_tables import consume_tables

    require_owned_folder(spec, data_dir)
    pipes = connector_pipelines(data_dir, spec)
    if not pipes:
        return _no_table_yet(spec)
    return _consume(spec, pipes, context, functools.partial(consume_tables, pipes))


def merge_tables(spec: ConnectorSpec, data_dir, context, tables: list[str]) -> dict[str, Any]:
    from cdc_pipeline.tasks.merge import merge_batch

    require_owned_folder(spec, data_dir)
    run = run_ref(context)
    return each_table(tables, lambda table: merge_batch(Pipeline.under(data_dir, spec.for_table(table)), run))


def sink_tables(spec: ConnectorSpec, data_dir, context, sink_type: str, tables: list[str]) -> dict[str, Any]:
    from cdc_airflow import sink_runner

    require_owned_folder(spec, data_dir)

    def render(table: str) -> dict[str, Any]:
        scoped = spec.for_table(table)
        sink_spec = next(s for s in scoped.settings.sinks if s.type == sink_type)
        return sink_runner.run(scoped, table_layout(data_dir, scoped), context, sink_spec)

    return each_table(tables, render)


def _no_table_yet(spec: ConnectorSpec) -> dict[str, Any]:
    """A connector whose patterns were never expanded: its tables are known once register_connector has run."""
    note = (f"no table yet: register_connector expands {', '.join(spec.patterns)} against the source's catalog "
            "and records the tables it sends to Kafka Connect")
    log.info("%s", note)
    return {"events": 0, "tables": {}, "failed": {}, "to_merge": [], "complete": True, "notes": [note]}


def each_table(tables: list[str], step) -> dict[str, Any]:
    """``step`` for each of a mapped instance's tables in turn; one that fails does not stop the others, and the
    task then fails naming them (its retry runs them all again: each step is a no-op when done)."""
    results: dict[str, Any] = {}
    failed: list[tuple[str, Exception]] = []
    for table in tables:
        log.info("%s", table)
        try:
            results[table] = step(table)
        except CdcError as exc:
            log.error("%s: %s", table, folded(exc))
            failed.append((table, exc))
    if len(failed) == 1 and len(tables) == 1:
        raise failed[0][1]
    if failed:
        error = TablesFailedError("; ".join(f"{table}: {' '.join(str(exc).split())}" for table, exc in failed))
        error.retry_helps = any(exc.retry_helps for _, exc in failed)
        raise error
    return results


def finish_all_tables(spec: ConnectorSpec, data_dir, context, failed: dict[str, list[str]],
                      connector_failed: list[str] = ()) -> dict[str, Any]:
    def close() -> dict[str, Any]:
        require_owned_folder(spec, data_dir)
        pipes = connector_pipelines(data_dir, spec)
        if not pipes and connector_failed:
            raise TablesFailedError(f"{', '.join(connector_failed)} failed before any table was known: "
                                    f"{_no_table_yet(spec)['notes'][0]}")
        return finish_tables(pipes, run_ref(context), failed)

    return _noted(context, close)
