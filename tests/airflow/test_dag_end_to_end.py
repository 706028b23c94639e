"""The DAGs through a real Airflow 3 standalone: scheduler, executor, task logs, XCom, the plugin page.

The session's connectors folder holds the shipped ``clientes.json`` and ``af_types.json``, a connector for
a table with a column of every type of the fidelity contract (see tests/conftest.py).
"""

from __future__ import annotations

import json
import random
import time

import httpx
import pytest

from cdc_pipeline.copy_csv import read_copy_csv
from cdc_pipeline.run_history import RunHistory
from tests.stack.pipeline_driver import PipelineDriver
from tests.stack.workload import create_types_table, run_mixed_workload

pytestmark = pytest.mark.airflow

TYPES_DAG = "cdc_af_types"
TYPES_TABLE = "public.af_types"


@pytest.fixture(scope="module")
def types_driver(airflow_stack):
    s = airflow_stack.settings
    # New DAGs start paused, and a paused DAG's triggered runs stay queued.
    airflow_stack.unpause(TYPES_DAG)
    yield PipelineDriver(s, s.connectors_dir / "af_types.json", s.data_dir)
    airflow_stack.set_paused(TYPES_DAG, True)


def run_dag(airflow_stack, dag_id: str, conf: dict | None = None) -> str:
    run_id = airflow_stack.trigger(dag_id, conf=conf or {})
    state = airflow_stack.wait_for_run(dag_id, run_id, timeout=300)
    if state != "success":
        logs = {ti["task_id"]: airflow_stack.task_log(dag_id, run_id, ti["task_id"], max(1, ti.get("try_number") or 1))[-3000:]
                for ti in airflow_stack.task_instances(dag_id, run_id)}
        pytest.fail(f"{dag_id} run {run_id} ended {state}; task logs:\n{logs}")
    return run_id


def test_dag_folder_loads_without_import_errors(airflow_stack):
    assert airflow_stack.import_errors() == []
    dag_ids = {d["dag_id"] for d in airflow_stack.list_dags()}
    assert {"cdc_clientes", TYPES_DAG} <= dag_ids


def test_every_promised_type_through_the_scheduler_is_byte_identical_to_copy(airflow_stack, types_driver):
    driver = types_driver
    create_types_table(driver.sql, TYPES_TABLE)
    run_ids: list[str] = []

    def register_through_airflow():
        run_ids.append(run_dag(airflow_stack, TYPES_DAG))

    run_mixed_workload(driver, random.Random(42), TYPES_TABLE, register=register_through_airflow)

    expected = driver.copy_csv("k1, k2")
    deadline = time.monotonic() + 240
    while driver.destiny() != expected and time.monotonic() < deadline:
        run_ids.append(run_dag(airflow_stack, TYPES_DAG, conf={"max_events": 150}))
    assert driver.destiny().decode() == expected.decode()

    last = run_ids[-1]
    consume_log = airflow_stack.task_log(TYPES_DAG, last, "consume_batch")
    merge_log = airflow_stack.task_log(TYPES_DAG, last, "merge_batch")
    assert "consume: read" in consume_log and "offsets committed" in consume_log
    assert "merge:" in merge_log and "rows in" in merge_log

    xcom = airflow_stack.request(
        "GET", f"/api/v2/dags/{TYPES_DAG}/dagRuns/{last}/taskInstances/finish_run/xcomEntries/return_value"
    ).json()["value"]
    summary = xcom if isinstance(xcom, dict) else json.loads(xcom)
    assert summary["destiny_rows"] == len(read_copy_csv(driver.paths.folder / "destiny.csv"))
    assert summary["history"].endswith("runs.sqlite")

    recorded = {r["run_id"]: r for r in RunHistory(driver.paths.history).recent_runs(1000)}
    assert set(run_ids) <= set(recorded)
    assert all(recorded[r]["status"] == "merged" for r in run_ids)


def test_run_history_page_in_the_ui_needs_a_login(airflow_stack):
    page = airflow_stack.request("GET", "/cdc/runs")
    assert "CDC run history" in page.text and "af_types" in page.text
    anonymous = httpx.get(f"{airflow_stack.base_url}/cdc/runs", timeout=10)
    assert anonymous.status_code in (401, 403)


def test_the_scheduler_brings_a_new_row_into_destiny_within_two_minutes(airflow_stack):
    s = airflow_stack.settings
    driver = PipelineDriver(s, s.connectors_dir / "clientes.json", s.data_dir)
    driver.sql("INSERT INTO public.clientes (nombre, email) VALUES ('Zoe Álvarez', 'zoe@example.com')")
    airflow_stack.unpause("cdc_clientes")
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and b"zoe@example.com" not in driver.destiny():
            time.sleep(5)
        assert b"Zoe \xc3\x81lvarez,zoe@example.com" in driver.destiny()
        deadline = time.monotonic() + 150
        expected = driver.copy_csv("id")
        while time.monotonic() < deadline and driver.destiny() != expected:
            time.sleep(5)
        assert driver.destiny() == expected
    finally:
        airflow_stack.set_paused("cdc_clientes", True)
