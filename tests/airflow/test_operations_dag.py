"""The operations DAG through a real Airflow 3 (issue 11, item 5): every operation of ``cdc_ops_orders_ops``
from a real run, on a pipeline of its own, so the resets here never touch another module's data."""

from __future__ import annotations

import re

import pytest

from cdc_pipeline.waiting import wait_until
from tests.airflow.pipeline_dags import pipeline_dag
from tests.stack.pipeline_driver import PipelineDriver

pytestmark = pytest.mark.airflow

NAME = "ops_orders"
DAG_ID = f"cdc_{NAME}"
OPS_DAG = f"{DAG_ID}_ops"
TABLE = f"public.{NAME}"


def run_dag(airflow_stack) -> str:
    run_id = airflow_stack.trigger(DAG_ID)
    state = airflow_stack.wait_for_run(DAG_ID, run_id, timeout=300)
    assert state == "success", f"{DAG_ID} run {run_id} ended {state}"
    return run_id


def scheduled_runs_with_data(driver: PipelineDriver) -> list[dict]:
    return [r for r in driver.history.runs.recent_runs(200) if r["offset_ranges"] and r["run_id"].startswith("scheduled__")]


@pytest.fixture(scope="module")
def ops(airflow_stack):
    """The pipeline unpaused until a scheduled run has read data (reset_to_run needs one), and its operations DAG
    unpaused; afterwards both as they were."""
    def create(driver):
        driver.sql(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, v text, amount numeric(8,2))")
        driver.sql(f"INSERT INTO {TABLE} SELECT g, 'first ' || g, g * 1.5 FROM generate_series(1, 30) g")

    with pipeline_dag(airflow_stack, NAME, TABLE, "opsorders", create) as driver:
        airflow_stack.wait_for_dag(OPS_DAG)
        was_paused = airflow_stack.is_paused(OPS_DAG)
        airflow_stack.set_paused(OPS_DAG, False)
        try:
            driver.sql(f"UPDATE {TABLE} SET v = 'changed' WHERE id <= 5")
            wait_until(lambda: scheduled_runs_with_data(driver), what=f"a scheduled run of {DAG_ID} to read data",
                       timeout=240, interval=5)
            converge(airflow_stack, driver)
            yield driver
        finally:
            airflow_stack.set_paused(OPS_DAG, was_paused)


def run_ops(airflow_stack, conf: dict, expect: str = "success") -> str:
    run_id = airflow_stack.trigger(OPS_DAG, conf=conf)
    state = airflow_stack.wait_for_run(OPS_DAG, run_id, timeout=300)
    log = airflow_stack.task_log(OPS_DAG, run_id, "run_operation")
    assert state == expect, f"{OPS_DAG} {conf} ended {state}, not {expect}:\n{log[-3000:]}"
    assert "Traceback" not in log, log[-3000:]
    return log


def converge(airflow_stack, driver: PipelineDriver) -> None:
    expected = driver.copy_csv("id")
    wait_until(lambda: run_dag(airflow_stack) and driver.history.incidents.active_recovery() is None
               and driver.destiny() == expected, what="destiny.csv to equal COPY again", timeout=420, interval=0)


def test_status_history_and_verify_from_the_operations_dag(airflow_stack, ops):
    latest = ops.history.runs.recent_runs(1)[0]["run_id"]
    assert "backlog" in run_ops(airflow_stack, {"operation": "status"})
    assert latest in run_ops(airflow_stack, {"operation": "history"})
    assert "verify: identical:" in run_ops(airflow_stack, {"operation": "verify"})


def test_wrong_operation_input_gets_a_readable_error_with_an_example(airflow_stack, ops):
    log = run_ops(airflow_stack, {"operation": "reset_to_date", "date": "yesterday", "confirm": True}, expect="failed")
    assert "write it like 2026-11-24" in log
    log = run_ops(airflow_stack, {"operation": "reset_to_date", "confirm": True}, expect="failed")
    assert "reset_to_date needs 'date', e.g. 2026-11-24" in log
    log = run_ops(airflow_stack, {"operation": "resnapshot"}, expect="failed")
    assert "trigger again with 'confirm' ticked" in log
    with pytest.raises(Exception, match="400|422"):
        airflow_stack.trigger(OPS_DAG, conf={"operation": "explode"})


