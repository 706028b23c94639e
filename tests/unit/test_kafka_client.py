from cdc_pipeline.kafka.client import (
    DEFAULT_CONSUMER_SETTINGS, FORCED_CONSUMER_SETTINGS, batch_consumer_config, group_id_for,
)


def test_the_consumer_gets_the_fetch_defaults_unless_the_connection_sets_them():
    config = batch_consumer_config({"bootstrap.servers": "b:9092"}, "cdc-csv.x")
    assert config["fetch.queue.backoff.ms"] == 20 and config["fetch.wait.max.ms"] == 100
    own = batch_consumer_config({"bootstrap.servers": "b:9092", "fetch.wait.max.ms": 500}, "cdc-csv.x")
    assert own["fetch.wait.max.ms"] == 500 and own["fetch.queue.backoff.ms"] == 20


def test_what_correctness_depends_on_beats_the_connection_and_the_group_is_the_pipelines():
    config = batch_consumer_config({"enable.auto.commit": True, "auto.offset.reset": "earliest", "group.id": "g"},
                                   group_id_for("g", "clientes"))
    assert config["group.id"] == "g.clientes"
    assert {k: config[k] for k in FORCED_CONSUMER_SETTINGS} == FORCED_CONSUMER_SETTINGS
    assert set(DEFAULT_CONSUMER_SETTINGS) <= set(config)
