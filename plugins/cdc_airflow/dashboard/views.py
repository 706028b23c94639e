"""What the dashboard shows, assembled once for the page and the JSON API alike: a pipeline's status (with
live answers when the services can be asked) and one page of its runs table; for a connector of several tables,
every table's status beside the runs of one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cdc_airflow.dashboard.catalog import Catalog, Pipeline
from cdc_airflow.dashboard.history_query import (
    UNFINISHED, RunFilter, clamp_page, count_runs, incidents_between, select_run, select_runs, sink_results_of,
    tries_of,
)
from cdc_airflow.dashboard.runs_table import AirflowLinks, run_view, table_entries
from cdc_airflow.dashboard.status_strip import status_json
from cdc_pipeline.connector_spec import ConnectorSpec
from cdc_pipeline.history import History
from cdc_pipeline.commands.status import PipelineStatus, Probes, status_here

# Given a pipeline's spec and its resume point's ends (None: nothing read yet), the live probes, or None.
ProbeFactory = Callable[[ConnectorSpec, "dict[int, int] | None"], Probes | None]
# Given a DAG id and run ids, Airflow's state of each run it knows ("running", "failed", ...).
RunStates = Callable[[str, list[str]], dict[str, str]]


@dataclass(frozen=True)
class RunsQuery:
    run_filter: RunFilter
    limit: int
    offset: int
    table: str | None = None       # schema.table: whose runs, for a connector of several tables

    @classmethod
    def parse(cls, status: str | None = None, data: Any = None, limit: Any = None, offset: Any = None,
              table: str | None = None) -> RunsQuery:
        page_limit, page_offset = clamp_page(limit, offset)
        return cls(RunFilter.parse(status, data), page_limit, page_offset, table or None)

    def params(self, **changes: Any) -> dict[str, Any]:
        """The query string of this view with ``changes`` (for the filter form and the pager)."""
        values = {"table": self.table, "status": self.run_filter.status,
                  "data": "1" if self.run_filter.with_data else None,
                  "limit": self.limit, "offset": self.offset, **changes}
        defaults = {"status": "all", "limit": 50, "offset": 0}
        return {k: v for k, v in values.items() if v is not None and defaults.get(k) != v}


def probes_for(pipeline: Pipeline, factory: ProbeFactory | None) -> Probes | None:
    if factory is None or pipeline.spec is None:
        return None
    ends = None
    if pipeline.layout.history.exists():
        resume = History.open(pipeline.layout.history, readonly=True).runs.resume_point()
        ends = resume.ends if resume else None
    return factory(pipeline.spec, ends)


def status_of(pipeline: Pipeline, probes: Probes | None, now: datetime) -> PipelineStatus:
    return status_here(pipeline.name, pipeline.layout, pipeline.spec, lambda: probes, now=now)


def pipeline_json(pipeline: Pipeline, root: str) -> dict[str, Any]:
    links = AirflowLinks(root, pipeline.dag_id)
    spec = pipeline.spec
    return {
        "name": pipeline.name, "connector": pipeline.connector, "dag_id": pipeline.dag_id,
        "table": spec.qualified_table if spec else pipeline.table,
        "topic": spec.topic if spec else None, "folder": str(pipeline.layout.folder),
        # The Airflow queue its tasks run on: the worker serving it holds the folder (docs/several-hosts.md).
        "queue": spec.settings.queue_name if spec else None,
        "connector_file": str(spec.path) if spec else None,
        "airflow": {"dag": links.dag(), "ops_dag": f"{root}/dags/{pipeline.dag_id}_ops",
                    "dashboard_tab": links.dashboard_tab()} if spec else None,
    }


def runs_page(pipeline: Pipeline, query: RunsQuery, root: str, now: datetime,
              airflow_states: RunStates | None = None) -> dict[str, Any]:
    path = pipeline.layout.history
    page: dict[str, Any] = {"filter": {"status": query.run_filter.status, "data": query.run_filter.with_data},
                            "limit": query.limit, "offset": query.offset, "entries": [], "matching": 0,
                            "newer_offset": max(0, query.offset - query.limit) if query.offset else None,
                            "older_offset": None}
    if not path.exists():
        return page
    runs, older_start = select_runs(path, query.run_filter, query.limit, query.offset)
    tries = tries_of(path, [run["run_id"] for run in runs])
    links = AirflowLinks(root, pipeline.dag_id, pipeline.table is not None) if pipeline.spec else None
    states = _airflow_states(pipeline, runs, airflow_states)
    views = [run_view(run, tries.get(run["run_id"], []), links, now, states.get(run["run_id"])) for run in runs]
    newer_bound = runs[0]["started_at"] if query.offset and runs else None
    incidents = incidents_between(path, older_start, newer_bound) if runs or not query.offset else []
    page.update(entries=table_entries(views, incidents, now), matching=count_runs(path, query.run_filter),
                older_offset=query.offset + query.limit if older_start is not None else None)
    return page


def _airflow_states(pipeline: Pipeline, runs: list[dict[str, Any]], airflow_states: RunStates | None) -> dict[str, str]:
    """Airflow's state of the runs whose final status the history lacks (only those: one small query)."""
    unfinished = [run["run_id"] for run in runs if run.get("status") in UNFINISHED]
    if airflow_states is None or not unfinished or pipeline.spec is None:
        return {}
    return airflow_states(pipeline.dag_id, unfinished)


def run_detail(pipeline: Pipeline, run_id: str, root: str, now: datetime,
               airflow_states: RunStates | None = None) -> dict[str, Any] | None:
    path = pipeline.layout.history
    run = select_run(path, run_id) if path.exists() else None
    if run is None:
        return None
    links = AirflowLinks(root, pipeline.dag_id, pipeline.table is not None) if pipeline.spec else None
    state = _airflow_states(pipeline, [run], airflow_states).get(run_id)
    view = run_view(run, tries_of(path, [run_id]).get(run_id, []), links, now, state)
    view["sinks"] = sink_results_of(path, run_id)
    return view


def dashboard(pipeline: Pipeline, query: RunsQuery, *, probes: ProbeFactory | None, root: str, now: datetime,
              airflow_states: RunStates | None = None, tables: Sequence[Pipeline] = ()) -> dict[str, Any]:
    """``pipeline``'s status and runs; ``tables``: every pipeline of its connector, when it captures several
    tables, whose statuses come along as ``tables``."""
    shown = list(tables) if len(tables) > 1 else [pipeline]
    items = statuses(shown, probes=probes, root=root, now=now)
    data = {**items[shown.index(pipeline)], "runs": runs_page(pipeline, query, root, now, airflow_states),
            "generated_at": now.isoformat(timespec="seconds")}
    if len(shown) > 1:
        data["tables"] = items
    return data


def statuses(pipelines: Sequence[Pipeline], *, probes: ProbeFactory | None, root: str,
             now: datetime) -> list[dict[str, Any]]:
    """Each pipeline with its status; the live questions of all of them are asked before any answer is awaited."""
    asked = [(p, probes_for(p, probes)) for p in pipelines]
    return [{"pipeline": pipeline_json(p, root), "status": status_json(status_of(p, pr, now), now)} for p, pr in asked]


def overview(catalog: Catalog, *, probes: ProbeFactory | None, root: str, now: datetime,
             visible: Callable[[Pipeline], bool] = lambda _: True) -> dict[str, Any]:
    """Every pipeline's status, one per table of a connector of several."""
    return {
        "pipelines": statuses([p for p in catalog.pipelines.values() if visible(p)], probes=probes, root=root, now=now),
        "broken_connector_files": catalog.broken,
        "generated_at": now.isoformat(timespec="seconds"),
    }
