"""The crash matrix: a kill at every boundary that matters ends byte-identical to COPY.

The task process is killed with SIGKILL (no finally, no flush) at each crash point the code defines
(cdc_pipeline.crashpoints), then retried as Airflow would (the same run, the next try), on a table with a
column of every promised type, TOASTed values, deletes and re-inserts. The services are killed with
``kill -9`` in the middle of a run: the broker, Kafka Connect, both at once, and PostgreSQL. Each comes back
where it was (Apache Kafka's log and Connect's config, offset and status topics are on disk), so each ends
identical with no rebuild: a rebuild there would be a defect, it costs a full snapshot.
"""

from __future__ import annotations

import os
import random
import signal

import pytest

from cdc_pipeline.commands import operations
from cdc_pipeline.crashpoints import POINTS
from cdc_pipeline.errors import ConnectorError
from cdc_pipeline.pipeline_lock import CONNECTOR_STOPPED
from cdc_pipeline.history import RunRef
from cdc_pipeline.waiting import wait_until
from devstack import process
from tests.stack.crash_step import killed_at, step_armed_at
from tests.stack.pipeline_driver import PipelineDriver, write_connector
from tests.stack.workload import COLUMNS, big_text, create_types_table, insert, run_mixed_workload, update

pytestmark = pytest.mark.stack

TABLE = "public.crash_types"
CONSUME_POINTS = sorted(p for p in POINTS if p.startswith("consume."))
MERGE_POINTS = sorted(p for p in POINTS if p.startswith("merge."))


@pytest.fixture(scope="module")
def driver(stack_services, tmp_path_factory) -> PipelineDriver:
    folder = tmp_path_factory.mktemp("crash-connectors")
    driver = PipelineDriver(stack_services.settings, write_connector(folder, "crash_types", TABLE, "crash"),
                            tmp_path_factory.mktemp("crash-data"))
    create_types_table(driver.sql, TABLE)
    run_mixed_workload(driver, random.Random(8), TABLE, register=driver.register)
    assert driver.drain_until_equal("k1, k2") == driver.destiny()
    return driver


def churn(driver: PipelineDriver, seed: int) -> int:
    """Updates (some leaving a TOASTed value unchanged), deletes and re-inserts; answers the record count to wait for."""
    rng = random.Random(seed)
    keys = [tuple(row) for row in driver.sql(f"SELECT k1, k2 FROM {TABLE} ORDER BY k1, k2")]
    before = driver.published_count()
    changed = rng.sample(keys, 12)
    for k1, k2 in changed[:8]:
        update(driver, rng, k1, k2, rng.sample(COLUMNS[2:], 3), table=TABLE)
    for k1, k2 in changed[8:]:
        driver.sql(f"DELETE FROM {TABLE} WHERE k1 = %s AND k2 = %s", [k1, k2])
    for k1, k2 in changed[8:10]:
        insert(driver, rng, k1, k2, table=TABLE, c_text=big_text(rng))  # re-insert of a deleted key
    new = 9000 + seed * 10
    insert(driver, rng, new, "crash", table=TABLE)
    return before + 8 + 4 * 2 + 2 + 1  # updates, deletes and their tombstones, re-inserts, one insert


@pytest.mark.parametrize("point", CONSUME_POINTS + MERGE_POINTS)
def test_a_task_killed_at_each_boundary_is_repaired_by_its_retry(driver, point):
    driver.wait_for_records(churn(driver, seed=POINTS_ORDER.index(point) + 1))
    run = driver.next_run()
    if point.startswith("consume."):
        killed_at(driver, "consume", run, point)
    else:
        driver.consume(run)
        killed_at(driver, "merge", run, point)
    retry = RunRef(run.run_id, 2, 2, run.logical_start, run.logical_end)
    if point.startswith("consume."):
        driver.consume(retry)
    driver.merge(retry)
    # The retry alone repairs: compared right after it, before any further run could make up for it. Every
    # change is in the topic already (waited for above), and the table does not change meanwhile.
    assert driver.destiny().decode() == driver.copy_csv("k1, k2").decode()


POINTS_ORDER = CONSUME_POINTS + MERGE_POINTS


