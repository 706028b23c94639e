"""The dashboard's FastAPI app, mounted by the plugin under ``/cdc`` on Airflow's api-server.

Pages (HTML, for the DAG tab and the Browse menu) and a JSON API with the same data; every route needs
Airflow's login (``get_user``: the UI's cookie or a bearer token) and read access to the pipeline's DAG.
Handlers are plain functions: FastAPI runs them in its thread pool, so reading runs.sqlite and waiting for
the live probes never blocks the event loop.

    /cdc/pipelines                 every pipeline's status (also /cdc/ and the old /cdc/runs)
    /cdc/pipelines/<name>          one pipeline: status strip and runs (?status=failed&data=1&limit=&offset=)
    /cdc/dags/<dag_id>             the same, found by DAG id (the DAG page's "CDC dashboard" tab)
    /cdc/api/pipelines[/<name>[/status | /runs[/<run_id>]]]   the JSON API
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


def _pipeline(config: DashboardConfig, name: str, can_read: Callable[[str], bool]) -> Pipeline:
    pipeline = config.catalog().pipelines.get(name)
    if pipeline is None:
        raise HTTPException(404, f"no pipeline {name!r}: no connector file names it and {config.data_dir / name} "
                                 "holds no run history")
    if not can_read(pipeline.dag_id):
        raise HTTPException(403, f"you may not read the DAG {pipeline.dag_id}")
    return pipeline


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
                  limit: str | None = None, offset: str | None = None, config: DashboardConfig = Config,
                  can_read=Access, states: RunStates = AirflowStates) -> HTMLResponse:
    try:
        pipeline = _pipeline(config, name, can_read)
    except HTTPException as exc:
        return _html(request, exc)
    return _dashboard_html(request, pipeline, RunsQuery.parse(status, data, limit, offset), config, states,
                           standalone=True)


@app.get("/dags/{dag_id}", response_class=HTMLResponse)
def dag_tab_html(request: Request, dag_id: str, status: str | None = None, data: str | None = None,
                 limit: str | None = None, offset: str | None = None, config: DashboardConfig = Config,
                 can_read=Access, states: RunStates = AirflowStates) -> HTMLResponse:
    pipeline = config.catalog().by_dag_id(dag_id)
    if pipeline is None:
        return HTMLResponse(page.message_page(
            "Not a CDC pipeline", f"{dag_id} is not the DAG of a CDC pipeline (connector files are read from "
            f"{config.connectors_dir}).", _static(request)))
    if not can_read(pipeline.dag_id):
        return _html(request, HTTPException(403, f"you may not read the DAG {pipeline.dag_id}"))
    return _dashboard_html(request, pipeline, RunsQuery.parse(status, data, limit, offset), config, states,
                           standalone=False)


def _dashboard_html(request: Request, pipeline: Pipeline, query: RunsQuery, config: DashboardConfig,
                    states: RunStates, *, standalone: bool) -> HTMLResponse:
    data = dashboard(pipeline, query, probes=config.probes, root=_airflow_root(request), now=config.clock(),
                     airflow_states=states)
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
                 limit: str | None = None, offset: str | None = None, config: DashboardConfig = Config,
                 can_read=Access, states: RunStates = AirflowStates) -> JSONResponse:
    pipeline = _pipeline(config, name, can_read)
    return JSONResponse(dashboard(pipeline, RunsQuery.parse(status, data, limit, offset), probes=config.probes,
                                  root=_airflow_root(request), now=config.clock(), airflow_states=states))


@app.get("/api/pipelines/{name}/status")
def status_api(request: Request, name: str, config: DashboardConfig = Config, can_read=Access) -> JSONResponse:
    pipeline = _pipeline(config, name, can_read)
    now = config.clock()
    status = status_of(pipeline, probes_for(pipeline, config.probes), now)
    return JSONResponse({"pipeline": pipeline_json(pipeline, _airflow_root(request)), **status_json(status, now)})


@app.get("/api/pipelines/{name}/runs")
def runs_api(request: Request, name: str, status: str | None = None, data: str | None = None,
             limit: str | None = None, offset: str | None = None, config: DashboardConfig = Config,
             can_read=Access, states: RunStates = AirflowStates) -> JSONResponse:
    pipeline = _pipeline(config, name, can_read)
    return JSONResponse(runs_page(pipeline, RunsQuery.parse(status, data, limit, offset), _airflow_root(request),
                                  config.clock(), states))


@app.get("/api/pipelines/{name}/runs/{run_id:path}")
def run_api(request: Request, name: str, run_id: str, config: DashboardConfig = Config,
            can_read=Access, states: RunStates = AirflowStates) -> JSONResponse:
    pipeline = _pipeline(config, name, can_read)
    detail: dict[str, Any] | None = run_detail(pipeline, run_id, _airflow_root(request), config.clock(), states)
    if detail is None:
        raise HTTPException(404, f"no run {run_id!r} in {pipeline.layout.history}")
    return JSONResponse(detail)
