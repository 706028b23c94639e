"""The dashboard's FastAPI app, mounted by the plugin under ``/cdc`` on Airflow's api-server.

Pages (HTML, for the DAG tab and the Browse menu) and a JSON API with the same data; every route needs
Airflow's login (``get_user``: the UI's cookie or a bearer token) and read access to the pipeline's DAG.
Handlers are plain functions: FastAPI runs them in its thread pool, so reading runs.sqlite and waiting for
the live probes never blocks the event loop.

    /cdc/pipelines                 every pipeline's status (also /cdc/ and the old /cdc/runs), one per table
    /cdc/pipelines/<name>          one pipeline: status strip and runs (?status=failed&data=1&limit=&offset=)
    /cdc/dags/<dag_id>             the same, found by DAG id (the DAG page's "CDC dashboard" tab)
    /cdc/api/pipelines[/<name>[/status | /runs[/<run_id>]]]   the JSON API

A connector of several tables is one pipeline per table, named ``<connector>/<schema>.<table>``; its page (and
DAG tab) is the connector's, showing every table's status and one table's runs: ``?table=schema.table``, the
first table by default. Its /status and /runs need ``?table=``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import get_user

from cdc_airflow.dashboard import page
from cdc_airflow.dashboard.catalog import Catalog, Pipeline
from cdc_airflow.dashboard.live_probes import live_probes
from cdc_airflow.dashboard.views import ProbeFactory, RunsQuery, RunStates, dashboard, overview, pipeline_json, \
    probes_for, run_detail, runs_page, status_of
from cdc_airflow.dashboard.status_strip import status_json
from cdc_airflow.settings import DagSettings
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.commands.table_choice import pick_tables

URL_PREFIX = "/cdc"
STATIC = Path(__file__).with_name("static")
STATIC_FILES = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}
# CDC_DASHBOARD_PROBES=off: the page shows the run history's view only and asks no service.
PROBES_SETTING = "CDC_DASHBOARD_PROBES"

app = FastAPI(title="CDC pipelines dashboard", description="Status and run history of the CDC pipelines.")


@dataclass(frozen=True)
class DashboardConfig:
    connectors_dir: Path
    data_dir: Path
    probes: ProbeFactory | None
    clock: Callable[[], datetime]

    def catalog(self) -> Catalog:
        return Catalog.load(self.connectors_dir, self.data_dir)


def dashboard_config() -> DashboardConfig:
    """From the environment, like the DAGs (tests override this dependency)."""
    settings = DagSettings.from_env()
    probes = None if os.environ.get(PROBES_SETTING, "on").lower() in ("off", "0", "false", "no") else live_probes
    return DashboardConfig(settings.connectors_dir, settings.data_dir, probes, lambda: datetime.now(UTC))


def airflow_run_states(session: SessionDep) -> RunStates:
    """Airflow's own state of DAG runs, from its metadata database (the api-server's session)."""
    from sqlalchemy import select

    from airflow.models.dagrun import DagRun

    def states(dag_id: str, run_ids: list[str]) -> dict[str, str]:
        rows = session.execute(select(DagRun.run_id, DagRun.state)
                               .where(DagRun.dag_id == dag_id, DagRun.run_id.in_(run_ids))).all()
        return {run_id: getattr(state, "value", state) for run_id, state in rows}

    return states


def dag_access(user=Depends(get_user)) -> Callable[[str], bool]:
    """Can the logged-in user read this DAG? (Airflow's auth manager decides, as for the DAG's own pages.)"""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    def can_read(dag_id: str) -> bool:
        return get_auth_manager().is_authorized_dag(method="GET", user=user, details=DagDetails(id=dag_id))

    return can_read


Config = Depends(dashboard_config)
Access = Depends(dag_access)
AirflowStates = Depends(airflow_run_states)


def _airflow_root(request: Request) -> str:
    """Airflow's own base path (empty at the server root): the mount point without this app's prefix."""
    root = request.scope.get("root_path", "").rstrip("/")
    return root[: -len(URL_PREFIX)] if root.endswith(URL_PREFIX) else root


def _static(request: Request) -> str:
    return f"{_airflow_root(request)}{URL_PREFIX}/static"


def _pipeline(config: DashboardConfig, name: str, can_read: Callable[[str], bool], table: str | None = None, *,
              required: bool = True, catalog: Catalog | None = None) -> tuple[Pipeline, list[Pipeline]]:
    """The pipeline of connector ``name`` (of its ``table`` when it captures several; ``required``: a table must
    be named, else the first), and all of the connector's."""
    tables = (catalog or config.catalog()).tables(name)
    if not tables:
        raise HTTPException(404, f"no pipeline {name!r}: no connector file names it and {config.data_dir / name} "
                                 "holds no run history")
    pipeline = _table(name, tables, table, required=required)
    if not can_read(pipeline.dag_id):
        raise HTTPException(403, f"you may not read the DAG {pipeline.dag_id}")
    return pipeline, tables


def _table(name: str, tables: list[Pipeline], table: str | None, *, required: bool) -> Pipeline:
    if len(tables) == 1 or (table is None and not required):
        return tables[0]
    names = [p.table or p.name for p in tables]
    try:
        [chosen] = pick_tables(name, names, table, every=False, where="its connector file and table folders",
                               option="?table=")
    except ConfigError as exc:
        raise HTTPException(404 if table else 400, str(exc)) from None
    return tables[names.index(chosen)]


def _html(request: Request, exc: HTTPException) -> HTMLResponse:
    return HTMLResponse(page.message_page("CDC dashboard", str(exc.detail), _static(request)), status_code=exc.status_code)


# --- pages ------------------------------------------------------------------------------------------------