def test_resets_resnapshot_and_clear_from_the_operations_dag(airflow_stack, ops):
    driver = ops
    log = run_ops(airflow_stack, {"operation": "reset_to_run", "run_id": "no-such-run", "confirm": True}, expect="failed")
    assert "'no-such-run' is not in" in log and "python -m cdc_pipeline history" in log
    runs = scheduled_runs_with_data(driver)
    log = run_ops(airflow_stack, {"operation": "reset_to_run", "run_id": runs[-1]["run_id"], "confirm": True})
    assert f"where run {runs[-1]['run_id']} started" in log
    log = run_ops(airflow_stack, {"operation": "reset_to_beginning", "confirm": True})
    assert f"reset {NAME} to the topic's beginning" in log
    converge(airflow_stack, driver)
    log = run_ops(airflow_stack, {"operation": "reset_to_date", "date": "2026-11-24", "confirm": True})
    assert f"reset {NAME} to 2026-11-24T00:00:00+00:00" in log
    converge(airflow_stack, driver)
    log = run_ops(airflow_stack, {"operation": "resnapshot", "confirm": True})
    assert f"started: connector {NAME} re-snapshots {TABLE}" in log
    converge(airflow_stack, driver)
    assert driver.history.incidents.active_recovery() is None
    log = run_ops(airflow_stack, {"operation": "clear_unfinished_operation", "confirm": True})
    assert "no operator command is marked running" in log
    done = [(op["kind"], op["status"]) for op in driver.history.incidents.operations(20)]
    assert done[:4] == [("resnapshot", "done"), ("reset", "done"), ("reset", "done"), ("reset", "done")]
    assert ("reset", "failed") in done  # the reset to a run that does not exist, recorded as failed


# ------------------------------------------------------------------------- the same, through the form in Chromium

FORM_STEPS = [  # operation, the section and field it fills, confirm, a line its log must hold
    ("status", None, False, "backlog"),
    ("history", None, False, "scheduled__"),
    ("verify", None, False, "verify: identical:"),
    ("clear_unfinished_operation", None, True, "no operator command is marked running"),
    ("reset_to_run", ("Only for reset_to_run", "#element_run_id", "RUN"), True, "where run "),
    ("reset_to_date", ("Only for reset_to_date", "#element_date", "2026-11-24"), True, "to 2026-11-24T00:00:00+00:00"),
    ("reset_to_beginning", None, True, "to the topic's beginning"),
    ("resnapshot", None, True, f"re-snapshots {TABLE}"),
]


def test_every_operation_from_the_trigger_form_in_a_browser(airflow_stack, ops):
    """Issue 21 item 9: an operator fills Airflow's trigger form of the operations DAG for each operation (pick it,
    open the section of the field it needs, tick Confirm only where it changes the pipeline) and the run does it."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in requirements-dev.txt")
    driver = ops
    run_with_data = scheduled_runs_with_data(driver)[-1]["run_id"]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{airflow_stack.base_url}/dags/{OPS_DAG}")
        page.get_by_label("Username").fill(airflow_stack.user)
        page.get_by_label("Password").fill(airflow_stack.password)
        page.get_by_role("button", name="Sign in").click()
        # The login's own redirect first: a goto while it is under way is "interrupted by another navigation".
        page.wait_for_url(re.compile(rf"/dags/{OPS_DAG}$"))
        try:
            for operation, field, confirm, expected in FORM_STEPS:
                before = {r["dag_run_id"] for r in ops_runs(airflow_stack)}
                page.goto(f"{airflow_stack.base_url}/dags/{OPS_DAG}")
                page.get_by_test_id("trigger-dag-button").click()
                choose = page.locator("input[role=combobox][aria-autocomplete=list]")
                choose.click()
                choose.fill(operation)
                # The option named by it (another's description may mention it too, as verify's does resnapshot).
                page.get_by_role("option", name=re.compile(rf"^{operation}[ :]")).click()
                assert page.locator("input[name=element_operation]").input_value() == operation
                if field:
                    section, selector, value = field
                    page.get_by_role("button", name=section).click()
                    page.locator(selector).fill(run_with_data if value == "RUN" else value)
                if confirm:
                    page.get_by_role("button", name="Only for operations that change the pipeline").click()
                    page.locator("label:has(input[name=element_confirm])").click()
                    assert page.locator("input[name=element_confirm]").is_checked()
                page.get_by_role("button", name="Trigger", exact=True).last.click()
                run_id = wait_until(lambda: ({r["dag_run_id"] for r in ops_runs(airflow_stack)} - before) or None,
                                    what=f"the form's {operation} run to appear", timeout=60, interval=1).pop()
                state = airflow_stack.wait_for_run(OPS_DAG, run_id, timeout=300)
                log = airflow_stack.task_log(OPS_DAG, run_id, "run_operation")
                assert state == "success" and expected in log, f"{operation}: {state}\n{log[-3000:]}"
                conf = airflow_stack.get_run(OPS_DAG, run_id)["conf"]
                assert conf["operation"] == operation and bool(conf.get("confirm")) == confirm, conf
        finally:
            browser.close()
    converge(airflow_stack, driver)


def ops_runs(airflow_stack) -> list[dict]:
    return airflow_stack.request("GET", f"/api/v2/dags/{OPS_DAG}/dagRuns", params={"limit": 100, "order_by": "-run_after"}).json()["dag_runs"]
