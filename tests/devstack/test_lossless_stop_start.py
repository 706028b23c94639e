"""./stack stop loses no change: Connect stops first, every pipeline is drained, then the broker stops.

A separate small stack (its broker is stopped here). A burst of changes is published and not read; stop;
start again; the pipeline continues on the new topic incarnation with no rebuild and ends identical to COPY.
A drain that fails keeps the broker running and says so, unless forced.
"""

from __future__ import annotations

import shutil

import pytest

from devstack.errors import DrainFailedError
from devstack.stack import SERVICES, Stack
from devstack.testing import make_test_settings
from tests.stack.pipeline_driver import PipelineDriver, write_connector

pytestmark = pytest.mark.stack


PIPELINES = {  # test -> its pipeline
    "test_stop_drains_every_pipeline_and_up_continues_without_loss": "kept_items",
    "test_a_failed_drain_keeps_the_broker_running_unless_forced": "stuck_items",
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
    before = driver.topic_record_count()
    table = driver.spec.qualified_table
    driver.sql(f"UPDATE {table} SET v = '{tag} ' || id WHERE id % 2 = 0")
    driver.sql(f"INSERT INTO {table} SELECT g, '{tag}' FROM generate_series(1000 + length('{tag}') * 100,"
               f" 1010 + length('{tag}') * 100) g")
    driver.sql(f"DELETE FROM {table} WHERE id % 5 = 0 AND id < 1000")
    driver.wait_for_records(before + 25 + 11)


def test_stop_drains_every_pipeline_and_up_continues_without_loss(stack, driver):
    burst(driver, "unread")  # published, not merged
    messages: list[str] = []
    stopped = stack.stop_keeping_every_change(report=messages.append)
    assert stopped == ["connect", "broker", "postgres"]
    assert any("drained to the end of incarnation" in m for m in messages)
    drained = driver.destiny()
    assert b"unread" in drained

    stack.start(SERVICES)  # a new, empty broker: the topic comes back as a new incarnation
    driver.register()  # as the next run does: a standalone Connect worker forgets its connectors
    burst(driver, "after the restart")
    expected = driver.converge("id")
    assert driver.destiny().decode() == expected.decode()
    assert driver.history.incidents.recoveries() == []  # nothing was lost, so nothing was rebuilt
    incarnations = {r["incarnation"] for r in driver.history.runs.recent_runs(200) if r["incarnation"]}
    assert len(incarnations) == 2
    assert any(r["run_id"].startswith("drain__stop-") for r in driver.history.runs.recent_runs(200))


def test_a_failed_drain_keeps_the_broker_running_unless_forced(stack, driver):
    burst(driver, "stuck")
    driver.layout.buffer_meta.write_text("not json")  # a pipeline whose buffer cannot be read: its drain fails
    with pytest.raises(DrainFailedError, match=rf"could not drain pipeline {driver.spec.name}.*keep running.*--force"):
        stack.stop_keeping_every_change()
    assert stack["broker"].is_running() and stack["postgres"].is_running()
    assert not stack["connect"].is_running()
    messages: list[str] = []
    stack.stop_keeping_every_change(force=True, report=messages.append)
    assert any("stopping anyway (--force)" in m for m in messages)
    assert not stack["broker"].is_running()
