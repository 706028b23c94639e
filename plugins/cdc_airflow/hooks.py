"""Hooks that build the pipeline's clients from Airflow connections.

Imported only inside task callables: the Kafka provider pulls in confluent_kafka, which DAG parsing must not pay for.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from airflow.providers.apache.kafka.hooks.base import KafkaBaseHook
from airflow.sdk import BaseHook

from cdc_airflow.settings import KAFKA_CONN_ID, KAFKA_CONNECT_CONN_ID, POSTGRES_ADMIN_CONN_ID, POSTGRES_CONN_ID
from cdc_pipeline.connector_spec import DEFAULT_PASSWORD_REFERENCE
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.kafka.client import KafkaClients
from cdc_pipeline.kafka_connect import KafkaConnectClient
from cdc_pipeline.pipeline import Pipeline
from cdc_pipeline.services import Services
from cdc_pipeline.source.checks import SourceParams


class PipelineKafkaHook(KafkaBaseHook):
    """The pipeline's Kafka clients (an explicit-offset consumer, an admin client) from the ``kafka``
    connection's librdkafka settings.

    Like the provider's own hooks it only overrides ``_get_client``: the connection's extra is passed through,
    with group id ``<group.id>.<connector>`` and the settings the batch's correctness depends on forced.
    """

    def __init__(self, connector_name: str, kafka_config_id: str = KAFKA_CONN_ID) -> None:
        super().__init__(kafka_config_id=kafka_config_id)
        self.connector_name = connector_name

    def _get_client(self, config) -> KafkaClients:
        return KafkaClients.for_pipeline(config, self.connector_name)

    def clients(self) -> KafkaClients:
        """A new set of clients (the provider's ``get_conn`` caches one per hook)."""
        return self._get_client(self.get_connection(self.kafka_config_id).extra_dejson)


def kafka_connect_client(conn_id: str = KAFKA_CONNECT_CONN_ID, *, timeout: float = 30.0) -> KafkaConnectClient:
    conn = BaseHook.get_connection(conn_id)
    if not conn.host:
        raise ConfigError(f"Airflow connection {conn_id!r} has no host; it must point at Kafka Connect's REST API.")
    scheme = conn.schema or "http"
    host = conn.host if "://" in conn.host else f"{scheme}://{conn.host}"
    auth = (conn.login, conn.password or "") if conn.login else None  # Connect's basic-auth REST extension
    return KafkaConnectClient(f"{host}:{conn.port}" if conn.port else host, timeout=timeout, auth=auth)


def source_params(conn_id: str = POSTGRES_CONN_ID) -> SourceParams:
    conn = BaseHook.get_connection(conn_id)
    missing = [name for name, value in (("host", conn.host), ("login", conn.login), ("schema (database)", conn.schema)) if not value]
    if missing:
        raise ConfigError(f"Airflow connection {conn_id!r} lacks {', '.join(missing)}; it describes the source PostgreSQL.")
    return SourceParams(host=conn.host, port=int(conn.port or 5432), user=conn.login, password=conn.password or "", dbname=conn.schema)


def admin_source_params(conn_id: str = POSTGRES_ADMIN_CONN_ID) -> SourceParams | None:
    """The administrator's connection, which creates and alters the connector's publication; None when it is not
    defined (the pipeline's own role then must own the tables, or a DBA keeps the publication)."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    return source_params(conn_id)


def password_reference(conn_id: str = POSTGRES_CONN_ID) -> str:
    """What register_connector sends as database.password: a config-provider reference Kafka Connect resolves."""
    return str(BaseHook.get_connection(conn_id).extra_dejson.get("connect_password") or DEFAULT_PASSWORD_REFERENCE)


def pipeline_services(probes: Callable[[Pipeline], Any] | None = None) -> Services:
    """The services of a task or an operation, from the Airflow connections; each client is made when asked. The
    source's connections are looked up once per task (registration reads them for its checks, the connector's
    config and the publication: each lookup is a call to Airflow's API)."""
    return Services(kafka=lambda name: PipelineKafkaHook(name).clients(), connect=kafka_connect_client,
                    source=functools.cache(source_params), password_reference=password_reference(),
                    admin=functools.cache(admin_source_params), probes=probes)
