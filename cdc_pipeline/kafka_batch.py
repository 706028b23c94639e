"""Read one bounded batch of a topic with explicit offsets, and commit it only when told to.

The batch is bounded twice: by a maximum event count, and per partition by the end offset fixed when the
run first reaches that partition, so a run always ends even while Debezium keeps producing. Offsets are
never committed automatically: the caller commits the batch's end offsets after the batch is durable.

Written for Apache Kafka and checked against Tansu, which differs in three ways we must survive:
its ListOffsets "latest" answers the base offset of the last record batch plus one (short of the true
end), so the end is also taken from the high watermark of the first fetch and from the partition EOF
event; and a fetch beyond the log end returns nothing instead of OFFSET_OUT_OF_RANGE.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError as RdKafkaError, KafkaException, Message, TopicPartition

from cdc_pipeline.errors import KafkaError, OffsetOutOfRangeError

log = logging.getLogger(__name__)

METADATA_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class OffsetRange:
    """Offsets ``start`` (first read) to ``end`` (next to read, exclusive) of one partition."""

    partition: int
    start: int
    end: int


@dataclass
class StartPlan:
    """Where each partition starts, and what the planner noticed on the way (for the run history)."""

    starts: dict[int, int]
    notes: list[str] = field(default_factory=list)
    from_timestamp_ms: int | None = None


@dataclass
class ReadResult:
    ranges: dict[int, OffsetRange]
    records_read: int
    complete: bool  # every partition reached its end (False when stopped by max_events or the deadline)


def group_id_for(prefix: str, connector_name: str) -> str:
    """One consumer group per pipeline, so two connectors never share offsets."""
    return f"{prefix}.{connector_name}"


def batch_consumer_config(connection_config: dict, group_id: str) -> dict:
    """The connection's librdkafka settings, with what the pipeline's correctness depends on forced."""
    config = dict(connection_config)
    config.update(
        {
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            # An out-of-range position must surface as an error, never as a silent jump to the
            # beginning or the end of the log.
            "auto.offset.reset": "error",
        }
    )
    return config


def topic_partitions(consumer: Consumer, topic: str, timeout: float = METADATA_TIMEOUT_S) -> list[int] | None:
    """The topic's partitions, or None when it does not exist yet (nothing captured so far)."""
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise KafkaError(
            f"the broker did not answer a metadata request for topic {topic!r} within {timeout:.0f} s "
            f"({exc}). Is it running (locally: ./stack status)? Check the 'cdc_kafka' connection's bootstrap.servers."
        ) from exc
    topic_md = metadata.topics.get(topic)
    if topic_md is None or topic_md.error is not None and topic_md.error.code() == RdKafkaError.UNKNOWN_TOPIC_OR_PART:
        return None
    if topic_md.error is not None:
        raise KafkaError(f"metadata for topic {topic!r} carries an error: {topic_md.error}")
    return sorted(topic_md.partitions)


def watermarks(consumer: Consumer, topic: str, partition: int) -> tuple[int, int]:
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=METADATA_TIMEOUT_S, cached=False)
    except KafkaException as exc:
        raise KafkaError(f"could not read the offsets of {topic}[{partition}]: {exc}") from exc


def committed_offsets(consumer: Consumer, topic: str, partitions: list[int]) -> dict[int, int | None]:
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=METADATA_TIMEOUT_S)
    except KafkaException as exc:
        raise KafkaError(f"could not read the committed offsets of group for {topic}: {exc}") from exc
    return {tp.partition: (None if tp.offset == OFFSET_INVALID or tp.offset < 0 else tp.offset) for tp in committed}


