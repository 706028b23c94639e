"""Debezium's Kafka channels: execute-snapshot signals sent to a connector, and the notifications it answers with.

Debezium reads signals from partition 0 of its signal topic, keeps those whose key is the connector's
``topic.prefix``, and sends what its incremental snapshots do (STARTED, TABLE_SCAN_COMPLETED per table,
COMPLETED, ABORTED) to its notification topic, with the id of the latest signal it acted on.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import orjson
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import NewTopic

from cdc_pipeline.errors import BrokerUnreachableError, KafkaError
from cdc_pipeline.kafka.client import METADATA_TIMEOUT_S, KafkaClients, admin_config
from cdc_pipeline.kafka.offsets import offsets_at_time
from cdc_pipeline.kafka.reader import read_range
from cdc_pipeline.kafka.topic import topic_partitions

SIGNAL_ID_PREFIX = "cdc-"


def new_signal_id(now_us: int | None = None) -> str:
    """Ids that sort by the moment they were made: ``cdc-<epoch microseconds, 16 digits>-<8 hex>`` (two signals
    sent one after the other are a broker round trip apart, so never in the same microsecond)."""
    now_us = time.time_ns() // 1000 if now_us is None else now_us
    return f"{SIGNAL_ID_PREFIX}{now_us:016d}-{uuid.uuid4().hex[:8]}"


def signal_time_us(signal_id: str | None) -> int | None:
    """The moment a pipeline's signal id was made, or None for an id the pipeline did not make."""
    if not signal_id or not signal_id.startswith(SIGNAL_ID_PREFIX):
        return None
    digits = signal_id[len(SIGNAL_ID_PREFIX):len(SIGNAL_ID_PREFIX) + 16]
    return int(digits) if digits.isdigit() and len(digits) == 16 else None


@dataclass(frozen=True)
class Notification:
    id: str
    type: str                       # STARTED | TABLE_SCAN_COMPLETED | COMPLETED | ABORTED | IN_PROGRESS | ...
    aggregate_type: str             # "Incremental Snapshot" for what concerns us
    data: dict[str, str] = field(default_factory=dict)
    timestamp_ms: int = 0


def ensure_signal_topic(clients: KafkaClients, topic: str) -> None:
    """Create the signal topic (one partition: Debezium reads partition 0 only) unless it exists."""
    if topic_partitions(clients, topic) is not None:
        return
    futures = clients.admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=-1)],
                                          request_timeout=METADATA_TIMEOUT_S)
    try:
        futures[topic].result()
    except KafkaException as exc:
        if "TOPIC_ALREADY_EXISTS" not in str(exc):
            raise KafkaError(f"could not create the signal topic {topic!r}: {exc}") from exc


def send_signal(clients: KafkaClients, topic: str, connector_prefix: str, signal: dict) -> None:
    """Produce one signal and wait until the broker has it (acks=all)."""
    producer = Producer({**admin_config(clients.connection_config), "acks": "all"})
    failures: list[str] = []
    producer.produce(topic, key=connector_prefix.encode(), value=orjson.dumps(signal), partition=0,
                     on_delivery=lambda err, _msg: err is not None and failures.append(str(err)))
    left = producer.flush(METADATA_TIMEOUT_S)
    if left or failures:
        raise BrokerUnreachableError(f"the signal {signal.get('id')} to {topic} was not acknowledged by the broker "
                                     f"({'; '.join(failures) or 'timed out'}); the next run sends it again")


def read_notifications(clients: KafkaClients, topic: str, since_ms: int) -> list[Notification]:
    """The notifications with a Kafka timestamp at or after ``since_ms``, up to the topic's end, in the order
    Debezium sent them (the topic has one partition unless the connector file asks for more)."""
    partitions = topic_partitions(clients, topic)
    if not partitions:
        return []
    found: list[Notification] = []

    def take(message) -> None:
        parsed = parse_notification(message.value())
        if parsed is not None:
            found.append(parsed)

    result = read_range(clients, topic, offsets_at_time(clients, topic, partitions, since_ms), take, max_events=None,
                        max_seconds=METADATA_TIMEOUT_S)
    if not result.complete:
        raise BrokerUnreachableError(f"could not read {topic} to its end within {METADATA_TIMEOUT_S:.0f} s")
    return found


def parse_notification(value: bytes | None) -> Notification | None:
    """One notification record (JSON, with or without the converter's inline schema), or None if it is not one."""
    if not value:
        return None
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if isinstance(document, dict) and "payload" in document and "schema" in document:
        document = document["payload"]
    if not isinstance(document, dict) or "type" not in document or "id" not in document:
        return None
    data = document.get("additional_data") or {}
    return Notification(str(document["id"]), str(document["type"]), str(document.get("aggregate_type", "")),
                        {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {},
                        int(document.get("timestamp") or 0))
