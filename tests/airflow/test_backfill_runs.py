"""Backfill runs through a real Airflow 3: the REST API (``POST /api/v2/backfills``) and the UI's Backfill dialog.

A pipeline of its own (connector ``bf_orders``, written into the session's connectors folder, so the DAGs
``cdc_bf_orders`` and ``cdc_bf_orders_backfill`` appear at the dag-processor's next scan) is driven by Airflow runs
through a workload in two phases separated by a whole minute T (a backfill run's logical date is a cron tick). A
backfill of T on the backfill DAG must write the table as of T, byte-identical to the COPY taken at T, leave the
live pipeline alone (its files, offsets, and the record of its runs: their rows in the run history, their Airflow
state, type and note), and write the same bytes (the same file, untouched) when the interval is backfilled again.
The live DAG refuses backfills.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from cdc_pipeline.backfill.coverage import coverage
from cdc_pipeline.backfill.view import open_view
from cdc_pipeline.pgtext.copy_csv import read_copy_csv
from cdc_pipeline.instants import compact
from cdc_pipeline.kafka.client import KafkaClients, group_id_for
from cdc_pipeline.kafka.offsets import committed_offsets
from cdc_pipeline.kafka.topic import topic_partitions
from cdc_pipeline.waiting import wait_until
from devstack.errors import AirflowApiError
from tests.airflow.pipeline_dags import pipeline_dag
from tests.stack.pipeline_driver import PipelineDriver

pytestmark = pytest.mark.airflow

NAME = "bf_orders"
DAG_ID = f"cdc_{NAME}"
BACKFILL_DAG = f"{DAG_ID}_backfill"
TABLE = f"public.{NAME}"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@dataclass(frozen=True)
class Backfilled:
    driver: PipelineDriver
    t: datetime
    copy_at_t: bytes
    snapshot: Path
    changes: Path


def run_dag(airflow_stack, conf: dict | None = None) -> str:
    run_id = airflow_stack.trigger(DAG_ID, conf=conf or {})
    state = airflow_stack.wait_for_run(DAG_ID, run_id, timeout=300)
    assert state == "success", f"{DAG_ID} run {run_id} ended {state}"
    return run_id


def pg_now(driver: PipelineDriver) -> datetime:
    return driver.sql("SELECT clock_timestamp()")[0][0].astimezone(UTC)


def next_minute_with_gaps(driver: PipelineDriver) -> datetime:
    """The next whole minute of PostgreSQL's clock at least 2 ms away from now; answer it once 2 ms have passed
    after it, so no commit falls within 1 ms of it on either side."""
    soon = pg_now(driver) + timedelta(milliseconds=2)
    tick = soon.replace(second=0, microsecond=0) + timedelta(minutes=1)
    wait_until(lambda: pg_now(driver) >= tick + timedelta(milliseconds=2), what=f"PostgreSQL's clock to pass {tick}",
               timeout=75, interval=0.2)
    return tick


def change(driver: PipelineDriver, rng: random.Random, ids: range) -> None:
    for i in ids:
        driver.sql(f"INSERT INTO {TABLE} VALUES (%s, %s, %s) ON CONFLICT (id) DO UPDATE SET v = excluded.v, "
                   "amount = excluded.amount", [i, rng.choice(["plain", "a,b", 'q"x', "", None, "ñ\nz"]),
                                                f"{rng.randint(-999, 999)}.{rng.randint(0, 99):02d}"])
    driver.sql(f"DELETE FROM {TABLE} WHERE id = %s", [ids[0]])


def backfill(airflow_stack, start: datetime, end: datetime, reprocess: str = "none") -> dict:
    body = {"dag_id": BACKFILL_DAG, "from_date": start.isoformat(), "to_date": end.isoformat(), "max_active_runs": 1,
            "reprocess_behavior": reprocess}
    created = airflow_stack.request("POST", "/api/v2/backfills", json=body).json()
    return wait_for_backfill(airflow_stack, created["id"])


def wait_for_backfill(airflow_stack, backfill_id: int) -> dict:
    return wait_until(lambda: (b := airflow_stack.request("GET", f"/api/v2/backfills/{backfill_id}").json())
                      ["completed_at"] and b, what=f"backfill {backfill_id} to complete", timeout=300, interval=2)


def backfill_run(airflow_stack, logical: datetime) -> dict:
    """The backfill DAG's run at ``logical``."""
    runs = airflow_stack.request("GET", f"/api/v2/dags/{BACKFILL_DAG}/dagRuns", params={
        "logical_date_gte": logical.isoformat(), "logical_date_lte": logical.isoformat(), "limit": 10}).json()["dag_runs"]
    assert len(runs) == 1, f"runs at {logical}: {runs}"
    assert runs[0]["run_type"] == "backfill", runs[0]
    return runs[0]


