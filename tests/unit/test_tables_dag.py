"""The DAG of a connector of several tables: connector-wide tasks once, a mapped group per table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def dags(tmp_path, monkeypatch):
    from cdc_airflow.dag_factory import build_dags
    from cdc_airflow.settings import DagSettings

    document = json.loads((REPO / "include" / "connectors" / "clientes.json").read_text())
    document["config"]["table.include.list"] = "public.a,public.b,sales.c"
    document["sinks"] = [{"type": "csv"}, {"type": "parquet"}, {"type": "postgres"}]
    (tmp_path / "shop.json").write_text(json.dumps({**document, "name": "shop"}))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    return build_dags(DagSettings(connectors_dir=tmp_path, data_dir=tmp_path / "data"))


def test_register_and_consume_run_once_and_the_table_group_is_mapped_over_consumes_list(dags):
    dag = dags["cdc_shop"]
    assert set(dag.task_ids) == {"register_connector", "consume_batch", "table.merge_batch", "table.sink_parquet",
                                 "table.sink_postgres", "finish_run"}
    merge = dag.get_task("table.merge_batch")
    assert merge.upstream_task_ids == {"consume_batch"} and merge.retries >= 3
    # the sinks of a table wait for that table's merge only (a mapped group runs each table on its own)
    assert dag.get_task("table.sink_parquet").upstream_task_ids == {"consume_batch", "table.merge_batch"}
    finish = dag.get_task("finish_run")
    assert {"register_connector", "table.sink_parquet", "table.sink_postgres"} <= \
        finish.upstream_task_ids and finish.trigger_rule == "all_done"
    assert dag.get_task("register_connector").upstream_task_ids == set()
    assert dag.schedule == "* * * * *" and dag.max_active_runs == 1
    assert "`public.a`, `public.b`, `sales.c`" in dag.doc_md
    ops = dags["cdc_shop_ops"]
    assert ops.params["table"] == "*"


def test_a_failed_mapped_task_concerns_its_tables_and_a_connector_task_every_table():
    from cdc_airflow.tables_dag import failed_by_table

    tables = ("public.a", "public.b", "sales.c", "sales.d")
    shares = [["public.b"], ["sales.c", "sales.d"]]  # map index 0 is public.b: quiet tables get no index
    failed = failed_by_table(["table.merge_batch_1", "table.sink_parquet_0"], tables, shares)
    assert failed == {"public.a": [], "public.b": ["sink_parquet"], "sales.c": ["merge_batch"],
                      "sales.d": ["merge_batch"]}
    everywhere = failed_by_table(["register_connector"], tables, shares)
    assert all(names == ["register_connector"] for names in everywhere.values())


@pytest.mark.parametrize(("count", "most", "sizes"), [
    (0, 16, []), (3, 16, [1, 1, 1]), (16, 16, [1] * 16), (17, 16, [2] + [1] * 15), (200, 16, [13] * 8 + [12] * 8),
    (5, 1, [5]),
])
def test_tables_share_at_most_max_table_tasks_instances_in_file_order(count, most, sizes):
    from cdc_airflow.tables_dag import share_tables

    tables = [f"public.t{i:03d}" for i in range(count)]
    shares = share_tables(tables, most)
    assert [len(s) for s in shares] == sizes and [t for s in shares for t in s] == tables


def test_finish_closes_every_table_and_fails_naming_the_table_that_failed(tmp_path):
    from cdc_pipeline.connector_spec import load_connector_spec
    from cdc_pipeline.errors import RunFailedError
    from cdc_pipeline.history import RunRef, TryStatus
    from cdc_pipeline.pipeline import connector_pipelines
    from cdc_pipeline.tasks.finish import finish_tables

    document = json.loads((REPO / "include" / "connectors" / "clientes.json").read_text())
    document["config"]["table.include.list"] = "public.a,public.b"
    path = tmp_path / "shop.json"
    path.write_text(json.dumps({**document, "name": "shop"}))
    pipes = connector_pipelines(tmp_path / "data", load_connector_spec(path))
    run = RunRef("scheduled__2026-12-06T01:00:00+00:00", 1, 4, None, None)
    for pipe in pipes:
        pipe.history.runs.ensure_run(run)
    pipes[0].history.runs.update_run(run.run_id, status="merged", updates=3, destiny_rows=10)
    summary = finish_tables(pipes, run, {})
    assert summary["line"].startswith("2/2 tables ok · public.a: +3 events (u 3) · 10 rows")
    # a shared task that failed does not count against a table whose own try of it succeeded
    shared = RunRef("scheduled__2026-12-06T01:02:00+00:00", 1, 4, None, None)
    for pipe in pipes:
        pipe.history.runs.ensure_run(shared)
        pipe.history.runs.start_try(shared, "merge_batch")
    pipes[0].history.runs.end_try(shared, "merge_batch", status=TryStatus.SUCCESS, duration=0.1, summary={})
    with pytest.raises(RunFailedError, match=r"^1/2 tables ok; FAILED public.b "):
        finish_tables(pipes, shared, {"public.a": ["merge_batch"], "public.b": ["merge_batch"]})
    with pytest.raises(RunFailedError, match=r"1/2 tables ok; FAILED public.b · public.b: merge_batch failed"):
        finish_tables(pipes, RunRef("scheduled__2026-12-06T01:01:00+00:00", 1, 4, None, None),
                      {"public.b": ["merge_batch"]})
    assert pipes[0].history.runs.get_run("scheduled__2026-12-06T01:01:00+00:00")["status"] != "failed"


def test_a_shared_instance_runs_every_table_and_fails_naming_the_ones_that_failed():
    from cdc_airflow.runners import each_table
    from cdc_pipeline.errors import BrokerUnreachableError, ConfigError, TablesFailedError

    done = []

    def step(table):
        if table == "public.b":
            raise ConfigError("bad b")
        if table == "public.d":
            raise BrokerUnreachableError("broker gone")
        done.append(table)
        return table

    with pytest.raises(TablesFailedError, match=r"^public.b: bad b; public.d: broker gone$") as raised:
        each_table(["public.a", "public.b", "public.c", "public.d"], step)
    assert done == ["public.a", "public.c"] and raised.value.retry_helps  # an outage among them: retrying helps
    with pytest.raises(ConfigError, match="bad b"):  # alone, a table's own error as it is
        each_table(["public.b"], step)
    assert each_table(["public.a"], step) == {"public.a": "public.a"}


def test_a_connector_with_a_pattern_gets_its_dags_before_any_table_is_known(tmp_path, monkeypatch):
    """Before its first registration a pattern's tables are unknown: the DAGs exist (their shape does not depend on
    the tables) and name the pattern; consume finds no table yet and says why; a failed registration fails the run."""
    from cdc_airflow import runners
    from cdc_airflow.dag_factory import build_dags
    from cdc_airflow.settings import DagSettings
    from cdc_pipeline.errors import TablesFailedError

    document = json.loads((REPO / "include" / "connectors" / "clientes.json").read_text())
    document["config"]["table.include.list"] = r"public\.order_.*"
    (tmp_path / "pat.json").write_text(json.dumps({**document, "name": "pat"}))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    dags = build_dags(DagSettings(connectors_dir=tmp_path, data_dir=tmp_path / "data"))
    assert {"cdc_pat", "cdc_pat_ops", "cdc_pat_backfill"} <= set(dags)
    assert "pattern `public\\.order_.*`" in dags["cdc_pat"].doc_md
    from cdc_pipeline.connector_spec import load_connector_spec

    spec = load_connector_spec(tmp_path / "pat.json", tmp_path / "data")
    monkeypatch.setattr(runners, "require_owned_folder", lambda *a: None)
    summary = runners.consume_all_tables(spec, tmp_path / "data", {"params": {}})
    assert summary["to_merge"] == [] and "no table yet" in summary["notes"][0]
    monkeypatch.setattr(runners, "_noted", lambda context, close: close())
    with pytest.raises(TablesFailedError, match="register_connector failed before any table was known"):
        runners.finish_all_tables(spec, tmp_path / "data", {}, {}, connector_failed=["register_connector"])
    from cdc_pipeline.history import RunRef

    monkeypatch.setattr(runners, "run_ref", lambda context: RunRef("manual__t", 1, 1))
    assert runners.finish_all_tables(spec, tmp_path / "data", {}, {})["line"].startswith("0/0 tables ok")
