"""The consumer group's committed offsets, and where a moment in time falls in a topic."""

from __future__ import annotations

from confluent_kafka import OFFSET_INVALID, KafkaException, TopicPartition

from cdc_pipeline.errors import BrokerUnreachableError, KafkaError
from cdc_pipeline.kafka.client import METADATA_TIMEOUT_S, KafkaClients
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

    Apache Kafka answers -1 when every record is older: the answer is then the partition's high watermark.
    """
    try:
        found = clients.consumer.offsets_for_times([TopicPartition(topic, p, timestamp_ms) for p in partitions],
                                                   timeout=METADATA_TIMEOUT_S)
    except KafkaException as exc:
        raise KafkaError(f"offsets_for_times on {topic} failed: {exc}") from exc
    failed = [f"{tp.partition}: {tp.error}" for tp in found if tp.error is not None]
    if failed:
        raise KafkaError(f"offsets_for_times on {topic} failed for partitions {failed}")
    return {tp.partition: watermarks(clients, topic, tp.partition)[1] if tp.offset < 0 else tp.offset for tp in found}


def group_offsets(clients: KafkaClients, topics: tuple[str, ...] | list[str]) -> dict[str, dict[int, int]]:
    """The pipeline's consumer group's committed offsets on ``topics`` (topic → partition → offset): what Kafka
    remembers of the pipeline having read, wherever its files are."""
    from confluent_kafka import ConsumerGroupTopicPartitions

    request = [ConsumerGroupTopicPartitions(clients.group_id)]
    try:
        answer = clients.admin.list_consumer_group_offsets(request, request_timeout=METADATA_TIMEOUT_S)
        found = answer[clients.group_id].result()
    except KafkaException as exc:
        raise BrokerUnreachableError(f"could not read group {clients.group_id}'s committed offsets: {exc}") from exc
    wanted = set(topics)
    offsets: dict[str, dict[int, int]] = {}
    for tp in found.topic_partitions or []:
        if tp.topic in wanted and tp.offset >= 0:
            offsets.setdefault(tp.topic, {})[tp.partition] = tp.offset
    return offsets


def delete_group(clients: KafkaClients, topics: tuple[str, ...] | list[str]) -> dict[str, dict[int, int]]:
    """Forget the pipeline's consumer group, with every offset it committed (it has no members: the pipeline
    assigns partitions itself, and the group is the pipeline's own). Answers what it had committed on ``topics``."""
    offsets = group_offsets(clients, topics)
    try:
        clients.admin.delete_consumer_groups([clients.group_id], request_timeout=METADATA_TIMEOUT_S)[
            clients.group_id].result()
    except KafkaException as exc:
        if "GROUP_ID_NOT_FOUND" not in str(exc):
            raise KafkaError(f"could not delete consumer group {clients.group_id}: {exc}. Is a consumer of it "
                             "running? Pause the connector's DAGs and try again") from exc
    return offsets