@app.get("/", response_class=HTMLResponse, include_in_schema=False)
@app.get("/runs", response_class=HTMLResponse, include_in_schema=False)  # the old run-history page's address
@app.get("/pipelines", response_class=HTMLResponse)
def overview_html(request: Request, config: DashboardConfig = Config, can_read=Access) -> HTMLResponse:
    data = overview(config.catalog(), probes=config.probes, root=_airflow_root(request), now=config.clock(),
                    visible=lambda p: can_read(p.dag_id))
    return HTMLResponse(page.overview_page(data, _static(request)))


@app.get("/pipelines/{name}", response_class=HTMLResponse)
def pipeline_html(request: Request, name: str, status: str | None = None, data: str | None = None,
                  limit: str | None = None, offset: str | None = None, table: str | None = None,
                  config: DashboardConfig = Config, can_read=Access, states: RunStates = AirflowStates) -> HTMLResponse:
    try:
        pipeline, tables = _pipeline(config, name, can_read, table, required=False)
    except HTTPException as exc:
        return _html(request, exc)
    return _dashboard_html(request, pipeline, tables, RunsQuery.parse(status, data, limit, offset, table), config,
                           states, standalone=True)


@app.get("/dags/{dag_id}", response_class=HTMLResponse)
def dag_tab_html(request: Request, dag_id: str, status: str | None = None, data: str | None = None,
                 limit: str | None = None, offset: str | None = None, table: str | None = None,
                 config: DashboardConfig = Config, can_read=Access, states: RunStates = AirflowStates) -> HTMLResponse:
    catalog = config.catalog()
    pipeline = catalog.by_dag_id(dag_id)
    if pipeline is None:
        return HTMLResponse(page.message_page(
            "Not a CDC pipeline", f"{dag_id} is not the DAG of a CDC pipeline (connector files are read from "
            f"{config.connectors_dir}).", _static(request)))
    try:
        pipeline, tables = _pipeline(config, pipeline.connector, can_read, table, required=False, catalog=catalog)
    except HTTPException as exc:
        return _html(request, exc)
    return _dashboard_html(request, pipeline, tables, RunsQuery.parse(status, data, limit, offset, table), config,
                           states, standalone=False)


def _dashboard_html(request: Request, pipeline: Pipeline, tables: list[Pipeline], query: RunsQuery,
                    config: DashboardConfig, states: RunStates, *, standalone: bool) -> HTMLResponse:
    data = dashboard(pipeline, query, probes=config.probes, root=_airflow_root(request), now=config.clock(),
                     airflow_states=states, tables=tables)
    return HTMLResponse(page.dashboard_page(data, query, _static(request), standalone_links=standalone))


@app.get("/static/{file_name}", include_in_schema=False)
def static_file(file_name: str, user=Depends(get_user)) -> FileResponse:
    if file_name not in STATIC_FILES:
        raise HTTPException(404, f"no static file {file_name!r}")
    return FileResponse(STATIC / file_name, media_type=STATIC_FILES[file_name],
                        headers={"Cache-Control": "private, max-age=300"})


# --- JSON API ---------------------------------------------------------------------------------------------

@app.get("/api/pipelines")
def overview_api(request: Request, config: DashboardConfig = Config, can_read=Access) -> JSONResponse:
    return JSONResponse(overview(config.catalog(), probes=config.probes, root=_airflow_root(request),
                                 now=config.clock(), visible=lambda p: can_read(p.dag_id)))


@app.get("/api/pipelines/{name}")
def pipeline_api(request: Request, name: str, status: str | None = None, data: str | None = None,
                 limit: str | None = None, offset: str | None = None, table: str | None = None,
                 config: DashboardConfig = Config, can_read=Access, states: RunStates = AirflowStates) -> JSONResponse:
    pipeline, tables = _pipeline(config, name, can_read, table, required=False)
    return JSONResponse(dashboard(pipeline, RunsQuery.parse(status, data, limit, offset, table), probes=config.probes,
                                  root=_airflow_root(request), now=config.clock(), airflow_states=states,
                                  tables=tables))


@app.get("/api/pipelines/{name}/status")
def status_api(request: Request, name: str, table: str | None = None, config: DashboardConfig = Config,
               can_read=Access) -> JSONResponse:
    pipeline, _ = _pipeline(config, name, can_read, table)
    now = config.clock()
    status = status_of(pipeline, probes_for(pipeline, config.probes), now)
    return JSONResponse({"pipeline": pipeline_json(pipeline, _airflow_root(request)), **status_json(status, now)})


@app.get("/api/pipelines/{name}/runs")
def runs_api(request: Request, name: str, status: str | None = None, data: str | None = None,
             limit: str | None = None, offset: str | None = None, table: str | None = None,
             config: DashboardConfig = Config, can_read=Access, states: RunStates = AirflowStates) -> JSONResponse:
    pipeline, _ = _pipeline(config, name, can_read, table)
    return JSONResponse(runs_page(pipeline, RunsQuery.parse(status, data, limit, offset, table),
                                  _airflow_root(request), config.clock(), states))


@app.get("/api/pipelines/{name}/runs/{run_id:path}")
def run_api(request: Request, name: str, run_id: str, table: str | None = None, config: DashboardConfig = Config,
            can_read=Access, states: RunStates = AirflowStates) -> JSONResponse:
    pipeline, _ = _pipeline(config, name, can_read, table)
    detail: dict[str, Any] | None = run_detail(pipeline, run_id, _airflow_root(request), config.clock(), states)
    if detail is None:
        raise HTTPException(404, f"no run {run_id!r} in {pipeline.layout.history}")
    return JSONResponse(detail)