def wait_for_runs_at(airflow_stack, logical: datetime) -> None:
    """Reprocessing skips a run still in progress: let the schedule's run at ``logical`` finish first."""
    def settled() -> bool:
        runs = airflow_stack.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns", params={
            "logical_date_gte": logical.isoformat(), "logical_date_lte": logical.isoformat()}).json()["dag_runs"]
        return all(r["state"] in ("success", "failed") for r in runs)

    wait_until(settled, what=f"the runs at {logical} to finish", timeout=300, interval=2)


def live_runs(driver: PipelineDriver, airflow_stack) -> dict:
    """The live DAG's record of its runs: Airflow's state, type, times and note, and each run's history row."""
    runs = airflow_stack.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns", params={"limit": 100}).json()["dag_runs"]
    keys = ("state", "run_type", "start_date", "end_date", "note")
    return {r["dag_run_id"]: ({k: r.get(k) for k in keys}, driver.history.runs.get_run(r["dag_run_id"]))
            for r in runs if r["state"] in ("success", "failed")}


def live_files(driver: PipelineDriver, airflow_stack) -> dict:
    """What a backfill must not touch: destiny.csv, buffer.csv, the state pointer, the consumer group's offsets."""
    layout = driver.layout
    s = airflow_stack.settings
    with KafkaClients({"bootstrap.servers": s.kafka_bootstrap}, group_id_for(s.kafka_group_id, NAME)) as kafka:
        offsets = committed_offsets(kafka, driver.spec.topic, topic_partitions(kafka, driver.spec.topic))
    stat = layout.destiny.stat()
    return {"destiny": (layout.destiny.read_bytes(), stat.st_ino, stat.st_mtime_ns),
            "buffer": layout.buffer.read_bytes() if layout.buffer.exists() else None,
            "live": (layout.state_dir / "LIVE").read_text(), "offsets": offsets}


@pytest.fixture(scope="module")
def pipeline(airflow_stack):
    def create(driver):
        driver.sql(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, v text, amount numeric(8,2))")
        driver.sql(f"INSERT INTO {TABLE} SELECT g, 'first ' || g, g * 1.5 FROM generate_series(1, 30) g")

    with pipeline_dag(airflow_stack, NAME, TABLE, "bforders", create) as driver:
        airflow_stack.wait_for_dag(BACKFILL_DAG)
        airflow_stack.set_paused(BACKFILL_DAG, False)  # it schedules nothing itself; paused, backfills would wait
        try:
            yield driver
        finally:
            airflow_stack.set_paused(BACKFILL_DAG, True)


@pytest.fixture(scope="module")
def backfilled(airflow_stack, pipeline) -> Backfilled:
    driver, rng = pipeline, random.Random(11)

    def drain() -> None:
        expected = driver.copy_csv("id")
        wait_until(lambda: run_dag(airflow_stack) and driver.destiny() == expected,
                   what="destiny.csv to equal COPY", timeout=300, interval=0)

    drain()                                   # the snapshot
    change(driver, rng, range(25, 40))        # phase 1
    drain()
    t = next_minute_with_gaps(driver)
    copy_at_t = driver.copy_csv("id")
    change(driver, rng, range(35, 50))        # phase 2
    drain()
    epoch = open_view(driver.layout).epoch

    def covered() -> bool:
        run_dag(airflow_stack)
        answer = coverage(driver.layout.history, epoch).covered
        return answer is not None and answer >= t

    wait_until(covered, what="a run that read past T + 30 s", timeout=300, interval=5)
    wait_for_runs_at(airflow_stack, t)
    before, history_before = live_files(driver, airflow_stack), live_runs(driver, airflow_stack)
    assert any(run_id.startswith("scheduled__") or run_id.startswith("manual__") for run_id in history_before)
    done = backfill(airflow_stack, t, t)  # "Missing Runs", the dialog's default: T is new to the backfill DAG
    run = backfill_run(airflow_stack, t)
    assert run["state"] == "success", run
    assert live_files(driver, airflow_stack) == before
    after = live_runs(driver, airflow_stack)
    assert {run_id: after[run_id] for run_id in history_before} == history_before  # the live record as it was
    snapshot = driver.layout.snapshots_dir / f"{compact(t)}.csv"
    changes = driver.layout.changes_dir / f"{compact(t - timedelta(minutes=1))}_{compact(t)}.csv"
    assert done["dag_id"] == BACKFILL_DAG
    return Backfilled(driver, t, copy_at_t, snapshot, changes)


