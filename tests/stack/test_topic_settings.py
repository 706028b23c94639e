"""What the topic's own settings do on the real broker: compaction is refused, partitions added live are read.

Compaction: a compacted topic keeps only a deleted row's tombstone and drops even that after
``delete.retention.ms``. A delete made while the pipeline is paused, then a forced cleaning, leaves nothing of the
deleted row's events in the topic: a pipeline reading on would keep the row forever. Registration refuses the
topic instead, naming the setting and the fix; with the fix and a resnapshot the file ends identical to COPY.

Partitions added to a live topic (``--alter --partitions``) while updates, deletes and a TRUNCATE are in flight:
the new partitions are read from their start, a key whose events moved partition is ordered by LSN, and the file
ends identical to COPY.
"""

from __future__ import annotations

import json

import pytest
from confluent_kafka.admin import NewPartitions

from cdc_pipeline.commands import cli
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.kafka.topic import watermarks
from cdc_pipeline.waiting import wait_until
from tests.stack.peek import read_topic
from tests.stack.pipeline_driver import PipelineDriver, drained_pipeline

pytestmark = pytest.mark.stack


def _driver(stack, tmp_path, name: str, *, partitions: int = 1, config: dict[str, str] | None = None) -> PipelineDriver:
    return drained_pipeline(stack.settings, tmp_path, name, rows="g, 'old ' || g", count=30, config=config,
                            partitions=partitions)


def _records_of_key(driver: PipelineDriver, key: int) -> int:
    """Records of one key still in the topic (its changes and its tombstone)."""
    records = read_topic(driver.settings.kafka_bootstrap, driver.spec.topic, group="test.peek.key")
    return sum(1 for r in records if r.key and json.loads(r.key).get("payload", {}).get("id") == key)


def test_a_compacted_topic_is_refused_at_registration_and_the_fix_ends_identical(stack_services, tmp_path):
    driver = _driver(stack_services, tmp_path, "compact_items")
    # Paused: nothing reads while a row is deleted and the broker is told to compact at once.
    driver.sql("DELETE FROM public.compact_items WHERE id = 7")
    driver.wait_for_records(driver.published_count())
    driver.alter_topic({"cleanup.policy": "compact", "delete.retention.ms": "0", "min.cleanable.dirty.ratio": "0.0001",
                        "segment.ms": "100", "min.compaction.lag.ms": "0"})

    def cleaned() -> bool:
        # Each write rolls a segment (segment.ms is past); the cleaner then compacts the closed ones.
        driver.sql("UPDATE public.compact_items SET v = v || '.' WHERE id = 1")
        return _records_of_key(driver, 7) == 0

    wait_until(cleaned, what="the log cleaner to remove every event of the deleted row", timeout=120, interval=3)

    with pytest.raises(ConfigError, match=r"cleanup.policy=compact.*--add-config cleanup.policy=delete"):
        driver.register()

    # The fix the message names, then a new snapshot: the row deleted while paused is gone from the file too.
    driver.alter_topic({"cleanup.policy": "delete", "delete.retention.ms": None, "min.cleanable.dirty.ratio": None,
                        "segment.ms": None, "min.compaction.lag.ms": None})
    driver.register()
    settings = driver.settings
    assert cli.main(["--data-dir", str(driver.layout.folder.parent), "--connectors-dir", str(driver.spec.path.parent),
                     "--bootstrap-servers", settings.kafka_bootstrap, "--group-prefix", "test",
                     "--connect-url", settings.connect_url, "resnapshot", "--connector", "compact_items", "--yes"]) == 0
    expected = driver.converge("id")
    assert driver.destiny().decode() == expected.decode()
    assert b"\n7,old 7\n" not in driver.destiny()


def test_partitions_added_to_a_live_topic_mid_stream_end_identical(stack_services, tmp_path):
    # Debezium's producer learns of new partitions at its next metadata refresh: every second here.
    driver = _driver(stack_services, tmp_path, "grown_items", partitions=1,
                     config={"producer.override.metadata.max.age.ms": "1000"})
    driver.sql("UPDATE public.grown_items SET v = 'first ' || id WHERE id % 2 = 0")
    driver.sql("DELETE FROM public.grown_items WHERE id % 5 = 0")
    driver.run_once(max_events=7)  # part of it read: the rest is in flight when the topic grows
    with driver.kafka() as kafka:
        for future in kafka.admin.create_partitions([NewPartitions(driver.spec.topic, 3)]).values():
            future.result()

    def spread() -> bool:
        driver.sql("UPDATE public.grown_items SET v = 'later ' || id WHERE id % 3 = 0")
        with driver.kafka("test.peek") as kafka:
            return all(watermarks(kafka, driver.spec.topic, p)[1] > 0 for p in (1, 2))

    wait_until(spread, what="Debezium to write to the new partitions", timeout=60, interval=2)
    driver.sql("DELETE FROM public.grown_items WHERE id % 7 = 0")
    driver.sql("INSERT INTO public.grown_items SELECT g, 'new ' || g FROM generate_series(100, 130) g")
    driver.run_once(max_events=11)
    driver.sql("TRUNCATE public.grown_items")
    driver.sql("INSERT INTO public.grown_items SELECT g, 'after truncate ' || g FROM generate_series(1, 20) g")
    driver.sql("UPDATE public.grown_items SET v = 'final ' || id WHERE id % 4 = 0")
    expected = driver.converge("id", max_events=13)
    assert driver.destiny().decode() == expected.decode()
    runs = driver.history.runs.recent_runs(200)
    read = {p for r in runs if r["offset_ranges"] for p in json.loads(r["offset_ranges"])}
    assert read >= {"0", "1", "2"}, read
    assert driver.history.incidents.recoveries() == []  # nothing lost, nothing rebuilt
