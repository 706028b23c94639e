"""Airflow plugin: the CDC operator's dashboard in the Airflow UI.

- a "CDC dashboard" tab on each pipeline DAG's page (an external view with ``destination: "dag"``; its href
  carries ``{DAG_ID}``), and *Browse → CDC pipelines* for every pipeline at once;
- served by a FastAPI app under ``/cdc`` on the api-server (pages and a JSON API), behind Airflow's login.

An external view rather than a React app: the page is server-rendered HTML plus a small script, so it needs
no JavaScript build or bundle in the repository, the same Python code serves the JSON API and the page (and
is unit-tested as such), and ``/cdc/pipelines/<name>`` works on its own too (the DAG docs link there).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from cdc_airflow.dashboard.app import URL_PREFIX, app


class CdcDashboardPlugin(AirflowPlugin):
    name = "cdc_dashboard"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "CDC dashboard"}]
    external_views = [
        # Relative hrefs resolve against Airflow's base URL (the UI sets <base href>).
        {"name": "CDC dashboard", "href": "cdc/dags/{DAG_ID}", "destination": "dag", "url_route": "cdc-dashboard"},
        {"name": "CDC pipelines", "href": "cdc/pipelines", "destination": "nav", "category": "browse",
         "url_route": "cdc-pipelines"},
    ]