def test_a_merge_killed_just_before_it_swaps_a_rebuild_in_leaves_the_old_table_and_its_retry_promotes(driver):
    """rebuild.before_swap: the rebuilt state is complete, the live one still serves destiny.csv."""
    before = driver.drain_until_equal("k1, k2")
    with driver.kafka() as kafka, driver.connect() as connect:
        operations.resnapshot(driver.pipe, kafka, connect, origin="test", connector_config=driver.connector_config())
    churn(driver, seed=401)  # changes while the rebuild reads its snapshot
    killed: list[RunRef] = []

    def killed_before_swap() -> bool:
        driver.register()
        run = driver.next_run()
        driver.consume(run)
        result = step_armed_at(driver, "merge", run, "rebuild.before_swap")
        if result.returncode == 0:
            return False  # the rebuild has not caught up yet: nothing to swap in this run
        assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
        killed.append(run)
        return True

    wait_until(killed_before_swap, what="a merge that promotes the rebuild", timeout=240, interval=0)
    assert driver.destiny() == before  # the old table, whole, until the swap
    assert driver.history.incidents.active_recovery() is not None
    run = killed[0]
    driver.merge(RunRef(run.run_id, 2, 2, run.logical_start, run.logical_end))
    assert driver.history.incidents.active_recovery() is None
    assert driver.history.incidents.last_recovery().step == "promoted"
    expected = driver.converge("k1, k2")
    assert driver.destiny().decode() == expected.decode()


WHOLE_REBUILD_POINTS = ("whole_rebuild.stopped", "whole_rebuild.before_resume", "whole_rebuild.resumed")


@pytest.mark.parametrize("point", WHOLE_REBUILD_POINTS)
def test_a_whole_rebuild_killed_before_it_resumed_the_connector_is_started_again_by_the_next_registration(driver,
                                                                                                          point):
    """An operator's resnapshot killed with the connector stopped (its offsets deleted or not, the table set aside
    or not), or just after it resumed: the next registration finds the marker, starts the rebuild again and the
    table ends identical, with no hand on Kafka Connect."""
    driver.drain_until_equal("k1, k2")
    previous = driver.history.incidents.last_recovery()
    killed_at(driver, "resnapshot", driver.next_run(), point)
    interrupted = driver.history.incidents.active_recovery()
    assert interrupted is not None and interrupted.step == "requested"
    assert previous is None or interrupted.id > previous.id
    with driver.connect() as connect:
        assert connect.status(driver.spec.name).state == ("RUNNING" if point == "whole_rebuild.resumed" else "STOPPED")
    churn(driver, seed=600 + WHOLE_REBUILD_POINTS.index(point))
    summary = driver.register()
    assert f"rebuild {interrupted.id} of {TABLE} was interrupted" in summary["healed"], summary
    again = driver.history.incidents.active_recovery()
    assert again.id > interrupted.id and again.step in ("resumed", "snapshot_confirmed")
    assert driver.history.incidents.running_operation() is None  # the resnapshot is done: runs do not step aside
    expected = driver.converge("k1, k2")
    assert driver.destiny().decode() == expected.decode()
    assert driver.history.incidents.last_recovery().id == again.id and not (driver.layout.folder / CONNECTOR_STOPPED).exists()


def test_a_connector_stopped_behind_the_pipelines_back_is_refused_until_it_is_resumed(driver):
    """Nothing of the pipeline's own stopped it (no marker): registration does not override whoever did, it says
    how to resume; once resumed, the changes made meanwhile arrive."""
    driver.drain_until_equal("k1, k2")
    name = driver.spec.name
    with driver.connect() as connect:
        connect.stop(name)
    churn(driver, seed=700)
    with pytest.raises(ConnectorError, match=rf"connector {name} is STOPPED in Kafka Connect, and not by this "
                                             rf"pipeline.*PUT /connectors/{name}/resume"):
        driver.register()
    with driver.connect() as connect:
        connect.resume(name)
    expected = driver.converge("k1, k2")
    assert driver.destiny().decode() == expected.decode()


