"""Hooks that build the pipeline's clients from Airflow connections."""

from __future__ import annotations

from confluent_kafka import Consumer

from airflow.providers.apache.kafka.hooks.base import KafkaBaseHook
from airflow.sdk import BaseHook

from cdc_airflow.settings import KAFKA_CONN_ID, KAFKA_CONNECT_CONN_ID, POSTGRES_CONN_ID
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.kafka_batch import batch_consumer_config, group_id_for
from cdc_pipeline.kafka_connect import KafkaConnectClient
from cdc_pipeline.source.checks import SourceParams


class BatchConsumerHook(KafkaBaseHook):
    """A consumer for explicit-offset batches, from the ``kafka`` connection's librdkafka settings.

    Like the provider's own hooks it only overrides ``_get_client``: the connection's extra is passed
    through, with group id ``<group.id>.<connector>`` and the settings the batch's correctness depends
    on (no auto-commit, partition EOF events) forced.
    """

    def __init__(self, connector_name: str, kafka_config_id: str = KAFKA_CONN_ID) -> None:
        super().__init__(kafka_config_id=kafka_config_id)
        self.connector_name = connector_name

    def _get_client(self, config) -> Consumer:
        return Consumer(batch_consumer_config(config, group_id_for(config.get("group.id") or "cdc-csv", self.connector_name)))


def kafka_connect_client(conn_id: str = KAFKA_CONNECT_CONN_ID) -> KafkaConnectClient:
    conn = BaseHook.get_connection(conn_id)
    if not conn.host:
        raise ConfigError(f"Airflow connection {conn_id!r} has no host; it must point at Kafka Connect's REST API.")
    scheme = conn.schema or "http"
    host = conn.host if "://" in conn.host else f"{scheme}://{conn.host}"
    return KafkaConnectClient(f"{host}:{conn.port}" if conn.port else host)


def source_params(conn_id: str = POSTGRES_CONN_ID) -> SourceParams:
    conn = BaseHook.get_connection(conn_id)
    missing = [name for name, value in (("host", conn.host), ("login", conn.login), ("schema (database)", conn.schema)) if not value]
    if missing:
        raise ConfigError(f"Airflow connection {conn_id!r} lacks {', '.join(missing)}; it describes the source PostgreSQL.")
    return SourceParams(host=conn.host, port=int(conn.port or 5432), user=conn.login, password=conn.password or "", dbname=conn.schema)
