"""The example connector file with sinks loads, and its DAG gets one retried task per sink between merge_batch and
finish_run; the sink task's body reads a postgres sink's database from its Airflow connection."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from cdc_pipeline.connector_spec import SinkSpec, load_connector_spec
from cdc_pipeline.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "include" / "connectors" / "examples" / "clientes_with_sinks.json"


def test_the_example_connector_file_names_every_sink():
    spec = load_connector_spec(EXAMPLE)
    assert spec.settings.sinks == (SinkSpec("csv"), SinkSpec("parquet"),
                                   SinkSpec("postgres", "cdc_sink_postgres", "public.clientes_replica"))
    shipped = json.loads((REPO / "include" / "connectors" / "clientes.json").read_text())
    assert json.loads(EXAMPLE.read_text())["config"] == shipped["config"]


def test_each_sink_is_its_own_retried_task_after_the_merge(tmp_path, monkeypatch):
    from cdc_airflow.dag_factory import build_dags
    from cdc_airflow.settings import DagSettings

    shutil.copy(EXAMPLE, tmp_path / "clientes.json")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    dag = build_dags(DagSettings(connectors_dir=tmp_path, data_dir=tmp_path / "data"))["cdc_clientes"]
    sinks = ("sink_parquet", "sink_postgres_public_clientes_replica")
    for task_id in sinks:
        task = dag.get_task(task_id)
        # One brief retry: the next run renders the sink again, and a long retry would hold the run open.
        assert task.upstream_task_ids == {"merge_batch"} and task.retries == 1
        assert task.retry_delay <= timedelta(seconds=10) and task.retry_policy is not None
    assert set(sinks) <= dag.get_task("finish_run").upstream_task_ids
    assert "sink_csv" not in dag.task_ids  # destiny.csv is written by the merge itself


def test_a_postgres_sinks_database_comes_from_its_connection(monkeypatch):
    from cdc_airflow.sink_runner import sink_target

    monkeypatch.setenv("AIRFLOW_CONN_CDC_SINK_TEST", json.dumps(
        {"conn_type": "postgres", "host": "db.example", "port": 6543, "login": "u", "password": "p", "schema": "replicas"}))
    target = sink_target("cdc_sink_test")
    assert (target.host, target.port, target.user, target.password, target.dbname, target.conn_id) == (
        "db.example", 6543, "u", "p", "replicas", "cdc_sink_test")
    monkeypatch.setenv("AIRFLOW_CONN_CDC_SINK_NODB", json.dumps({"conn_type": "postgres", "host": "h", "login": "u"}))
    with pytest.raises(ConfigError, match="lacks schema"):
        sink_target("cdc_sink_nodb")


def test_a_missing_connection_says_how_to_add_it():
    from cdc_airflow.sink_runner import sink_target

    with pytest.raises(ConfigError, match=r"'cdc_sink_missing' of a postgres sink is not defined.*type postgres"):
        sink_target("cdc_sink_missing")
