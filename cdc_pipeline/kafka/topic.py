"""What the broker holds of a topic: does it exist, its id, its partitions and their offset ranges."""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import KafkaError as RdKafkaError, KafkaException, TopicCollection, TopicPartition

from cdc_pipeline.errors import BrokerUnreachableError, KafkaError
from cdc_pipeline.kafka.client import METADATA_TIMEOUT_S, KafkaClients


@dataclass(frozen=True)
class TopicState:
    """One look at a topic. ``low``/``listed_high`` are ListOffsets' earliest and latest per partition: the log
    start and the high watermark, the exact end (see ``watermarks``)."""

    topic: str
    exists: bool
    topic_id: str | None = None
    partitions: tuple[int, ...] = ()
    low: dict[int, int] = field(default_factory=dict)
    listed_high: dict[int, int] = field(default_factory=dict)


def topic_partitions(clients: KafkaClients, topic: str, timeout: float = METADATA_TIMEOUT_S) -> list[int] | None:
    """The topic's partitions, or None when it does not exist."""
    try:
        metadata = clients.consumer.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise BrokerUnreachableError(
            f"the broker did not answer a metadata request for topic {topic!r} within {timeout:.0f} s "
            f"({exc}). Is it running (locally: ./stack status)? Check the 'cdc_kafka' connection's bootstrap.servers."
        ) from exc
    described = metadata.topics.get(topic)
    if described is None or described.error is not None and described.error.code() == RdKafkaError.UNKNOWN_TOPIC_OR_PART:
        return None
    if described.error is not None:
        raise KafkaError(f"metadata for topic {topic!r} carries an error: {described.error}")
    return sorted(described.partitions)


def topic_id(clients: KafkaClients, topic: str) -> str | None:
    """The topic's id (a new one when a topic is deleted and created again), or None if it does not exist."""
    futures = clients.admin.describe_topics(TopicCollection([topic]), request_timeout=METADATA_TIMEOUT_S)
    try:
        description = futures[topic].result()
    except KafkaException as exc:
        if exc.args and getattr(exc.args[0], "code", lambda: None)() == RdKafkaError.UNKNOWN_TOPIC_OR_PART:
            return None
        raise BrokerUnreachableError(f"the broker did not describe topic {topic!r}: {exc}") from exc
    return str(description.topic_id)


def watermarks(clients: KafkaClients, topic: str, partition: int) -> tuple[int, int]:
    """ListOffsets' earliest and latest of the partition, asked of the broker (never librdkafka's cache): its log
    start and its high watermark, the end (the offset after the last record a consumer can read now)."""
    try:
        return clients.consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=METADATA_TIMEOUT_S, cached=False)
    except KafkaException as exc:
        raise BrokerUnreachableError(f"could not read the offsets of {topic}[{partition}]: {exc}") from exc


def inspect_topic(clients: KafkaClients, topic: str) -> TopicState:
    partitions = topic_partitions(clients, topic)
    if partitions is None:
        return TopicState(topic, exists=False)
    marks = {p: watermarks(clients, topic, p) for p in partitions}
    return TopicState(
        topic, exists=True, topic_id=topic_id(clients, topic), partitions=tuple(partitions),
        low={p: low for p, (low, _) in marks.items()}, listed_high={p: high for p, (_, high) in marks.items()},
    )
