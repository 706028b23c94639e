"""Airflow plugin: the CDC run history as a page in the Airflow UI (Browse → CDC run history).

Served by a FastAPI app under /cdc on the api-server; it requires the same login as the UI.
"""

from __future__ import annotations

import asyncio

from fastapi import Depends, FastAPI, Query
from fastapi.responses import HTMLResponse, JSONResponse

from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin

from cdc_airflow.run_history_page import pipeline_histories, render_page
from cdc_airflow.settings import DagSettings

app = FastAPI(title="CDC run history")


@app.get("/runs", response_class=HTMLResponse)
async def runs_page(limit: int = Query(50, ge=1, le=1000), user=Depends(get_user)) -> str:
    data_dir = DagSettings.from_env().data_dir
    histories = await asyncio.to_thread(pipeline_histories, data_dir, limit)
    return render_page(histories, data_dir)


@app.get("/runs.json")
async def runs_json(limit: int = Query(50, ge=1, le=1000), user=Depends(get_user)) -> JSONResponse:
    data_dir = DagSettings.from_env().data_dir
    return JSONResponse(await asyncio.to_thread(pipeline_histories, data_dir, limit))


class CdcRunHistoryPlugin(AirflowPlugin):
    name = "cdc_run_history"
    fastapi_apps = [{"app": app, "url_prefix": "/cdc", "name": "CDC run history"}]
    external_views = [
        {"name": "CDC run history", "href": "cdc/runs", "url_route": "cdc-runs", "destination": "nav", "category": "browse"}
    ]
