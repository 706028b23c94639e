"""The DAGs through a real Airflow 3: scheduler, executor, task logs, XCom, params, failures, the UI page.

The session's connectors folder holds the shipped ``clientes.json`` and ``af_types.json``, a connector for a
table with a column of every type of the fidelity contract (see tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import random
import time
from datetime import datetime

import httpx
import pytest

from cdc_pipeline.pgtext.copy_csv import read_copy_csv
from cdc_pipeline.waiting import WaitTimeout, wait_until
from devstack.errors import AirflowApiError
from tests.stack.pipeline_driver import PipelineDriver
from tests.stack.workload import create_types_table, run_mixed_workload

pytestmark = pytest.mark.airflow

TYPES_DAG = "cdc_af_types"
TYPES_TABLE = "public.af_types"


@pytest.fixture(scope="module")
def types_pipeline(airflow_stack):
    """The every-type pipeline run through the scheduler once for the whole module (snapshot reads, inserts,
    updates, unchanged-TOAST updates, deletes, re-inserts), so every test below has a pipeline with data and a
    resume point, whatever order the tests run in. Yields the driver, the run ids that carried the workload,
    COPY after it, and destiny.csv once drained."""
    s = airflow_stack.settings
    was_paused = airflow_stack.is_paused(TYPES_DAG)
    airflow_stack.set_paused(TYPES_DAG, False)  # a paused DAG's triggered runs stay queued
    driver = PipelineDriver(s, s.connectors_dir / "af_types.json", s.data_dir)
    create_types_table(driver.sql, TYPES_TABLE)
    run_ids: list[str] = []

    def register_through_airflow():
        run_ids.append(run_dag(airflow_stack, TYPES_DAG))

    run_mixed_workload(driver, random.Random(42), TYPES_TABLE, register=register_through_airflow)
    expected = driver.copy_csv("k1, k2")

    def drained() -> bool:
        run_ids.append(run_dag(airflow_stack, TYPES_DAG, conf={"max_events": 150}))
        return driver.destiny() == expected

    with contextlib.suppress(WaitTimeout):  # the fidelity test's comparison shows what differs
        wait_until(drained, what="destiny.csv to equal COPY", timeout=240, interval=0)
    # What destiny.csv held when the workload was drained: other tests change the table after this.
    yield driver, run_ids, expected, driver.destiny()
    airflow_stack.set_paused(TYPES_DAG, was_paused)


@pytest.fixture
def types_driver(types_pipeline):
    return types_pipeline[0]


def run_dag(airflow_stack, dag_id: str, conf: dict | None = None, expect: str = "success") -> str:
    run_id = airflow_stack.trigger(dag_id, conf=conf or {})
    state = airflow_stack.wait_for_run(dag_id, run_id, timeout=300)
    if state != expect:
        logs = {ti["task_id"]: airflow_stack.task_log(dag_id, run_id, ti["task_id"], max(1, ti.get("try_number") or 1))[-3000:]
                for ti in airflow_stack.task_instances(dag_id, run_id)}
        pytest.fail(f"{dag_id} run {run_id} ended {state}, not {expect}; task logs:\n{logs}")
    return run_id


def test_dag_folder_loads_without_import_errors(airflow_stack):
    assert airflow_stack.import_errors() == []
    dag_ids = {d["dag_id"] for d in airflow_stack.list_dags()}
    assert {"cdc_clientes", "cdc_clientes_ops", TYPES_DAG, f"{TYPES_DAG}_ops"} <= dag_ids


def test_every_promised_type_through_the_scheduler_is_byte_identical_to_copy(airflow_stack, types_pipeline):
    driver, run_ids, expected, reached = types_pipeline
    assert reached.decode() == expected.decode()

    last = run_ids[-1]
    consume_log = airflow_stack.task_log(TYPES_DAG, last, "consume_batch")
    merge_log = airflow_stack.task_log(TYPES_DAG, last, "merge_batch")
    assert "consume:" in consume_log and "records from" in consume_log and "merge:" in merge_log
    for line in (consume_log + merge_log).splitlines():
        if " consume:" in line or " merge:" in line:
            message = line.split(" consume:", 1)[-1].split(" merge:", 1)[-1].split(" logger=", 1)[0]
            assert len(message) <= 150, f"a summary line is too wide to read: {message}"

    # One summary XCom per task (not one row per field).
    xcoms = airflow_stack.request("GET", f"/api/v2/dags/{TYPES_DAG}/dagRuns/{last}/taskInstances/finish_run/xcomEntries").json()
    assert [x["key"] for x in xcoms["xcom_entries"]] == ["return_value"]
    xcom = airflow_stack.request(
        "GET", f"/api/v2/dags/{TYPES_DAG}/dagRuns/{last}/taskInstances/finish_run/xcomEntries/return_value").json()["value"]
    summary = xcom if isinstance(xcom, dict) else json.loads(xcom)
    assert summary["destiny_rows"] == len(read_copy_csv(driver.layout.destiny))
    assert summary["history"].endswith("runs.sqlite") and "rows" in summary["line"]

    recorded = {r["run_id"]: r for r in driver.history.runs.recent_runs(1000)}
    assert set(run_ids) <= set(recorded)
    assert all(recorded[r]["status"] == "merged" for r in run_ids)

    # The run's note carries its volume, on Airflow's own run page.
    note = airflow_stack.get_run(TYPES_DAG, last).get("note")
    assert note and "events" in note and "rows" in note

    # destiny.csv is an Asset whose events carry the counts.
    events = airflow_stack.request("GET", "/api/v2/assets/events", params={"limit": 100, "order_by": "-timestamp"}).json()
    mine = [e for e in events["asset_events"] if e.get("source_run_id") in run_ids]
    assert mine and "destiny_rows" in mine[0]["extra"]


def test_a_run_that_changes_nothing_emits_no_asset_event(airflow_stack, types_driver):
    """A DAG scheduled on destiny.csv's asset runs when the file changed, not every minute: an idle run's
    publish_destiny skips itself, and the asset has no event from that run."""
    assert types_driver.drain_until_equal("k1, k2") == types_driver.destiny()
    idle = run_dag(airflow_stack, TYPES_DAG)
    states = {ti["task_id"]: ti["state"] for ti in airflow_stack.task_instances(TYPES_DAG, idle)}
    assert states["merge_batch"] == "success" and states["publish_destiny"] == "skipped", states
    events = airflow_stack.request("GET", "/api/v2/assets/events", params={"limit": 100, "order_by": "-timestamp"}).json()
    assert [e for e in events["asset_events"] if e.get("source_run_id") == idle] == []


def test_a_run_with_a_failed_registration_is_red_with_one_line_and_still_drains(airflow_stack, types_driver):
    """PostgreSQL unreachable: registration fails fast, the drain of what Kafka holds happens in the same run,
    the run ends red with one readable line and no traceback, and the history agrees with Airflow."""
    driver = types_driver
    run_dag(airflow_stack, TYPES_DAG)
    before = driver.published_count()
    driver.sql("UPDATE public.af_types SET c_int = 7 WHERE k1 = 1")
    driver.wait_for_records(before + 1)
    airflow_stack.stack.stop(["postgres"])
    try:
        began = time.monotonic()
        run_id = run_dag(airflow_stack, TYPES_DAG, expect="failed")
        took = time.monotonic() - began
        # The change Kafka held reached destiny.csv while PostgreSQL was still down.
        rows = list(csv.DictReader(io.StringIO(driver.destiny().decode())))
        assert {row["c_int"] for row in rows if row["k1"] == "1"} == {"7"}
    finally:
        airflow_stack.stack.start(["postgres"])
    states = {ti["task_id"]: ti["state"] for ti in airflow_stack.task_instances(TYPES_DAG, run_id)}
    assert states["register_connector"] == "failed"
    assert states["consume_batch"] == states["merge_batch"] == "success"
    log = airflow_stack.task_log(TYPES_DAG, run_id, "register_connector", 2)
    assert "cannot connect to PostgreSQL" in log and "Traceback" not in log
    finish_log = airflow_stack.task_log(TYPES_DAG, run_id, "finish_run")
    assert "PostgreSQL unreachable since" in finish_log and "drained" in finish_log
    record = driver.history.runs.get_run(run_id)
    assert record["status"] == "failed" and record["ended_at"]
    tries = [t for t in driver.history.runs.tries(run_id) if t["task_id"] == "register_connector"]
    assert [t["status"] for t in tries] == ["failed", "failed"]
    assert took < 150, f"a source outage held the run for {took:.0f} s"  # registration retries once, briefly
    # The drain happened in the same minute: merge_batch ended within 60 s of the run's start.
    started = datetime.fromisoformat(airflow_stack.get_run(TYPES_DAG, run_id)["start_date"])
    merge_end = next(ti["end_date"] for ti in airflow_stack.task_instances(TYPES_DAG, run_id) if ti["task_id"] == "merge_batch")
    assert (datetime.fromisoformat(merge_end) - started).total_seconds() < 60, (started, merge_end)
    run_dag(airflow_stack, TYPES_DAG)  # PostgreSQL is back: green again
    assert driver.history.incidents.open_outages() == []


def test_finish_run_reads_the_execution_apis_task_states_in_the_shape_it_has(airflow_stack, types_driver):
    """failed_upstream() depends on the shape of ti.get_task_states' answer: checked against the real Airflow.
    A green run closes as merged; in a run whose consume_batch is refused before it writes anything to the run
    history (start_from on a pipeline that has read), only the states Airflow answers say what failed, and
    finish_run fails the run naming those tasks."""
    history = types_driver.history.runs
    green = run_dag(airflow_stack, TYPES_DAG)
    assert {ti["task_id"]: ti["state"] for ti in airflow_stack.task_instances(TYPES_DAG, green)}["finish_run"] == "success"
    record = history.get_run(green)
    assert (record["status"], record["error"]) == ("merged", None), record

    refused = run_dag(airflow_stack, TYPES_DAG, conf={"start_from": "2026-11-24"}, expect="failed")
    states = {ti["task_id"]: ti["state"] for ti in airflow_stack.task_instances(TYPES_DAG, refused)}
    assert (states["register_connector"], states["consume_batch"], states["merge_batch"], states["finish_run"]) == (
        "success", "failed", "upstream_failed", "failed"), states
    record = history.get_run(refused)
    assert (record["status"], record["error"]) == ("failed", "consume_batch, merge_batch failed: see their task logs")
    assert "consume_batch, merge_batch failed" in airflow_stack.task_log(TYPES_DAG, refused, "finish_run")


def test_trigger_params_are_validated(airflow_stack, types_driver):
    with pytest.raises(AirflowApiError, match="400|422"):
        airflow_stack.trigger(TYPES_DAG, conf={"max_events": "lots"})
    with pytest.raises(AirflowApiError, match="400|422"):
        airflow_stack.trigger(TYPES_DAG, conf={"start_from": "yesterday"})
    # A well-formed date the pipeline refuses (it has read already): the task fails at once, not after retries.
    run_id = run_dag(airflow_stack, TYPES_DAG, conf={"start_from": "2026-11-24"}, expect="failed")
    log = airflow_stack.task_log(TYPES_DAG, run_id, "consume_batch")
    assert "only for a pipeline that has not read anything yet" in log and "cdc_af_types_ops" in log
    assert "Traceback" not in log
    consume = next(ti for ti in airflow_stack.task_instances(TYPES_DAG, run_id) if ti["task_id"] == "consume_batch")
    assert consume["state"] == "failed" and consume["try_number"] == 1


def test_the_operations_dag_reports_status_and_refuses_unconfirmed_changes(airflow_stack, types_driver):
    ops = f"{TYPES_DAG}_ops"
    was_paused = airflow_stack.is_paused(ops)
    airflow_stack.set_paused(ops, False)
    try:
        run_id = run_dag(airflow_stack, ops, conf={"operation": "status"})
        assert "backlog" in airflow_stack.task_log(ops, run_id, "run_operation")
        run_id = run_dag(airflow_stack, ops, conf={"operation": "reset_to_beginning"}, expect="failed")
        assert "trigger again with 'confirm' ticked" in airflow_stack.task_log(ops, run_id, "run_operation")
    finally:
        airflow_stack.set_paused(ops, was_paused)


def test_run_history_page_in_the_ui_needs_a_login(airflow_stack, types_driver):
    run_dag(airflow_stack, TYPES_DAG)
    anonymous = httpx.get(f"{airflow_stack.base_url}/cdc/runs", timeout=10, follow_redirects=False)
    assert anonymous.status_code in (401, 403)


def test_the_scheduler_brings_a_new_row_into_destiny_within_two_minutes(airflow_stack):
    s = airflow_stack.settings
    driver = PipelineDriver(s, s.connectors_dir / "clientes.json", s.data_dir)
    driver.sql("INSERT INTO public.clientes (nombre, email) VALUES ('Zoe Álvarez', 'zoe@example.com')")
    was_paused = airflow_stack.is_paused("cdc_clientes")
    airflow_stack.set_paused("cdc_clientes", False)
    try:
        wait_until(lambda: b"zoe@example.com" in driver.destiny(), what="the scheduled runs to bring the new row",
                   timeout=150, interval=2)
        assert b"Zoe \xc3\x81lvarez,zoe@example.com" in driver.destiny()
        expected = driver.copy_csv("id")
        wait_until(lambda: driver.destiny() == expected, what="destiny.csv to equal COPY", timeout=150, interval=2)
    finally:
        airflow_stack.set_paused("cdc_clientes", was_paused)