def plan_start(
    consumer: Consumer,
    topic: str,
    partitions: list[int],
    *,
    last_recorded_ends: dict[int, int],
    start_from_ms: int | None,
) -> StartPlan:
    """Start at the group's committed offsets; with none, at ``start_from_ms`` or the beginning.

    ``last_recorded_ends`` are the end offsets the run history last saw committed. A group with no
    committed offsets although the history has some means the broker lost them (Tansu keeps memory
    only) or the group was deleted: the topic is read again from its beginning, which is safe because
    the merge skips every event at or below a key's last applied position.
    """
    committed = committed_offsets(consumer, topic, partitions)
    plan = StartPlan(starts={})
    use_timestamp = start_from_ms is not None and all(c is None for c in committed.values()) and not last_recorded_ends
    if start_from_ms is not None and not use_timestamp:
        plan.notes.append("start_from ignored: the group already has a resume point (reset the pipeline to start from a date)")
    by_time: dict[int, int] = {}
    if use_timestamp:
        plan.from_timestamp_ms = start_from_ms
        by_time = offsets_at_time(consumer, topic, partitions, start_from_ms)
    for p in partitions:
        low, _high = watermarks(consumer, topic, p)
        offset = committed.get(p)
        if offset is None:
            if p in last_recorded_ends:
                plan.notes.append(
                    f"partition {p}: the broker has no committed offset although the run history recorded "
                    f"{last_recorded_ends[p]}: the broker lost its state or the group was reset; re-reading from {low}"
                )
            # The reader also drops events committed before start_from, so the offset is where reading
            # can start, not what decides which events count.
            plan.starts[p] = max(low, by_time[p]) if use_timestamp else low
        elif offset < low:
            raise KafkaError(
                f"partition {p} of {topic}: the committed offset {offset} is below the log start {low}: events "
                f"{offset}..{low - 1} were deleted by retention before being read, so destiny.csv cannot be made "
                "consistent from this topic. Re-snapshot: python -m cdc_pipeline resnapshot --connector <name> (README, Operations)."
            )
        else:
            plan.starts[p] = offset
    return plan


OnRecord = Callable[[Message], None]


def read_range(
    consumer: Consumer,
    topic: str,
    starts: dict[int, int],
    on_record: OnRecord,
    *,
    max_events: int | None,
    fixed_ends: dict[int, int] | None = None,
    max_seconds: float = 120.0,
) -> ReadResult:
    """Read from ``starts`` up to each partition's end, calling ``on_record`` for every record.

    Without ``fixed_ends`` a partition's end is fixed when the run first hears from it: the larger of
    ListOffsets' high watermark and the high watermark of the first fetch, or the EOF offset. With
    ``fixed_ends`` (a retry re-reading what its first try recorded) exactly that range is read, whatever
    ``max_events`` says, and not reaching it is an error.
    """
    partitions = sorted(starts)
    positions = dict(starts)
    ends: dict[int, int] = dict(fixed_ends or {})
    listed_high = {p: watermarks(consumer, topic, p)[1] for p in partitions} if fixed_ends is None else {}
    pending = {p for p in partitions if not (p in ends and positions[p] >= ends[p])}
    count = 0
    limit = None if fixed_ends is not None else max_events
    deadline = time.monotonic() + max_seconds
    if pending:
        consumer.assign([TopicPartition(topic, p, positions[p]) for p in sorted(pending)])
    try:
        while pending and (limit is None or count < limit):
            if time.monotonic() > deadline:
                break
            batch_size = 1000 if limit is None else max(1, min(1000, limit - count))
            for message in consumer.consume(num_messages=batch_size, timeout=1.0):
                p = message.partition()
                error = message.error()
                if error is not None:
                    if error.code() == RdKafkaError._PARTITION_EOF:
                        if p in pending:
                            ends.setdefault(p, max(message.offset(), positions[p]))
                            if message.offset() >= ends[p]:
                                # Everything below the end was delivered; what is left is a gap (compaction,
                                # transaction markers), so the range ends at the end, not at the last record.
                                positions[p] = ends[p]
                                pending.discard(p)
                        continue
                    if error.code() in (RdKafkaError._AUTO_OFFSET_RESET, RdKafkaError.OFFSET_OUT_OF_RANGE):
                        raise OffsetOutOfRangeError(p, positions.get(p, -1), str(error))
                    if error.retriable() or error.code() in (RdKafkaError._TRANSPORT, RdKafkaError._ALL_BROKERS_DOWN):
                        log.warning("transient broker error while reading %s[%s]: %s", topic, p, error)
                        continue
                    raise KafkaError(f"reading {topic}[{p}] failed: {error}")
                if p not in pending:
                    continue
                if p not in ends:
                    fetched_high = consumer.get_watermark_offsets(TopicPartition(topic, p), cached=True)[1]
                    ends[p] = max(listed_high.get(p, 0), fetched_high, message.offset() + 1)
                if message.offset() >= ends[p]:
                    positions[p] = ends[p]  # same reasoning as at EOF: records arrive in offset order
                    pending.discard(p)
                    continue
                on_record(message)
                positions[p] = message.offset() + 1
                count += 1
                if positions[p] >= ends[p]:
                    pending.discard(p)
                if limit is not None and count >= limit:
                    break
    finally:
        consumer.unassign()
    if fixed_ends is not None and pending:
        short = {p: f"{positions[p]} of {ends[p]}" for p in sorted(pending)}
        raise KafkaError(
            f"could not re-read the recorded range of {topic} within {max_seconds:.0f} s (reached {short}); "
            "the broker may have lost those records. See 'Troubleshooting: broker lost its data' in the README."
        )
    ranges = {p: OffsetRange(p, starts[p], positions[p]) for p in partitions}
    return ReadResult(ranges=ranges, records_read=count, complete=not pending)


