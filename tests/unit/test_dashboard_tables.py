"""The dashboard on a connector of several tables: a row per table in the pipelines list, the connector's page
(and DAG tab) showing each table's status and one table's runs, the JSON API by table, and the histories of
tables whose connector file is gone still listed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from airflow.api_fastapi.core_api.security import get_user
from cdc_airflow.dashboard.app import DashboardConfig, airflow_run_states, app, dag_access, dashboard_config
from cdc_airflow.dashboard.catalog import Catalog
from cdc_airflow.dashboard.live_probes import LiveAnswers, live_probes
from cdc_airflow.dashboard import live_probes as live_module
from cdc_pipeline.connector_spec import load_connector_spec
from cdc_pipeline.history import History
from cdc_pipeline.commands.status import Backlog
from tests.unit.many_tables_fixture import table_folder, write_connectors, write_histories
from tests.unit.test_dashboard_app import Text

NOW = datetime(2026, 11, 24, 13, 5, tzinfo=UTC)


@pytest.fixture()
def folders(tmp_path):
    connectors, data = write_connectors(tmp_path / "connectors"), tmp_path / "data"
    write_histories(data, NOW)
    return connectors, data


@pytest.fixture()
def client(folders):
    connectors, data = folders
    app.dependency_overrides[dashboard_config] = lambda: DashboardConfig(connectors, data, None, lambda: NOW)
    app.dependency_overrides[get_user] = lambda: object()
    app.dependency_overrides[dag_access] = lambda: (lambda dag_id: True)
    app.dependency_overrides[airflow_run_states] = lambda: (lambda dag_id, run_ids: {})
    root = FastAPI()
    root.mount("/cdc", app)
    with TestClient(root) as test_client:
        yield test_client
    app.dependency_overrides.clear()


def test_the_catalog_has_a_pipeline_per_table_under_the_connectors_dag(folders):
    catalog = Catalog.load(*folders)
    assert list(catalog.pipelines) == ["clientes", "shop/public.a", "shop/public.b"]
    assert [(p.table, p.spec.topic, p.layout.folder) for p in catalog.tables("shop")] == [
        ("public.a", "pgserver1.public.a", table_folder(folders[1], "public.a").folder),
        ("public.b", "pgserver1.public.b", table_folder(folders[1], "public.b").folder)]
    assert catalog.by_dag_id("cdc_shop_ops").name == "shop/public.a"
    assert {p.dag_id for p in catalog.tables("shop")} == {"cdc_shop"}
    assert catalog.pipelines["clientes"].table is None and catalog.tables("clientes")[0].connector == "clientes"


def test_histories_of_tables_whose_connector_file_is_gone_stay_listed(folders):
    connectors, data = folders
    (connectors / "shop.json").unlink()
    History.open(data / "shop" / ".adopting.public.c" / "runs.sqlite")  # a move in progress, not a table
    catalog = Catalog.load(connectors, data)
    assert list(catalog.pipelines) == ["clientes", "shop/public.a", "shop/public.b"]
    gone = catalog.pipelines["shop/public.b"]
    assert gone.spec is None and gone.dag_id == "cdc_shop" and gone.layout.folder == data / "shop" / "public.b"


def test_the_pipelines_list_has_a_row_per_table_linking_to_the_connectors_page(client):
    html = client.get("/cdc/pipelines").text
    text = Text.of(html)
    # Each pipeline's queue: the worker serving it holds the folder.
    assert "shop/public.a host-b OK" in text and "shop/public.b host-b FAILING" in text
    assert "clientes default OK" in text
    assert "href='/cdc/pipelines/shop?table=public.b'" in html and "href='/cdc/pipelines/clientes'" in html
    names = [(p["pipeline"]["name"], p["pipeline"]["dag_id"], p["status"]["state"])
             for p in client.get("/cdc/api/pipelines").json()["pipelines"]]
    assert [p["pipeline"]["queue"] for p in client.get("/cdc/api/pipelines").json()["pipelines"]] == [
        "default", "host-b", "host-b"]
    assert names == [("clientes", "cdc_clientes", "ok"), ("shop/public.a", "cdc_shop", "ok"),
                     ("shop/public.b", "cdc_shop", "failing")]


def test_the_connectors_page_shows_every_tables_status_and_one_tables_runs(client):
    for path in ("/cdc/pipelines/shop", "/cdc/dags/cdc_shop", "/cdc/dags/cdc_shop_ops"):
        text = Text.of(client.get(path).text)
        assert "shop/public.a host-b OK" in text and "shop/public.b host-b FAILING" in text, path
        assert "merge_batch: disk full" not in text.split("started (UTC)")[1], path  # public.a's runs below
    html = client.get("/cdc/pipelines/shop", params={"table": "public.b", "status": "failed"}).text
    runs = Text.of(html).split("started (UTC)")[1]
    assert "merge_batch: disk full" in runs
    assert "<input type='hidden' name='table' value='public.b'>" in html
    assert "<tr class='tone-bad current'><td><a href='?table=public.b'>shop/public.b</a>" in html
    assert "/cdc/api/pipelines/shop?table=public.b' class='json'" in html
    assert client.get("/cdc/pipelines/shop", params={"table": "public.z"}).status_code == 404


def test_the_json_api_answers_by_table(client):
    data = client.get("/cdc/api/pipelines/shop", params={"table": "public.b"}).json()
    assert data["pipeline"]["name"] == "shop/public.b" and data["status"]["state"] == "failing"
    assert [t["pipeline"]["name"] for t in data["tables"]] == ["shop/public.a", "shop/public.b"]
    assert "tables" not in client.get("/cdc/api/pipelines/clientes").json()

    unnamed = client.get("/cdc/api/pipelines/shop/status")
    assert unnamed.status_code == 400 and "captures 2 tables (public.a, public.b)" in unnamed.json()["detail"]
    assert client.get("/cdc/api/pipelines/shop/status", params={"table": "public.b"}).json()["label"] == "FAILING"
    runs = client.get("/cdc/api/pipelines/shop/runs", params={"table": "public.b"}).json()
    assert runs["matching"] == 2
    assert client.get("/cdc/api/pipelines/shop/runs/scheduled__2", params={"table": "public.b"}).json()["tone"] == "bad"
    assert client.get("/cdc/api/pipelines/shop/runs/scheduled__2", params={"table": "public.a"}).status_code == 404


def test_live_backlogs_of_two_tables_at_the_same_offsets_are_not_shared(folders, monkeypatch):
    spec = load_connector_spec(folders[0] / "shop.json")
    monkeypatch.setattr(live_module, "_connector", lambda spec, seconds: None)
    monkeypatch.setattr(live_module, "_slot", lambda spec: None)
    monkeypatch.setattr(live_module, "_backlog", lambda spec, ends, seconds: Backlog(total=ord(spec.table)))
    answers = LiveAnswers()
    a, b = (live_probes(spec.for_table(t), {0: 3}, answers=answers) for t in ("public.a", "public.b"))
    assert [a.backlog({0: 3}).total, b.backlog({0: 3}).total] == [ord("a"), ord("b")]


def test_a_connector_whose_folder_is_on_another_workers_disk_says_so_instead_of_not_started(client, folders):
    connectors, _ = folders
    document = json.loads((connectors / "clientes.json").read_text())
    (connectors / "remote.json").write_text(json.dumps({**document, "name": "remote", "queue": "host-c"}))
    (connectors / "fresh.json").write_text(json.dumps({**document, "name": "fresh"}))  # default queue, no folder
    text = Text.of(client.get("/cdc/pipelines").text)
    assert "remote host-c ON ANOTHER HOST" in text and "the worker serving queue host-c" in text
    assert "fresh default NOT STARTED" in text
    remote = next(p for p in client.get("/cdc/api/pipelines").json()["pipelines"] if p["pipeline"]["name"] == "remote")
    assert remote["status"]["state"] == "on another host"
