"""The dashboard's pages and JSON API through FastAPI's test client, mounted under /cdc as the plugin does,
on a run history fixture; login and DAG access are overridden (the browser test checks the real ones)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from airflow.api_fastapi.core_api.security import get_user
from cdc_airflow.dashboard.app import DashboardConfig, airflow_run_states, app, dag_access, dashboard_config
from cdc_pipeline.formatting import ONE_LINE
from cdc_airflow.dashboard.history_query import MAX_PAGE
from cdc_pipeline.commands.status import Backlog, Probes
from tests.unit.test_dashboard_fixture import NO_PK, NOW, build_history, run_id, write_connectors


@pytest.fixture()
def client(tmp_path):
    data = tmp_path / "data"
    build_history(data / "clientes")
    connectors = write_connectors(tmp_path / "connectors")
    readable = {"cdc_clientes"}
    probes = Probes(backlog=lambda ends: Backlog({0: 5, 1: 0}, 5, 42.0, "kafka"),
                    connector=lambda: {"state": "RUNNING", "tasks": [{"id": 0, "state": "RUNNING"}]},
                    slot=lambda: {"slot": "debezium_clientes", "exists": True, "active": True,
                                  "retained_wal_bytes": 3 * 1024 ** 2},
                    paused=lambda: False)
    app.dependency_overrides[dashboard_config] = lambda: DashboardConfig(connectors, data, lambda spec, ends: probes,
                                                                         lambda: NOW)
    app.dependency_overrides[get_user] = lambda: object()
    app.dependency_overrides[dag_access] = lambda: (lambda dag_id: dag_id in readable)
    airflow_says: dict[str, str] = {}
    asked: list[tuple[str, list[str]]] = []

    def states(dag_id, run_ids):
        asked.append((dag_id, run_ids))
        return {run_id: airflow_says[run_id] for run_id in run_ids if run_id in airflow_says}

    app.dependency_overrides[airflow_run_states] = lambda: states
    root = FastAPI()
    root.mount("/cdc", app)
    with TestClient(root) as test_client:
        test_client.readable, test_client.airflow_says, test_client.asked = readable, airflow_says, asked
        yield test_client
    app.dependency_overrides.clear()


class Text(HTMLParser):
    """The page's visible text (what a user reads), without tags, scripts or attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("script", "style", "head")

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style", "head")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)

    @classmethod
    def of(cls, html: str) -> str:
        parser = cls()
        parser.feed(html)
        return " ".join(" ".join(parser.parts).split())


def test_the_dashboard_page_shows_the_strip_then_the_runs(client):
    response = client.get("/cdc/pipelines/clientes")
    assert response.status_code == 200
    text = Text.of(response.text)
    assert text.index("SOURCE DOWN since 12:19 UTC") < text.index("started (UTC)")
    for shown in ("5 events", "p0 5 · oldest 42 s · live from Kafka", "3.0 MB", "slot debezium_clientes active",
                  "task 0 RUNNING", "rows in destiny.csv", "dead letters", "last verify", "identical",
                  "retrying consume_batch 2/4", "merged after 2 tries", "failed after 2 tries", "u 37 · d 2",
                  "p0 [3, 40), p2 [0, 2)", "+0 ~30 −2", "14 idle runs 12:01–12:14",
                  "PostgreSQL unreachable since 12:19, still down", "verify: identical · 1 row compared",
                  "16/B374D848", "slot debezium_clientes does not exist yet: the connector creates it"):
        assert shown in text, shown
    assert '["slot' not in response.text  # notes are sentences, not JSON
    # The events column wraps between its parts, never between an operation and its count.
    assert "<span class='nowrap'>u 37</span> · <span class='nowrap'>d 2</span>" in response.text


def test_a_failed_run_shows_its_error_in_one_line_and_whole_on_demand(client):
    html = client.get("/cdc/pipelines/clientes").text
    failed = re.escape(run_id(20))
    line = re.search(rf"<button type='button' class='error-line' data-toggle='{failed}'[^>]*>([^<]*)</button>", html)
    assert line is not None and line.group(1).startswith("register_connector: table public.clientes has no primary key")
    assert len(line.group(1)) <= ONE_LINE < len(f"register_connector: {NO_PK}")
    whole = re.search(rf"<tr class='details' data-details='{failed}' hidden>.*?<pre>([^<]*)</pre>", html)
    assert whole is not None and whole.group(1) == f"register_connector: {NO_PK}".replace("'", "&#x27;")


def test_runs_link_to_airflow_pages_under_airflows_base_path(client):
    html = client.get("/cdc/pipelines/clientes").text
    assert "href='/dags/cdc_clientes/runs/scheduled__2026-11-24T13%3A04%3A00%2B00%3A00' target='_top' data-airflow" in html
    assert "/tasks/consume_batch?try_number=1" in html
    assert "href='/cdc/static/dashboard.js'" not in html and "src='/cdc/static/dashboard.js'" in html