def changes_without_kafka(driver: PipelineDriver, seed: int) -> None:
    """Updates, a delete and an insert made while neither the broker nor Connect runs (nothing asks Kafka)."""
    rng = random.Random(seed)
    keys = [tuple(row) for row in driver.sql(f"SELECT k1, k2 FROM {TABLE} ORDER BY k1, k2")]
    changed = rng.sample(keys, 5)
    for k1, k2 in changed[:4]:
        update(driver, rng, k1, k2, rng.sample(COLUMNS[2:], 3), table=TABLE)
    driver.sql(f"DELETE FROM {TABLE} WHERE k1 = %s AND k2 = %s", list(changed[4]))
    insert(driver, rng, 9000 + seed * 10, "down", table=TABLE)


def _recoveries(driver: PipelineDriver) -> int:
    return len(driver.history.incidents.recoveries())


def test_kill_9_of_the_broker_between_consume_and_merge_loses_nothing_and_rebuilds_nothing(driver, stack_services):
    driver.wait_for_records(churn(driver, seed=101))
    recoveries = _recoveries(driver)
    run = driver.next_run()
    driver.consume(run, max_events=20)  # part of the churn read; the rest is only in the broker
    churn(driver, seed=102)
    os.kill(stack_services["broker"].pid(), signal.SIGKILL)
    driver.merge(run)  # the merge needs no broker
    stack_services.start(["broker"])
    expected = driver.converge("k1, k2")
    assert driver.destiny().decode() == expected.decode()
    assert _recoveries(driver) == recoveries, driver.history.incidents.recoveries()


def test_kill_9_of_kafka_connect_mid_stream_loses_nothing_and_rebuilds_nothing(driver, stack_services):
    recoveries = _recoveries(driver)
    churn(driver, seed=201)
    os.kill(stack_services["connect"].pid(), signal.SIGKILL)
    churn(driver, seed=202)  # captured by the slot while no connector runs
    stack_services.start(["connect"])
    # The distributed worker keeps its connectors in its config topic: back without being registered again.
    with driver.connect() as connect:
        assert connect.get_config(driver.spec.name) is not None
    expected = driver.converge("k1, k2")
    assert driver.destiny().decode() == expected.decode()
    assert _recoveries(driver) == recoveries, driver.history.incidents.recoveries()


def test_kill_9_of_the_broker_and_kafka_connect_mid_run_loses_nothing_and_rebuilds_nothing(driver, stack_services):
    driver.wait_for_records(churn(driver, seed=501))
    recoveries = _recoveries(driver)
    run = driver.next_run()
    driver.consume(run, max_events=15)
    churn(driver, seed=502)
    os.kill(stack_services["connect"].pid(), signal.SIGKILL)
    os.kill(stack_services["broker"].pid(), signal.SIGKILL)
    changes_without_kafka(driver, seed=503)  # only in the replication slot for now
    driver.merge(run)
    stack_services.start(["broker", "connect"])
    expected = driver.converge("k1, k2")
    assert driver.destiny().decode() == expected.decode()
    assert _recoveries(driver) == recoveries, driver.history.incidents.recoveries()


def test_kill_9_of_postgresql_mid_run_is_caught_up(driver, stack_services):
    driver.wait_for_records(churn(driver, seed=301))
    run = driver.next_run()
    driver.consume(run, max_events=10)
    postmaster = stack_services["postgres"].pid()
    os.kill(postmaster, signal.SIGKILL)
    driver.merge(run)
    # PostgreSQL refuses to start while the killed postmaster's pid still exists. Its children exit on their own;
    # in this sandbox nobody reaps the orphaned postmaster, so its zombie keeps the pid: remove its stale lock file
    # as an operator would once the process is dead.
    wait_until(lambda: not process.is_alive(postmaster), what="the killed postmaster to be gone", timeout=30)
    settings = stack_services.settings
    (settings.pgdata / "postmaster.pid").unlink(missing_ok=True)
    (settings.pg_socket_dir / f".s.PGSQL.{settings.pg_port}.lock").unlink(missing_ok=True)
    stack_services.start(["postgres"])
    churn(driver, seed=302)
    expected = driver.converge("k1, k2")
    assert driver.destiny().decode() == expected.decode()
