"""End to end on the real services: PostgreSQL → Debezium → broker → the pipeline's steps → destiny.csv.

The proof of the fidelity contract without Airflow in the way (tests/airflow repeats it through the
scheduler): after a workload of snapshot reads, inserts, updates, deletes, re-inserts of deleted keys,
several updates of one key in one transaction and unchanged-TOAST updates, on a table with a column of
every promised type and a composite key, destiny.csv is byte-identical to PostgreSQL's COPY.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import pytest

from cdc_pipeline.kafka.offsets import commit_offsets
from tests.stack.pipeline_driver import PipelineDriver, write_connector
from tests.stack.workload import ANCIENT_DATES, ANCIENT_TSS, ANCIENT_TSTZS, create_types_table, insert, run_mixed_workload

pytestmark = pytest.mark.stack


@dataclass
class MixedWorkload:
    driver: PipelineDriver
    expected: bytes       # COPY once the workload was drained
    runs: list[dict]      # the runs that drained it (the module's other tests add their own afterwards)


@pytest.fixture(scope="module")
def mixed(stack_services, tmp_path_factory) -> MixedWorkload:
    """The table, registered in the middle of a mixed workload (snapshot reads and streamed changes), drained in
    small batches. Every test of the module starts from here, in any order."""
    folder = tmp_path_factory.mktemp("connectors")
    driver = PipelineDriver(stack_services.settings, write_connector(folder, "acc_types", "public.acc_types", "acc"),
                            tmp_path_factory.mktemp("data"))
    create_types_table(driver.sql)
    run_mixed_workload(driver, random.Random(20261124), register=driver.register)
    # Small batches force many runs across the topic's partitions.
    expected = driver.drain_until_equal("k1, k2", max_events=97)
    return MixedWorkload(driver, expected, driver.history.runs.recent_runs(1000))


@pytest.fixture
def acc_driver(mixed) -> PipelineDriver:
    return mixed.driver


def test_destiny_is_byte_identical_to_copy_after_a_mixed_workload(mixed):
    assert mixed.driver.destiny().decode() == mixed.driver.drain_until_equal("k1, k2").decode()
    runs = mixed.runs
    partitions = {p for run in runs if run["offset_ranges"] for p in json.loads(run["offset_ranges"])}
    assert len(partitions) > 1, "the workload should have crossed several partitions"
    assert sum(r["reads"] or 0 for r in runs) >= 120
    assert sum(r["deletes"] or 0 for r in runs) >= 30
    assert all(r["status"] == "merged" for r in runs if r["offset_ranges"] is not None)
    assert sum(r["merge_stale"] or 0 for r in runs) == 0  # no event was ever judged older than the state


def test_a_retry_after_a_failed_commit_commits_the_recorded_batch_without_reading_again(acc_driver, monkeypatch):
    driver, rng = acc_driver, random.Random(7)
    before = driver.published_count()
    for i in range(1000, 1040):
        insert(driver, rng, i, "retry")
    assert driver.wait_for_records(before + 40) >= before + 40
    run = driver.next_run()

    def refuse(*args, **kwargs):
        raise RuntimeError("simulated failure between the durable buffer and the commit")

    monkeypatch.setattr("cdc_pipeline.tasks.consume.commit_offsets", refuse)
    with pytest.raises(RuntimeError):
        driver.consume(run, max_events=25)
    first = json.loads(driver.history.runs.get_run(run.run_id)["offset_ranges"])
    assert sum(end - start for start, end in first.values()) == 25
    assert driver.history.runs.resume_point().run_id == run.run_id  # the durable batch is the resume point

    # Meanwhile more changes arrive; the retry must neither read again nor widen its range.
    for i in range(1040, 1050):
        insert(driver, rng, i, "retry")
    monkeypatch.setattr("cdc_pipeline.tasks.consume.commit_offsets", commit_offsets)
    retry = type(run)(run.run_id, 2, 2, run.logical_start, run.logical_end)
    summary = driver.consume(retry, max_events=25)
    assert summary["events"] == 25 and "already in buffer.csv" in summary["notes"][0]
    record = driver.history.runs.get_run(run.run_id)
    assert json.loads(record["offset_ranges"]) == first and record["offsets_committed"] == 1
    driver.merge(retry)

    expected = driver.drain_until_equal("k1, k2")
    assert driver.destiny() == expected


def test_a_lost_consumer_group_is_noted_and_the_run_history_resumes_exactly(acc_driver):
    """The group's offsets are a mirror: when they are gone, the run history still knows where to resume."""
    driver = acc_driver
    expected = driver.drain_until_equal("k1, k2")
    assert driver.destiny() == expected
    group = driver.group
    driver.group = group + ".lost"
    try:
        consumed, merged = driver.run_once(max_events=100_000)
    finally:
        driver.group = group
    assert any("no committed offsets" in note for note in consumed["notes"])
    assert consumed["events"] == 0 and merged.get("inserted", 0) == 0
    assert driver.destiny() == expected


def test_bc_and_pre_gregorian_values_are_faithful_when_streamed(acc_driver):
    """Streamed changes (pgoutput) carry ancient dates exactly; only Debezium's snapshot path cannot."""
    driver, rng = acc_driver, random.Random(44)
    for i, (day, ts, tstz) in enumerate(zip(ANCIENT_DATES * 3, ANCIENT_TSS * 4, ANCIENT_TSTZS * 6)):
        insert(driver, rng, 5000 + i, "ancient", c_date=day, c_ts=ts, c_tstz=tstz)
    expected = driver.drain_until_equal("k1, k2")
    assert driver.destiny().decode() == expected.decode()
    assert b"0044-03-15 BC" in expected and b"0044-03-15 12:00:00+00 BC" in expected


def test_a_serial_key_streams_on_after_its_snapshot_without_a_rebuild(stack_services, tmp_path):
    """Debezium spells a serial column's type SERIAL in snapshot reads and INT4 in streamed changes: not a change."""
    driver = PipelineDriver(stack_services.settings, write_connector(tmp_path, "serial_items", "public.serial_items", "si"),
                            tmp_path / "data")
    driver.sql("DROP TABLE IF EXISTS public.serial_items")
    driver.sql("CREATE TABLE public.serial_items (id serial PRIMARY KEY, v text)")
    driver.sql("INSERT INTO public.serial_items (v) SELECT 'v' || g FROM generate_series(1, 5) g")
    driver.register()
    assert driver.drain_until_equal("id") == driver.destiny()
    driver.sql("INSERT INTO public.serial_items (v) VALUES ('streamed')")
    driver.register()
    expected = driver.drain_until_equal("id")
    assert driver.destiny() == expected and b"streamed" in expected
    assert driver.history.incidents.recoveries() == []