def test_status_failed_filters_the_page_and_keeps_the_filter_in_the_form(client):
    html = client.get("/cdc/pipelines/clientes", params={"status": "failed"}).text
    rows = re.findall(r"<tr class='run [^']*' data-run='([^']+)'", html)
    assert rows == [run_id(20)]
    assert "<option value='failed' selected>" in html
    data_only = re.findall(r"<tr class='run [^']*' data-run='([^']+)'", client.get("/cdc/pipelines/clientes?data=1").text)
    assert data_only == [run_id(64), run_id(30), run_id(0)]


def test_a_big_limit_is_clamped_and_pages_link_to_each_other(client):
    body = client.get("/cdc/api/pipelines/clientes/runs", params={"limit": "100000"})
    assert body.status_code == 200 and body.json()["limit"] == MAX_PAGE
    first = client.get("/cdc/pipelines/clientes?limit=2").text
    assert "runs 1–2 of 18" in Text.of(first) and "href='?limit=2&amp;offset=2' rel='next'" in first
    second = client.get("/cdc/pipelines/clientes?limit=2&offset=2").text
    assert "href='?limit=2' rel='prev'" in second


def test_the_dag_tab_finds_the_pipeline_by_dag_id_and_other_dags_get_a_note(client):
    client.readable.add("cdc_clientes_ops")
    assert "SOURCE DOWN" in client.get("/cdc/dags/cdc_clientes").text
    assert "SOURCE DOWN" in client.get("/cdc/dags/cdc_clientes_ops").text
    other = client.get("/cdc/dags/example_bash_operator")
    assert other.status_code == 200 and "is not the DAG of a CDC pipeline" in other.text


def test_the_json_api_returns_what_the_page_shows(client):
    data = client.get("/cdc/api/pipelines/clientes").json()
    assert data["status"]["state"] == "source down" and data["status"]["backlog"]["total"] == 5
    assert data["status"]["probes"] == {"Kafka": "answered", "Kafka Connect": "answered", "PostgreSQL": "answered",
                                       "Airflow": "answered"}
    assert data["pipeline"]["airflow"]["dashboard_tab"] == "/dags/cdc_clientes/plugin/cdc-dashboard"
    run = client.get(f"/cdc/api/pipelines/clientes/runs/{run_id(30)}").json()
    assert run["state"] == "merged after 2 tries" and run["sinks"] == []
    assert [t["status"] for t in run["tries"]] == ["failed", "success"]
    assert client.get("/cdc/api/pipelines/clientes/status").json()["label"] == "SOURCE DOWN since 12:19 UTC"


def test_unknown_pipelines_and_dags_the_user_may_not_read(client):
    assert client.get("/cdc/api/pipelines/nope").status_code == 404
    page = client.get("/cdc/pipelines/nope")
    assert page.status_code == 404 and "no pipeline 'nope'" in Text.of(page.text)
    client.readable.clear()
    assert client.get("/cdc/api/pipelines/clientes").status_code == 403
    assert client.get("/cdc/api/pipelines").json()["pipelines"] == []


def test_the_overview_lists_every_pipeline_and_the_broken_connector_files(client):
    for path in ("/cdc/pipelines", "/cdc/runs", "/cdc/"):
        text = Text.of(client.get(path).text)
        assert "clientes default SOURCE DOWN since 12:19 UTC 5 events" in text, path
        assert "broken.json" in text


def test_static_files_are_served_and_nothing_else(client):
    assert "auto-refresh" not in client.get("/cdc/static/dashboard.css").text
    assert client.get("/cdc/static/dashboard.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/cdc/static/..%2Fapp.py").status_code == 404


def test_serving_pages_never_writes_to_the_pipeline_folder(client, tmp_path):
    folder = tmp_path / "data" / "clientes"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    for path in ("/cdc/pipelines/clientes", "/cdc/api/pipelines", f"/cdc/api/pipelines/clientes/runs/{run_id(20)}"):
        assert client.get(path).status_code == 200
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    empty = tmp_path / "data" / "fresh"
    assert client.get("/cdc/pipelines/fresh").status_code == 404 and not empty.exists()


def test_a_run_airflow_ended_without_its_last_task_shows_airflows_state(client):
    assert "retrying consume_batch 2/4" in Text.of(client.get("/cdc/pipelines/clientes").text)
    assert client.asked == [("cdc_clientes", [run_id(64)])]  # only the runs the history has not closed
    client.airflow_says[run_id(64)] = "failed"
    text = Text.of(client.get("/cdc/pipelines/clientes").text)
    assert "failed in Airflow, ended before finish_run" in text and "retrying consume_batch" not in text
    run = client.get(f"/cdc/api/pipelines/clientes/runs/{run_id(64)}").json()
    assert run["airflow_state"] == "failed" and run["tone"] == "bad" and run["duration"] == "—"
