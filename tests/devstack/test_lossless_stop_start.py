"""Stop and start lose no change, drained or not: Apache Kafka keeps its log on disk.

A separate small stack (its broker is stopped here). A burst of changes is published and not read; then
``./stack stop`` (Connect stops, every pipeline is drained, then the broker), or a stop of every part with no
drain at all; start again; the pipeline continues on the same topic with no rebuild and ends identical to
COPY. A drain that fails is reported and the stop goes on: the broker keeps the events.
"""

from __future__ import annotations

import shutil

import pytest

from devstack.stack import SERVICES, Stack
from devstack.testing import make_test_settings
from tests.stack.pipeline_driver import PipelineDriver, write_connector

pytestmark = pytest.mark.stack


PIPELINES = {  # test -> its pipeline
    "test_stop_drains_every_pipeline_and_up_continues_without_loss": "kept_items",
    "test_a_failed_drain_is_reported_and_the_stop_loses_nothing": "stuck_items",
    "test_up_after_a_stop_without_a_drain_ends_identical_without_a_rebuild": "undrained_items",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(make_test_settings(prefix="cdc-stack-lossless-",
                                     connectors_dir=tmp_path_factory.mktemp("lossless-connectors")))
    try:
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(stack.settings.stack_home, ignore_errors=True)


@pytest.fixture
def driver(stack, request) -> PipelineDriver:
    """A pipeline of the test's own, in the folder ``./stack stop`` drains; gone from it after the test, so a
    pipeline a test broke on purpose never holds back another test's stop. The stack is started if a test
    before left it stopped."""
    name = PIPELINES[request.node.name]
    s = stack.settings
    path = write_connector(s.connectors_dir, name, f"public.{name}", name.replace("_", ""))
    stack.start(SERVICES)
    driver = PipelineDriver(s, path, s.data_dir, group=f"{s.kafka_group_id}.{name}")
    driver.sql(f"DROP TABLE IF EXISTS public.{name}")
    driver.sql(f"CREATE TABLE public.{name} (id int PRIMARY KEY, v text)")
    driver.sql(f"INSERT INTO public.{name} SELECT g, 'v' || g FROM generate_series(1, 50) g")
    driver.register()
    assert driver.drain_until_equal("id") == driver.destiny()
    try:
        yield driver
    finally:
        path.unlink()


def burst(driver: PipelineDriver, tag: str) -> None:
    before = driver.published_count()
    table = driver.spec.qualified_table
    driver.sql(f"UPDATE {table} SET v = '{tag} ' || id WHERE id % 2 = 0")
    driver.sql(f"INSERT INTO {table} SELECT g, '{tag}' FROM generate_series(1000 + length('{tag}') * 100,"
               f" 1010 + length('{tag}') * 100) g")
    driver.sql(f"DELETE FROM {table} WHERE id % 5 = 0 AND id < 1000")
    driver.wait_for_records(before + 25 + 11)


def _incarnations(driver: PipelineDriver) -> set[int]:
    return {r["incarnation"] for r in driver.history.runs.recent_runs(200) if r["incarnation"]}


def test_stop_drains_every_pipeline_and_up_continues_without_loss(stack, driver):
    burst(driver, "unread")  # published, not merged
    messages: list[str] = []
    stopped = stack.stop_draining(report=messages.append)
    assert stopped == ["connect", "broker", "postgres"]
    assert any("drained to the end of incarnation" in m for m in messages)
    drained = driver.destiny()
    assert b"unread" in drained

    stack.start(SERVICES)  # the same topic, and the connector kept in Connect's config topic
    burst(driver, "after the restart")
    expected = driver.converge("id")
    assert driver.destiny().decode() == expected.decode()
    assert driver.history.incidents.recoveries() == []  # nothing was lost, so nothing was rebuilt
    assert len(_incarnations(driver)) == 1
    assert any(r["run_id"].startswith("drain__stop-") for r in driver.history.runs.recent_runs(200))


def test_up_after_a_stop_without_a_drain_ends_identical_without_a_rebuild(stack, driver):
    burst(driver, "unread")
    assert stack.stop() == ["connect", "broker", "postgres"]  # every part, no drain: as after a crash
    assert b"unread" not in driver.destiny()
    stack.start(SERVICES)
    burst(driver, "after the restart")
    expected = driver.converge("id")
    assert driver.destiny().decode() == expected.decode()
    assert driver.history.incidents.recoveries() == []
    assert len(_incarnations(driver)) == 1


def test_a_failed_drain_is_reported_and_the_stop_loses_nothing(stack, driver):
    burst(driver, "stuck")
    driver.layout.buffer_meta.write_text("not json")  # a pipeline whose buffer cannot be read: its drain fails
    messages: list[str] = []
    stopped = stack.stop_draining(report=messages.append)
    assert stopped == ["connect", "broker", "postgres"]
    assert any(f"could not drain pipeline {driver.spec.name}" in m and "nothing is lost" in m for m in messages)
    driver.layout.buffer_meta.unlink()  # the operator's fix
    stack.start(SERVICES)
    expected = driver.converge("id")
    assert driver.destiny().decode() == expected.decode()
    assert b"stuck" in driver.destiny()
    assert driver.history.incidents.recoveries() == []
