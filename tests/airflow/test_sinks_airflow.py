"""Sinks through the real Airflow: a connector with parquet and two postgres sinks gets one task per sink after
merge_batch; when one sink's database is unreachable that task fails alone (after its retries) while the
other sinks, the offsets and destiny.csv go on, and it catches up in the next run once the database is back."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from cdc_pipeline.waiting import wait_until
from devstack.ports import free_port
from tests.airflow.pipeline_dags import pipeline_dag
from tests.stack.test_sinks_support import Database

pytestmark = pytest.mark.airflow

NAME = "af_sinks"
DAG_ID = f"cdc_{NAME}"
FLAKY_CONN = "cdc_sink_af_flaky"
SINK_TASKS = ("sink_parquet", "sink_postgres_public_af_sinks_replica", "sink_postgres_public_af_sinks_flaky")


def connection(settings, port: int) -> dict:
    return {"connection_id": FLAKY_CONN, "conn_type": "postgres", "host": "127.0.0.1", "port": port,
            "login": settings.pg_user, "password": settings.pg_password, "schema": settings.sink_db}


@pytest.fixture(scope="module")
def sinks_dag(airflow_stack):
    s = airflow_stack.settings
    sink_db = Database(s, s.sink_db)
    for table in ("public.af_sinks_replica", "public.af_sinks_flaky"):
        sink_db.sql(f"DROP TABLE IF EXISTS {table}")

    def create(driver):
        driver.sql(f"CREATE TABLE public.{NAME} (id int PRIMARY KEY, v text, amount numeric(10,2), at timestamptz)")
        driver.sql(f"INSERT INTO public.{NAME} SELECT g, 'v' || g, g * 1.25, '2026-11-30 12:00+00' "
                   "FROM generate_series(1, 30) g")

    airflow_stack.request("POST", "/api/v2/connections", json=connection(s, s.pg_port))
    try:
        with pipeline_dag(airflow_stack, NAME, f"public.{NAME}", "afs", create, sinks=[
                {"type": "csv"}, {"type": "parquet"}, {"type": "postgres", "table": "public.af_sinks_replica"},
                {"type": "postgres", "table": "public.af_sinks_flaky", "conn_id": FLAKY_CONN}]) as driver:
            yield driver, sink_db
    finally:
        airflow_stack.request("DELETE", f"/api/v2/connections/{FLAKY_CONN}")


def states(airflow_stack, run_id: str) -> dict[str, tuple[str, int]]:
    return {ti["task_id"]: (ti["state"], ti.get("try_number")) for ti in airflow_stack.task_instances(DAG_ID, run_id)}


def run(airflow_stack, timeout: float = 600) -> tuple[str, str]:
    run_id = airflow_stack.trigger(DAG_ID)
    return run_id, airflow_stack.wait_for_run(DAG_ID, run_id, timeout=timeout)


def in_step(driver, sink_db, table: str) -> bool:
    expected = driver.copy_csv("id")
    return driver.destiny() == expected and sink_db.copy_csv(table, "id") == expected


def test_one_sink_fails_alone_and_catches_up_when_its_database_is_back(airflow_stack, sinks_dag):
    driver, sink_db = sinks_dag
    s = airflow_stack.settings

    def drained() -> bool:
        run_id, state = run(airflow_stack)
        assert state == "success", states(airflow_stack, run_id)
        return in_step(driver, sink_db, "public.af_sinks_flaky")

    wait_until(drained, what="the sinks of af_sinks to equal the source", timeout=600, interval=1)
    assert driver.layout.sink_file("parquet").exists()

    airflow_stack.request("PATCH", f"/api/v2/connections/{FLAKY_CONN}", json=connection(s, free_port()))
    before = driver.history.runs.resume_point()  # the changes below may go with a scheduled run or with ours
    driver.sql(f"UPDATE public.{NAME} SET v = 'while the flaky sink is down' WHERE id <= 3")
    driver.sql(f"DELETE FROM public.{NAME} WHERE id = 30")
    driver.wait_for_records(30 + 3 + 2)
    run_id, state = run(airflow_stack)
    task_states = states(airflow_stack, run_id)
    assert state == "failed"
    assert task_states["sink_postgres_public_af_sinks_flaky"][0] == "failed"
    assert task_states["sink_postgres_public_af_sinks_flaky"][1] > 1, "the failing sink is retried"
    for task_id in ("consume_batch", "merge_batch", "sink_parquet", "sink_postgres_public_af_sinks_replica"):
        assert task_states[task_id][0] == "success", task_states
    assert driver.history.runs.resume_point().ends != before.ends  # the offsets moved on
    assert in_step(driver, sink_db, "public.af_sinks_replica")
    assert not in_step(driver, sink_db, "public.af_sinks_flaky")
    assert b"while the flaky sink is down" in driver.destiny()
    assert len(pq.read_table(driver.layout.sink_file("parquet"))) == 29
    log = airflow_stack.task_log(DAG_ID, run_id, "sink_postgres_public_af_sinks_flaky",
                                 task_states["sink_postgres_public_af_sinks_flaky"][1])
    assert "cannot connect to the sink database" in log
    finish = airflow_stack.request(
        "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/finish_run/logs/1",
        params={"full_content": "true"}, headers={"Accept": "application/json"}).text
    assert "postgres:public.af_sinks_flaky FAILED" in finish

    airflow_stack.request("PATCH", f"/api/v2/connections/{FLAKY_CONN}", json=connection(s, s.pg_port))  # back
    run_id, state = run(airflow_stack)
    assert state == "success", states(airflow_stack, run_id)
    assert in_step(driver, sink_db, "public.af_sinks_flaky")
    # The DAG is unpaused, so a scheduled run may have caught up first: the first render after the failures did.
    flaky = [r for r in reversed(driver.history.incidents.sink_results(limit=1000))
             if r["sink"] == "postgres:public.af_sinks_flaky"]
    last_failure = max(i for i, r in enumerate(flaky) if r["status"] == "failed")
    caught_up = flaky[last_failure + 1]
    assert caught_up["status"] == "incremental", flaky
    summary = airflow_stack.request(
        "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{caught_up['run_id']}/taskInstances/sink_postgres_public_af_sinks_flaky/"
        "xcomEntries/return_value").json()["value"]
    summary = summary if isinstance(summary, dict) else json.loads(summary)
    assert "catching up from generation" in summary["reason"]
