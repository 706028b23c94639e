"""Read one bounded batch of a topic with explicit offsets; never commit.

The batch is bounded twice: by a maximum event count, and per partition by an end offset fixed when the
run first hears from that partition, so a run always ends even while Debezium keeps producing. What a
message means for its partition is decided by ``_PartitionRead.take`` in one place, case by case.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import KafkaError as RdKafkaError, Message, TopicPartition

from cdc_pipeline.errors import KafkaError, OffsetOutOfRangeError
from cdc_pipeline.kafka.client import KafkaClients
from cdc_pipeline.kafka.topic import watermarks

log = logging.getLogger(__name__)

OnRecord = Callable[[Message], None]
# consume() returns when it has the count asked for or when this much time has passed: the last call of every
# batch asks for more than is left, so this wait is paid once per run (a whole second per run at 1.0).
_CONSUME_WAIT_S = 0.1
_OUT_OF_RANGE = (RdKafkaError._AUTO_OFFSET_RESET, RdKafkaError.OFFSET_OUT_OF_RANGE)
_TRANSIENT = (RdKafkaError._TRANSPORT, RdKafkaError._ALL_BROKERS_DOWN)


@dataclass(frozen=True)
class OffsetRange:
    """Offsets ``start`` (first read) to ``end`` (next to read, exclusive) of one partition."""

    partition: int
    start: int
    end: int


@dataclass
class ReadResult:
    ranges: dict[int, OffsetRange]
    records_read: int
    complete: bool  # every partition reached its end (False when stopped by max_events or the deadline)


@dataclass
class _PartitionRead:
    partition: int
    start: int
    position: int
    listed_high: int
    end: int | None = None  # fixed on the first message or end-of-partition event

    @property
    def done(self) -> bool:
        return self.end is not None and self.position >= self.end

    def take(self, message: Message, fetched_high: Callable[[], int]) -> bool:
        """Account for one message of this partition; True when it is a record to deliver.

        The cases, in order:
        - end of partition: the end is where the broker says the log ends; everything below it was
          delivered, so what is left is a gap (compaction, transaction markers) and the range ends there;
        - out of range: the position is gone (topic recreated, broker lost its data, retention);
        - a transient broker error: keep polling;
        - any other error: fail;
        - a record at or past the end: the range ends at the end (records arrive in offset order);
        - a record below the end: deliver it.
        The end is the larger of ListOffsets' high watermark, the high watermark the first fetch carried
        (right on Tansu, whose ListOffsets answers short) and the first record's offset + 1.
        """
        error = message.error()
        if error is not None:
            code = error.code()
            if code == RdKafkaError._PARTITION_EOF:
                if self.end is None:
                    self.end = max(message.offset(), self.position)
                if message.offset() >= self.end:
                    self.position = self.end
                return False
            if code in _OUT_OF_RANGE:
                raise OffsetOutOfRangeError(self.partition, self.position, str(error))
            if error.retriable() or code in _TRANSIENT:
                log.warning("transient broker error while reading partition %s: %s", self.partition, error)
                return False
            raise KafkaError(f"reading partition {self.partition} failed: {error}")
        if self.end is None:
            self.end = max(self.listed_high, fetched_high(), message.offset() + 1)
        if message.offset() >= self.end:
            self.position = self.end
            return False
        self.position = message.offset() + 1
        return True


def read_range(
    clients: KafkaClients,
    topic: str,
    starts: dict[int, int],
    on_record: OnRecord,
    *,
    max_events: int | None,
    max_seconds: float = 120.0,
) -> ReadResult:
    """Read from ``starts`` up to each partition's end, calling ``on_record`` for every record."""
    consumer = clients.consumer
    reads = {p: _PartitionRead(p, start, start, watermarks(clients, topic, p)[1]) for p, start in starts.items()}
    count = 0
    deadline = time.monotonic() + max_seconds
    if reads:
        consumer.assign([TopicPartition(topic, p, start) for p, start in sorted(starts.items())])
    try:
        while _pending(reads) and (max_events is None or count < max_events) and time.monotonic() < deadline:
            wanted = 1000 if max_events is None else max(1, min(1000, max_events - count))
            for message in consumer.consume(num_messages=wanted, timeout=_CONSUME_WAIT_S):
                read = reads.get(message.partition())
                if read is None:
                    continue
                end = read.end
                if end is not None and message.error() is None:
                    # The common case, inline (tens of thousands a second): a record of a partition whose end
                    # is fixed; take() below handles every case and gives the same answer for this one.
                    offset = message.offset()
                    if read.position >= end or offset >= end:
                        read.position = max(read.position, end)
                        continue
                    read.position = offset + 1
                elif read.done or not read.take(message, _fetched_high(consumer, topic, message.partition())):
                    continue
                on_record(message)
                count += 1
                if max_events is not None and count >= max_events:
                    break
    finally:
        consumer.unassign()
    ranges = {p: OffsetRange(p, r.start, r.position) for p, r in sorted(reads.items())}
    return ReadResult(ranges=ranges, records_read=count, complete=not _pending(reads))


def _fetched_high(consumer, topic: str, partition: int) -> Callable[[], int]:
    """The high watermark the last fetch of this partition carried (right on Tansu, unlike ListOffsets)."""
    return lambda: consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)[1]


def _pending(reads: dict[int, _PartitionRead]) -> bool:
    return any(not read.done for read in reads.values())


def read_to_end(clients: KafkaClients, topic: str, starts: dict[int, int], *, max_seconds: float = 300.0) -> dict[int, int]:
    """Each partition's true end offset, found by reading through from ``starts`` (Tansu-proof)."""
    result = read_range(clients, topic, starts, lambda message: None, max_events=None, max_seconds=max_seconds)
    if not result.complete:
        raise KafkaError(f"could not read {topic} to its end within {max_seconds:.0f} s; see the broker's log")
    return {p: r.end for p, r in result.ranges.items()}
