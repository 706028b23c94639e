"""Operations on the real services: start from a date, reset, and clear errors when a part is down."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from confluent_kafka import Consumer

from cdc_pipeline import cli
from cdc_pipeline.errors import KafkaError, SourceError
from cdc_pipeline.run_history import RunHistory
from cdc_pipeline.kafka_batch import batch_consumer_config, topic_partitions
from cdc_pipeline.source.checks import SourceParams, check_source
from devstack.ports import free_port
from tests.stack.pipeline_driver import PipelineDriver, write_connector

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def ops(stack_services, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ops-connectors")
    path = write_connector(folder, "ops_items", "public.ops_items", "ops")
    driver = PipelineDriver(stack_services.settings, path, tmp_path_factory.mktemp("ops-data"))
    driver.sql("DROP TABLE IF EXISTS public.ops_items")
    driver.sql("CREATE TABLE public.ops_items (id int PRIMARY KEY, v text)")
    driver.sql("INSERT INTO public.ops_items SELECT g, 'old ' || g FROM generate_series(1, 10) g")
    driver.register()
    assert driver.drain_until_equal("id") == driver.destiny()
    return driver, folder


def test_start_from_a_date_skips_older_events(ops, tmp_path):
    driver, folder = ops
    time.sleep(1.5)
    cut = datetime.now(UTC)
    time.sleep(1.5)
    driver.sql("INSERT INTO public.ops_items SELECT g, 'new ' || g FROM generate_series(11, 15) g")
    time.sleep(3)  # let Debezium publish them

    fresh = PipelineDriver(driver.settings, folder / "ops_items.json", tmp_path, group="test.ops.fresh")
    run = fresh.next_run()
    consumed = fresh.consume(run, start_from=cut, max_events=3)
    fresh.merge(run)
    # Later runs have no start_from of their own: the cut-off recorded by the first run still applies.
    for _ in range(6):
        fresh.run_once(max_events=3)
    assert consumed["reads"] == 0
    assert fresh.destiny().decode() == "id,v\n" + "".join(f"{i},new {i}\n" for i in range(11, 16))


def test_reset_from_beginning_rebuilds_destiny_and_keeps_the_old_files(ops, monkeypatch):
    driver, folder = ops
    expected = driver.drain_until_equal("id")
    assert driver.destiny() == expected
    s = driver.settings
    code = cli.main([
        "--data-dir", str(driver.paths.folder.parent), "--connectors-dir", str(folder),
        "reset", "--connector", "ops_items", "--from-beginning", "--yes",
        "--bootstrap-servers", f"127.0.0.1:{s.kafka_port}", "--group-prefix", "test",
    ])
    assert code == 0
    assert not (driver.paths.folder / "destiny.csv").exists()
    assert list(driver.paths.folder.parent.glob("ops_items.before-reset-*/destiny.csv"))
    consumed, _ = driver.run_once()
    assert consumed["reads"] >= 10  # the snapshot events again: read from the beginning
    assert driver.destiny() == driver.copy_csv("id")


def test_an_unreachable_broker_fails_with_the_fix():
    consumer = Consumer(batch_consumer_config({"bootstrap.servers": f"127.0.0.1:{free_port()}"}, "nobody"))
    try:
        with pytest.raises(KafkaError, match="did not answer a metadata request.*cdc_kafka"):
            topic_partitions(consumer, "t", timeout=3)
    finally:
        consumer.close()


def test_an_unreachable_source_fails_with_the_fix():
    params = SourceParams("127.0.0.1", free_port(), "postgres", "x", "testdb")
    with pytest.raises(SourceError, match="(?s)cannot connect to PostgreSQL.*cdc_postgres"):
        check_source(params, "public", "t", "slot")


def test_a_table_without_primary_key_is_refused_before_registration(stack_services):
    s = stack_services.settings
    driver = PipelineDriver(s, write_connector(stack_services.settings.stack_home, "nokey", "public.nokey", "nk"), s.data_dir)
    driver.sql("DROP TABLE IF EXISTS public.nokey")
    driver.sql("CREATE TABLE public.nokey (v text)")
    with pytest.raises(SourceError, match="has no primary key"):
        check_source(driver.source, "public", "nokey", "slot_nokey")


def test_an_undecodable_message_is_dead_lettered_and_the_run_goes_on(ops):
    from confluent_kafka import Producer

    driver, _ = ops
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{driver.settings.kafka_port}"})
    producer.produce(driver.spec.topic, key=b"junk", value=b"\x00 not a debezium event", partition=0)
    producer.flush(10)
    driver.sql("INSERT INTO public.ops_items VALUES (100, 'after the junk')")
    time.sleep(2)
    expected = driver.drain_until_equal("id")
    assert driver.destiny() == expected and b"after the junk" in expected
    letters = [json.loads(line) for line in driver.paths.dead_letters.read_text().splitlines()]
    assert [(d["partition"], base64.b64decode(d["value_base64"])) for d in letters] == [(0, b"\x00 not a debezium event")]
    runs = RunHistory(driver.paths.history).recent_runs(100)
    assert sum(r["dead_lettered"] or 0 for r in runs) == 1


def test_a_linguistic_collation_on_a_text_key_is_reported(stack_services):
    s = stack_services.settings
    driver = PipelineDriver(s, write_connector(s.stack_home, "coll", "public.coll_items", "co"), s.data_dir)
    driver.sql("DROP TABLE IF EXISTS public.coll_items")
    driver.sql('CREATE TABLE public.coll_items (k text COLLATE "und-x-icu" PRIMARY KEY)')
    report = check_source(driver.source, "public", "coll_items", "slot_coll")
    assert any("linguistic collation" in note and "und-x-icu" in note for note in report.notes)
    driver.sql("DROP TABLE public.coll_items")
    driver.sql('CREATE TABLE public.coll_items (k text PRIMARY KEY)')  # the cluster's C.UTF-8
    assert not any("collation" in note for note in check_source(driver.source, "public", "coll_items", "slot_coll").notes)
