"""The status against the real broker: the backlog is the true count of unmerged events per partition (the high
watermark minus the resume point) and the lag age is the age of the oldest unmerged event's Kafka timestamp; after
a run merges them both are zero."""

from __future__ import annotations

import time

import pytest

from cdc_pipeline.commands.status import Probes, kafka_backlog, pipeline_status
from tests.stack.pipeline_driver import PipelineDriver, drained_pipeline

pytestmark = pytest.mark.stack

NAME = "status_live"
TABLE = f"public.{NAME}"


def drained(stack_services, tmp_path, name: str) -> PipelineDriver:
    return drained_pipeline(stack_services.settings, tmp_path, name)


def test_backlog_and_lag_age_are_measured_on_the_broker_and_zero_once_merged(stack_services, tmp_path):
    driver = drained(stack_services, tmp_path, NAME)
    before = driver.published_count()
    written_from = time.time()
    for first in range(100, 137, 12):  # three transactions: 37 events the pipeline has not read
        driver.sql(f"INSERT INTO {TABLE} SELECT g, 'new' FROM generate_series({first}, {min(first + 11, 136)}) g")
    driver.wait_for_records(before + 37)
    time.sleep(2)  # so the oldest unmerged event is measurably old

    with driver.kafka("test.status") as kafka:
        probes = Probes(backlog=kafka_backlog(kafka, driver.spec.topic, max_seconds=30))
        asked_at = time.time()
        status = pipeline_status(NAME, driver.layout, probes)
        assert status.probes["Kafka"] == "answered", status.probes
        assert (status.backlog.measured, status.backlog.total) == ("kafka", 37), status.backlog
        assert sum(status.backlog.partitions.values()) == 37
        age = status.backlog.oldest_age_seconds
        assert age is not None and 2.0 <= age <= time.time() - written_from + 1.0, (age, asked_at - written_from)
        assert "backlog 37 events (kafka, oldest " in "\n".join(status.lines()), status.lines()

        driver.run_once()
        after = pipeline_status(NAME, driver.layout, probes)
        assert (after.backlog.total, after.backlog.oldest_age_seconds) == (0, None), after.backlog
    assert driver.destiny() == driver.copy_csv("id")


def test_a_resume_point_the_broker_no_longer_holds_counts_what_it_holds_without_waiting_for_the_rest(
        stack_services, tmp_path):
    """After the log was truncated (an unclean leader election, a deleted topic) the history's resume point lies
    beyond the topic's end. The status must still answer, at once: everything the broker holds is unread, and the
    next run says what was lost."""
    driver = drained(stack_services, tmp_path, "status_forgot")
    resume = driver.history.runs.resume_point()
    driver.history.runs.set_resume_point(reason="test: as if the broker had forgotten", incarnation=resume.incarnation,
                                         epoch=resume.epoch, ends={p: end + 1000 for p, end in resume.ends.items()})
    with driver.kafka("test.status") as kafka:
        status = pipeline_status("status_forgot", driver.layout,
                                 Probes(backlog=kafka_backlog(kafka, driver.spec.topic, max_seconds=20)))
    assert status.probes["Kafka"] == "answered", status.probes
    assert status.backlog.total == driver.published_count(), status.backlog


def test_the_backlog_counts_change_events_not_the_tombstones_deletes_add(stack_services, tmp_path, monkeypatch):
    from cdc_pipeline.commands import status as status_module

    name = "status_tombstones"
    driver = drained(stack_services, tmp_path, name)
    before = driver.published_count()
    driver.sql(f"DELETE FROM public.{name} WHERE id <= 5")                           # 5 events + 5 tombstones
    driver.sql(f"INSERT INTO public.{name} SELECT g, 'new' FROM generate_series(200, 202) g")  # 3 events
    driver.wait_for_records(before + 13)
    with driver.kafka("test.status") as kafka:
        probes = Probes(backlog=kafka_backlog(kafka, driver.spec.topic, max_seconds=30))
        status = pipeline_status(name, driver.layout, probes)
        assert (status.backlog.total, status.backlog.approximate) == (8, False), status.backlog
        assert "backlog 8 events (kafka" in "\n".join(status.lines())
        # Past the reading limit the count comes from the offsets, and says it is approximate.
        monkeypatch.setattr(status_module, "EXACT_BACKLOG_UP_TO", 5)
        rough = pipeline_status(name, driver.layout, probes)
        assert (rough.backlog.total, rough.backlog.approximate) == (13, True), rough.backlog
        assert "backlog about 13 events (kafka" in "\n".join(rough.lines())
        driver.run_once()
        assert pipeline_status(name, driver.layout, probes).backlog.total == 0
    assert driver.destiny() == driver.copy_csv("id")
