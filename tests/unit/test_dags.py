"""The DAG folder imports cleanly and every DAG follows the pipeline's policy (no Airflow services needed)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dag_bag(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("CDC_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    mp.setenv("CDC_CONNECTORS_DIR", str(REPO / "include" / "connectors"))
    mp.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    yield bag
    mp.undo()


def test_no_import_errors(dag_bag):
    assert dag_bag.import_errors == {}


def test_one_dag_per_connector_file(dag_bag):
    connectors = sorted(p.stem for p in (REPO / "include" / "connectors").glob("*.json"))
    assert sorted(dag_bag.dag_ids) == [f"cdc_{name}" for name in connectors]


@pytest.mark.parametrize("dag_id", ["cdc_clientes"])
def test_pipeline_policy(dag_bag, dag_id):
    dag = dag_bag.dags[dag_id]
    assert dag.schedule == timedelta(minutes=1) or str(dag.timetable.summary).startswith("0:01:00")
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert {"cdc", "debezium"} <= set(dag.tags)
    assert "register_connector" in dag.doc_md and "Recover" in dag.doc_md
    assert [t.task_id for t in dag.topological_sort()] == ["register_connector", "consume_batch", "merge_batch", "finish_run"]
    for task in dag.tasks:
        if task.task_id != "finish_run":  # it only reports; retrying it would change nothing
            assert task.retries >= 1 and task.retry_delay > timedelta(0)
    assert dag.get_task("consume_batch").trigger_rule == "all_done"
    assert dag.get_task("finish_run").trigger_rule == "all_done"
    assert {"max_events", "start_from", "connector_timeout_seconds"} <= set(dag.params.keys())


def test_start_from_accepts_dates_and_refuses_garbage():
    from cdc_airflow.dag_factory import parse_start_from
    from cdc_pipeline.errors import ConfigError

    assert parse_start_from("2026-11-24").isoformat() == "2026-11-24T00:00:00+00:00"
    assert parse_start_from("2026-11-24T08:00:00Z").isoformat() == "2026-11-24T08:00:00+00:00"
    assert parse_start_from(None) is None
    with pytest.raises(ConfigError, match="not an ISO date"):
        parse_start_from("yesterday")


def test_a_broken_connector_file_gets_a_dag_that_says_why_and_the_others_still_load(tmp_path, monkeypatch):
    import json
    import shutil

    from cdc_airflow.dag_factory import build_dags
    from cdc_airflow.settings import DagSettings

    shutil.copy(REPO / "include" / "connectors" / "clientes.json", tmp_path / "clientes.json")
    config = json.loads((tmp_path / "clientes.json").read_text())["config"] | {"database.password": "oops"}
    (tmp_path / "leaky.json").write_text(json.dumps({"name": "leaky", "config": config}))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    dags = build_dags(DagSettings(connectors_dir=tmp_path, data_dir=tmp_path / "data"))
    assert set(dags) == {"cdc_clientes", "cdc_leaky_invalid"}
    assert "remove database.password" in dags["cdc_leaky_invalid"].doc_md


def test_start_from_param_refuses_a_malformed_value(dag_bag):
    import re

    from cdc_airflow.dag_factory import START_FROM_PATTERN

    for good in ("2026-11-24", "2026-11-24T08:00:00Z", "2026-11-24 08:00", "2026-11-24T08:00:00.5+01:00"):
        assert re.match(START_FROM_PATTERN, good), good
    for bad in ("yesterday", "24/11/2026", "2026-11-24T"):
        assert not re.match(START_FROM_PATTERN, bad), bad


def test_finish_run_reads_failed_tasks_from_airflows_task_states():
    from types import SimpleNamespace

    from cdc_airflow.dag_factory import _failed_upstream

    class FakeTI:
        def get_task_states(self, dag_id, run_ids, task_ids):
            # The shape the execution API answers: {run_id: {task_id: state}}.
            return {run_ids[0]: {"register_connector": "failed", "consume_batch": "success", "merge_batch": "success"}}

    context = {"ti": FakeTI(), "dag": SimpleNamespace(dag_id="cdc_x"), "dag_run": SimpleNamespace(run_id="r1")}
    assert _failed_upstream(context) == ["register_connector"]