def commit_offsets(consumer: Consumer, topic: str, ends: dict[int, int]) -> None:
    """Commit synchronously and check every partition's result; never move a partition backwards."""
    if not ends:
        return
    current = committed_offsets(consumer, topic, sorted(ends))
    forward = {p: end for p, end in ends.items() if current.get(p) is None or end > current[p]}
    commit_offsets_exactly(consumer, topic, forward)


def commit_offsets_exactly(consumer: Consumer, topic: str, offsets: dict[int, int]) -> None:
    """Commit these offsets synchronously, even backwards (an operator's reset), and check each result."""
    if not offsets:
        return
    try:
        results = consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in sorted(offsets.items())], asynchronous=False)
    except KafkaException as exc:
        raise KafkaError(f"committing offsets {offsets} of {topic} failed: {exc}. The batch is kept; the retry commits it.") from exc
    failed = [f"{tp.partition}: {tp.error}" for tp in results or [] if tp.error is not None]
    if failed:
        raise KafkaError(f"the broker refused the commit of {topic} for partitions {failed}. The retry commits it again.")


def offsets_at_time(consumer: Consumer, topic: str, partitions: list[int], timestamp_ms: int) -> dict[int, int]:
    """Per partition, the first offset whose record is at or after ``timestamp_ms`` (the end if none).

    Apache Kafka answers -1 when every record is older; Tansu answers 0. The record at the answered
    offset is read to tell the two apart, and in the second case the partition is read to its end.
    """
    try:
        found = consumer.offsets_for_times([TopicPartition(topic, p, timestamp_ms) for p in partitions], timeout=METADATA_TIMEOUT_S)
    except KafkaException as exc:
        raise KafkaError(f"offsets_for_times on {topic} failed: {exc}") from exc
    targets: dict[int, int] = {}
    for tp in found:
        if tp.offset < 0:
            targets[tp.partition] = watermarks(consumer, topic, tp.partition)[1]
            continue
        first: list[Message] = []
        result = read_range(consumer, topic, {tp.partition: tp.offset}, first.append, max_events=1, max_seconds=15)
        kind, ts = first[0].timestamp() if first else (0, 0)
        if first and kind and ts < timestamp_ms:
            end = read_range(consumer, topic, {tp.partition: tp.offset}, lambda m: None, max_events=None, max_seconds=300)
            targets[tp.partition] = end.ranges[tp.partition].end
        else:
            targets[tp.partition] = tp.offset if first or not result.complete else result.ranges[tp.partition].end
    return targets
