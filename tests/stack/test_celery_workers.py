"""Connectors spread over two Celery workers, each with its own data folder and queue, as on two hosts.

A real Airflow on the CeleryExecutor (Redis from Debian's packages), two ``airflow celery worker`` processes
serving queues host-a and host-b with their own CDC_DATA_DIR, and two connectors (one of two tables) assigned to
them. Every data case ends in the byte-for-byte comparison with COPY.
"""

from __future__ import annotations

import time

import pytest

from cdc_pipeline.ownership import read_owner
from cdc_pipeline.waiting import wait_until
from devstack.celery_airflow import CeleryAirflow, CeleryWorker
from tests.stack.pipeline_driver import ConnectorDriver, PipelineDriver, write_connector

pytestmark = pytest.mark.stack

A, B = "cdc_cw_a", "cdc_cw_b"
B_TABLES = {"public.cw_b1": "id", "public.cw_b2": "k1, k2"}


@pytest.fixture(scope="module")
def celery(stack_services, tmp_path_factory):
    home = tmp_path_factory.mktemp("celery")
    s = stack_services.settings
    connectors = home / "connectors"
    path_a = write_connector(connectors, "cw_a", "public.cw_a", "cwa", partitions=2, queue="host-a")
    path_b = write_connector(connectors, "cw_b", ",".join(B_TABLES), "cwb", partitions=2, queue="host-b")
    disk_a, disk_b = home / "disk-a", home / "disk-b"
    a = PipelineDriver(s, path_a, disk_a)
    b = ConnectorDriver(s, path_b, disk_b)
    for statement in ("DROP TABLE IF EXISTS public.cw_a, public.cw_b1, public.cw_b2",
                      "CREATE TABLE public.cw_a (id int PRIMARY KEY, v text)",
                      "CREATE TABLE public.cw_b1 (id int PRIMARY KEY, note text, at timestamptz)",
                      "CREATE TABLE public.cw_b2 (k1 text, k2 int, amount numeric(12,2), PRIMARY KEY (k1, k2))",
                      "INSERT INTO public.cw_a SELECT g, 'a' || g FROM generate_series(1, 200) g",
                      "INSERT INTO public.cw_b1 SELECT g, repeat('n', g), '2026-12-01'::timestamptz + g * interval '1 min' "
                      "FROM generate_series(1, 150) g",
                      "INSERT INTO public.cw_b2 SELECT 'k' || (g % 7), g, g * 1.25 FROM generate_series(1, 120) g"):
        a.sql(statement)
    airflow = CeleryAirflow(s, home, connectors, [CeleryWorker("host-a", "worker-a", disk_a),
                                                  CeleryWorker("host-b", "worker-b", disk_b)])
    try:
        airflow.start()
        with airflow.client() as client:
            for dag_id in (A, B):
                client.wait_for_dag(dag_id)
            yield airflow, client, a, b
    finally:
        airflow.stop()


def run(client, dag_id: str, timeout: float = 300.0) -> tuple[str, str]:
    run_id = client.trigger(dag_id)
    return run_id, client.wait_for_run(dag_id, run_id, timeout=timeout)


def run_until(client, dag_id: str, identical, timeout: float = 300.0) -> None:
    """Trigger runs (waiting for each) until ``identical()``: the snapshot and the changes may take a few."""
    def settled() -> bool:
        run(client, dag_id)
        return identical()

    wait_until(settled, what=f"{dag_id} to end identical to COPY", timeout=timeout, interval=0.1)


def a_identical(a) -> bool:
    return a.layout.destiny.exists() and a.destiny() == a.copy_csv("id")


def b_identical(b) -> bool:
    return b.destinies() == b.copies(B_TABLES)


def test_each_connector_runs_on_its_worker_with_its_folder_on_that_disk_and_ends_identical(celery):
    airflow, client, a, b = celery
    run_until(client, A, lambda: a_identical(a))
    run_until(client, B, lambda: b_identical(b))
    a.sql("UPDATE public.cw_a SET v = 'changed' WHERE id % 10 = 0")
    a.sql("DELETE FROM public.cw_a WHERE id > 190")
    b.sql("UPDATE public.cw_b1 SET note = repeat('x', 3000) WHERE id < 5")  # TOAST
    b.sql("DELETE FROM public.cw_b2 WHERE k1 = 'k3'")
    b.sql("INSERT INTO public.cw_b2 VALUES ('ñ', 1, 0.01), ('Z', 2, NULL)")
    run_until(client, A, lambda: a_identical(a))
    run_until(client, B, lambda: b_identical(b))
    disk_a, disk_b = airflow.workers["worker-a"].data_dir, airflow.workers["worker-b"].data_dir
    owner_a, owner_b = read_owner(disk_a / "cw_a"), read_owner(disk_b / "cw_b")
    assert (owner_a.queue, owner_a.worker) == ("host-a", "worker-a")
    assert (owner_b.queue, owner_b.worker) == ("host-b", "worker-b")
    assert not (disk_b / "cw_a").exists() and not (disk_a / "cw_b").exists()  # nothing ran on the other disk
    assert sorted(p.name for p in (disk_b / "cw_b").iterdir() if p.is_dir()) == sorted(B_TABLES)
    run_id, state = run(client, B)
    queues = {(ti["task_id"], ti["queue"]) for ti in client.task_instances(B, run_id)}
    assert {queue for _, queue in queues} == {"host-b"}, queues


def test_a_worker_killed_mid_run_stops_only_its_connectors_and_catches_up_without_a_rebuild(celery):
    airflow, client, a, b = celery
    run_until(client, A, lambda: a_identical(a))
    before = a.destiny()
    a.sql("UPDATE public.cw_a SET v = 'while worker-a died' WHERE id <= 50")
    run_id = client.trigger(A)

    def a_task_running() -> bool:
        return any(ti["state"] == "running" for ti in client.task_instances(A, run_id))

    wait_until(a_task_running, what=f"a task of {A} {run_id} to run", timeout=120, interval=0.2)
    airflow.kill_worker("worker-a")
    # The other worker's connector goes on while worker-a is gone.
    b.sql("UPDATE public.cw_b1 SET note = 'b goes on' WHERE id > 140")
    b.sql("INSERT INTO public.cw_b2 VALUES ('new', 1, 9.99)")
    run_until(client, B, lambda: b_identical(b))
    # worker-a's connector waits, visibly: its run is not green, and destiny.csv is whole (the old file, or the
    # new one if the merge ended before the kill), never a partial one.
    assert client.get_run(A, run_id)["state"] in ("running", "queued", "failed")
    assert a.destiny() in (before, a.copy_csv("id"))
    time.sleep(5)  # a gap on purpose: nothing happens to A's files while worker-a is down
    assert a.destiny() in (before, a.copy_csv("id"))
    airflow.start_worker("worker-a")
    # The killed try is failed once its heartbeat is missed, then retried on worker-a: the run ends, and A
    # catches up from its resume point.
    client.wait_for_run(A, run_id, timeout=420)
    run_until(client, A, lambda: a_identical(a))
    assert a.history.incidents.recoveries() == []
    assert b.table("public.cw_b1").history.incidents.recoveries() == []