def test_a_backfill_through_the_rest_api_writes_the_table_as_of_its_end(backfilled, airflow_stack):
    assert backfilled.snapshot.read_bytes().decode() == backfilled.copy_at_t.decode()
    changes = read_copy_csv(backfilled.changes)
    assert list(changes.columns)[:4] == ["operacion", "id", "v", "amount"]
    stamps = [datetime.fromisoformat(s) for s in changes["timestamp"]]
    assert all(backfilled.t - timedelta(minutes=1) <= s < backfilled.t for s in stamps)
    run = backfill_run(airflow_stack, backfilled.t)
    record = backfilled.driver.history.runs.get_run(run["dag_run_id"])
    assert record["kind"] == "backfill" and record["status"] == "succeeded" and record["ended_at"]
    assert f"snapshots/{backfilled.snapshot.name}" in record["notes"]
    assert f"snapshots/{backfilled.snapshot.name}" in run["note"] and f"changes/{backfilled.changes.name}" in run["note"]
    tis = {ti["task_id"]: ti for ti in airflow_stack.task_instances(BACKFILL_DAG, run["dag_run_id"])}
    assert {task: ti["state"] for task, ti in tis.items()} == {"backfill_interval": "success"}
    log = airflow_stack.task_log(BACKFILL_DAG, run["dag_run_id"], "backfill_interval",
                                 tis["backfill_interval"]["try_number"])
    assert f"backfill [{(backfilled.t - timedelta(minutes=1)):%Y-%m-%d %H:%M}" in log and "Traceback" not in log


def test_the_live_dag_refuses_backfills(backfilled, airflow_stack):
    body = {"dag_id": DAG_ID, "from_date": backfilled.t.isoformat(), "to_date": backfilled.t.isoformat(),
            "reprocess_behavior": "completed"}
    with pytest.raises(AirflowApiError, match="does not allow backfill runs"):
        airflow_stack.request("POST", "/api/v2/backfills", json=body)
    details = airflow_stack.request("GET", f"/api/v2/dags/{DAG_ID}/details").json()
    assert details["is_backfillable"] is False  # the UI offers no Backfill for it


def test_backfilling_the_interval_again_changes_nothing(backfilled, airflow_stack):
    before = {p: (p.read_bytes(), p.stat().st_ino, p.stat().st_mtime_ns) for p in (backfilled.snapshot, backfilled.changes)}
    live = live_files(backfilled.driver, airflow_stack)
    backfill(airflow_stack, backfilled.t, backfilled.t, reprocess="completed")
    assert backfill_run(airflow_stack, backfilled.t)["state"] == "success"
    after = {p: (p.read_bytes(), p.stat().st_ino, p.stat().st_mtime_ns) for p in (backfilled.snapshot, backfilled.changes)}
    assert after == before
    assert live_files(backfilled.driver, airflow_stack) == live


def test_a_backfill_before_the_change_log_fails_at_once_with_the_earliest_instant(backfilled, airflow_stack):
    early = backfilled.t - timedelta(days=1)
    backfill(airflow_stack, early, early)
    run = backfill_run(airflow_stack, early)
    assert run["state"] == "failed"
    tis = {ti["task_id"]: ti for ti in airflow_stack.task_instances(BACKFILL_DAG, run["dag_run_id"])}
    assert tis["backfill_interval"]["try_number"] == 1  # not retried: waiting cannot change the answer
    log = airflow_stack.task_log(BACKFILL_DAG, run["dag_run_id"], "backfill_interval", 1)
    assert "is before the earliest instant its change log answers exactly" in log
    assert "earliest instant" in run["note"] and run["note"].startswith("FAILED")
    record = backfilled.driver.history.runs.get_run(run["dag_run_id"])
    assert record["status"] == "failed" and record["ended_at"]  # closed, never left "retrying"
    assert not (backfilled.driver.layout.snapshots_dir / f"{compact(early)}.csv").exists()


