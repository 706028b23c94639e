"""The consumer group's committed offsets, and where a moment in time falls in a topic."""

from __future__ import annotations

from confluent_kafka import OFFSET_INVALID, KafkaException, Message, TopicPartition

from cdc_pipeline.errors import BrokerUnreachableError, KafkaError
from cdc_pipeline.kafka.client import METADATA_TIMEOUT_S, KafkaClients
from cdc_pipeline.kafka.reader import read_range, read_to_end
from cdc_pipeline.kafka.topic import watermarks


def committed_offsets(clients: KafkaClients, topic: str, partitions: list[int]) -> dict[int, int | None]:
    try:
        committed = clients.consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=METADATA_TIMEOUT_S)
    except KafkaException as exc:
        raise BrokerUnreachableError(f"could not read group {clients.group_id}'s committed offsets on {topic}: {exc}") from exc
    return {tp.partition: (None if tp.offset == OFFSET_INVALID or tp.offset < 0 else tp.offset) for tp in committed}


def commit_offsets(clients: KafkaClients, topic: str, offsets: dict[int, int]) -> None:
    """Commit exactly these offsets (the run history decides them, forwards or, after a reset, backwards),
    synchronously, and check every partition's result."""
    if not offsets:
        return
    partitions = [TopicPartition(topic, p, o) for p, o in sorted(offsets.items())]
    try:
        results = clients.consumer.commit(offsets=partitions, asynchronous=False)
    except KafkaException as exc:
        raise KafkaError(f"committing offsets {offsets} of {topic} failed: {exc}. The batch is kept; the retry commits it.") from exc
    failed = [f"{tp.partition}: {tp.error}" for tp in results or [] if tp.error is not None]
    if failed:
        raise KafkaError(f"the broker refused the commit of {topic} for partitions {failed}. The retry commits it again.")


def offsets_at_time(clients: KafkaClients, topic: str, partitions: list[int], timestamp_ms: int) -> dict[int, int]:
    """Per partition, the first offset whose record's Kafka timestamp is at or after ``timestamp_ms``
    (the end if none is). Records are produced after they are committed at the source, so no change
    committed at or after that moment lies below the answer.

    Apache Kafka answers -1 when every record is older; Tansu answers 0. The record at the answered offset
    is read to tell the two apart; in the second case the answer is the partition's end.
    """
    try:
        found = clients.consumer.offsets_for_times([TopicPartition(topic, p, timestamp_ms) for p in partitions],
                                                   timeout=METADATA_TIMEOUT_S)
    except KafkaException as exc:
        raise KafkaError(f"offsets_for_times on {topic} failed: {exc}") from exc
    targets: dict[int, int] = {}
    for tp in found:
        if tp.offset < 0:  # Apache Kafka: every record is older
            targets[tp.partition] = watermarks(clients, topic, tp.partition)[1]
            continue
        first: list[Message] = []
        read_range(clients, topic, {tp.partition: tp.offset}, first.append, max_events=1, max_seconds=15)
        kind, ts = first[0].timestamp() if first else (0, 0)
        if first and kind and ts < timestamp_ms:  # Tansu's 0 for "every record is older"
            targets[tp.partition] = read_to_end(clients, topic, {tp.partition: tp.offset})[tp.partition]
        else:
            targets[tp.partition] = tp.offset
    return targets
