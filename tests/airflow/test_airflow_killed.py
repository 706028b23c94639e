"""SIGKILL of the whole Airflow in the middle of a run (issue 8's crash matrix, the orchestrator's row).

Every Airflow process goes at once (standalone, scheduler, API server, dag-processor, triggerer, the
LocalExecutor's workers and the task process itself): nothing is flushed, no state is reported. After a restart
the scheduler resets the orphaned task instances, they run again, and destiny.csv ends byte-identical to COPY,
on a table of every promised type under the fidelity workload (TOAST, deletes, re-inserts).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import warnings

import pytest

from cdc_pipeline.waiting import wait_until
from devstack import process
from devstack.airflow import log_server_ports
from devstack.errors import StackError
from devstack.ports import port_in_use
from tests.airflow.pipeline_dags import pipeline_dag
from tests.stack.workload import create_types_table, run_mixed_workload

pytestmark = pytest.mark.airflow

NAME = "af_killed"
DAG_ID = f"cdc_{NAME}"
TABLE = f"public.{NAME}"


def run_dag(airflow_stack, conf: dict | None = None) -> str:
    run_id = airflow_stack.trigger(DAG_ID, conf=conf or {})
    state = airflow_stack.wait_for_run(DAG_ID, run_id, timeout=600)
    assert state == "success", f"{DAG_ID} run {run_id} ended {state}"
    return run_id


@pytest.fixture(scope="module")
def pipeline(airflow_stack):
    def create(driver):
        create_types_table(driver.sql, TABLE)

    with pipeline_dag(airflow_stack, NAME, TABLE, "afk", create) as driver:
        yield driver


def kill_all_of_airflow(airflow_stack) -> None:
    leader = airflow_stack.stack["airflow"].pid()
    everything = process.refs([leader, *process.descendants(leader)])  # by start time: pids wrap at 32768 here
    os.killpg(leader, signal.SIGKILL)  # the launcher starts Airflow in a session of its own
    for ref in everything:
        ref.signal(signal.SIGKILL)
    wait_until(lambda: not any(ref.alive() for ref in everything),
               what="every Airflow process to be gone after SIGKILL", timeout=30, interval=0.1)
    wait_until_airflow_can_start(airflow_stack)


def wait_until_airflow_can_start(airflow_stack) -> None:
    """What a new Airflow needs once the old one's processes are gone: its ports free (the kernel may hold the API
    port a moment longer than the processes live; seen: "port ... is already in use" on the restart at once, and
    the launcher refuses a taken port), and its SQLite metadata database free to write."""
    s = airflow_stack.settings
    ports = (s.airflow_port, *log_server_ports(s))
    wait_until(lambda: not any(port_in_use(port) for port in ports),
               what=f"Airflow's ports {ports} to be free", timeout=60, interval=0.5)
    database = s.airflow_home / "airflow.db"

    def writable() -> bool:
        # mode=rw: never create the file; timeout=0: a lock still held is "not yet", not a wait inside the check.
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=rw", uri=True, timeout=0)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.rollback()
        return True

    wait_until(writable, what=f"Airflow's metadata database {database} to take a writer", timeout=60, interval=0.5)


def restart_airflow(airflow_stack) -> None:
    """Start Airflow again; if the first start fails, once more when its ports and its metadata database are free
    (the failed start stops what it started), so a failure here does not take every later Airflow test along."""
    try:
        airflow_stack.stack.start(["airflow"])
    except StackError as first:
        warnings.warn(f"Airflow did not start again at once after SIGKILL: {first}", stacklevel=1)
        wait_until_airflow_can_start(airflow_stack)
        airflow_stack.stack.start(["airflow"])


def test_sigkill_of_all_of_airflow_mid_run_ends_byte_identical_to_copy(airflow_stack, pipeline):
    driver = pipeline
    run_mixed_workload(driver, random.Random(31), TABLE, register=lambda: run_dag(airflow_stack))
    # Small batches, so the killed run is one of several still to come.
    killed = airflow_stack.trigger(DAG_ID, conf={"max_events": 60})

    def task_running() -> str | None:
        states = {ti["task_id"]: ti["state"] for ti in airflow_stack.task_instances(DAG_ID, killed)}
        return next((task for task in ("consume_batch", "merge_batch") if states.get(task) == "running"), None)

    in_flight = wait_until(task_running, what=f"a task of {killed} to be running", timeout=180, interval=0.2)
    try:
        kill_all_of_airflow(airflow_stack)
    finally:  # whatever happened, the modules after this one need their Airflow
        restart_airflow(airflow_stack)

    # The killed run ends (its orphaned tasks are reset and run again), and later runs drain the rest.
    assert airflow_stack.wait_for_run(DAG_ID, killed, timeout=600) in ("success", "failed"), in_flight
    expected = driver.copy_csv("k1, k2")

    def drained() -> bool:
        run_dag(airflow_stack, conf={"max_events": 500})
        return driver.destiny() == expected

    wait_until(drained, what="destiny.csv to equal COPY after Airflow came back", timeout=600, interval=0)
    assert driver.destiny().decode() == expected.decode()
    record = driver.history.runs.get_run(killed)
    assert record is not None and record["status"] in ("merged", "failed"), record
    assert driver.history.incidents.recoveries() == []  # nothing was lost, so nothing was rebuilt