def test_a_backfill_submitted_from_the_ui_dialog_writes_its_files(backfilled, airflow_stack, tmp_path):
    from playwright.sync_api import sync_playwright

    backfilled.snapshot.unlink()
    backfilled.changes.unlink()
    # The dialog's default, "Missing Runs", backfills a minute the backfill DAG has no run for: make T one again.
    run_id = backfill_run(airflow_stack, backfilled.t)["dag_run_id"]
    airflow_stack.request("DELETE", f"/api/v2/dags/{BACKFILL_DAG}/dagRuns/{quote(run_id, safe='')}")
    files_before = live_files(backfilled.driver, airflow_stack)
    runs_before = live_runs(backfilled.driver, airflow_stack)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(timezone_id="UTC", viewport={"width": 1400, "height": 1000})
        try:
            submit_backfill(page, airflow_stack, backfilled.t)
        except Exception:
            page.screenshot(path=str(tmp_path / "ui.png"), full_page=True)
            (tmp_path / "ui.html").write_text(page.content())
            raise
        finally:
            browser.close()
    wait_until(lambda: backfilled.snapshot.exists() and backfilled.changes.exists(),
               what="the UI's backfill to write its files", timeout=300, interval=2)
    assert backfilled.snapshot.read_bytes() == backfilled.copy_at_t
    backfills = airflow_stack.request("GET", "/api/v2/backfills", params={"dag_id": BACKFILL_DAG}).json()["backfills"]
    wait_for_backfill(airflow_stack, max(b["id"] for b in backfills))  # leave no backfill running
    # The dialog's backfill left the live pipeline's files and the record of its runs as they were.
    assert live_files(backfilled.driver, airflow_stack) == files_before
    after = live_runs(backfilled.driver, airflow_stack)
    assert {run: after[run] for run in runs_before} == runs_before


def submit_backfill(page, airflow_stack, moment: datetime) -> None:
    """Log in, open the backfill DAG, Trigger → Backfill, From = To = ``moment`` (the picker is in UTC), the default
    "Missing Runs", Run Backfill."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(f"{airflow_stack.base_url}/dags/{BACKFILL_DAG}")
    page.wait_for_selector("input[name='username']", timeout=60_000)
    page.fill("input[name='username']", airflow_stack.user)
    page.fill("input[name='password']", airflow_stack.password)
    page.locator("button[type='submit']").click()
    page.wait_for_url(f"**/dags/{BACKFILL_DAG}**", timeout=60_000)
    page.get_by_test_id("trigger-dag-button").click()
    page.get_by_text("Backfill", exact=True).first.click()
    for field in (0, 1):  # From, To
        page.get_by_test_id("datetime-input").nth(field).click()
        page.locator("input[placeholder='YYYY/MM/DD']:visible").fill(moment.strftime("%Y/%m/%d"))
        page.locator("input[placeholder='HH:mm']:visible").fill(moment.strftime("%H:%M"))
        page.keyboard.press("Escape")
        page.locator("input[placeholder='YYYY/MM/DD']:visible").wait_for(state="detached")
    page.get_by_text("1 run will be triggered.").wait_for()
    generated, locked = page.get_by_text("Backfill generated").first, page.get_by_text("Database is locked").first
    for attempt in range(3):  # what the README tells a user to do when SQLite refuses the creation: submit again
        page.get_by_role("button", name="Run Backfill").click()
        if attempt:  # let the last refusal's message go before looking for the answer to this one
            with contextlib.suppress(PlaywrightTimeout):
                locked.wait_for(state="hidden", timeout=5_000)
        generated.or_(locked).first.wait_for(timeout=30_000)
        if generated.is_visible():
            return
    raise AssertionError("Airflow refused the backfill three times: its SQLite database stayed locked")
