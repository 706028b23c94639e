"""Read one bounded batch of a topic with explicit offsets; never commit.

The batch is bounded twice: by a maximum event count, and per partition by its end, the high watermark
ListOffsets answers when the read starts, so a run always ends even while Debezium keeps producing. A record
is accounted for inline in ``read_range``'s loop; every other message (end of partition, errors) by
``_PartitionRead.take_event``, case by case.
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
    end: int  # the high watermark ListOffsets answered when the read started

    @property
    def done(self) -> bool:
        return self.position >= self.end

    def take_event(self, message: Message) -> None:
        """Account for one message of this partition that is not a record (``message.error()`` is set).

        The cases, in order:
        - end of partition at or past the end: everything below it was delivered, so what is left below the
          end is a gap (compaction, transaction markers) and the range ends at the end; an end of partition
          below the end (the last stable offset under an open transaction) leaves the range open;
        - out of range: the position is gone (topic recreated, broker lost its data, retention);
        - a transient broker error: keep polling;
        - any other error: fail.
        """
        error = message.error()
        code = error.code()
        if code == RdKafkaError._PARTITION_EOF:
            if message.offset() >= self.end:
                self.position = self.end
            return
        if code in _OUT_OF_RANGE:
            raise OffsetOutOfRangeError(self.partition, self.position, str(error))
        if error.retriable() or code in _TRANSIENT:
            log.warning("transient broker error while reading partition %s: %s", self.partition, error)
            return
        raise KafkaError(f"reading partition {self.partition} failed: {error}")


def read_range(
    clients: KafkaClients,
    topic: str,
    starts: dict[int, int],
    on_record: OnRecord,
    *,
    max_events: int | None,
    max_seconds: float = 120.0,
) -> ReadResult:
    """Read from ``starts`` up to each partition's end, calling ``on_record`` for every record.

    A partition whose start is its end is done without being fetched, and when every partition is, nothing is
    assigned. A start beyond the end is out of range (Apache Kafka answers a fetch there OFFSET_OUT_OF_RANGE).
    """
    consumer = clients.consumer
    reads = {p: _PartitionRead(p, start, start, watermarks(clients, topic, p)[1]) for p, start in starts.items()}
    for read in reads.values():
        if read.start > read.end:
            raise OffsetOutOfRangeError(read.partition, read.start, f"the log ends at {read.end}")
    count = 0
    deadline = time.monotonic() + max_seconds
    pending = [TopicPartition(topic, p, r.start) for p, r in sorted(reads.items()) if not r.done]
    if not pending:
        return _result(reads, count)
    consumer.assign(pending)
    try:
        while _pending(reads) and (max_events is None or count < max_events) and time.monotonic() < deadline:
            wanted = 1000 if max_events is None else max(1, min(1000, max_events - count))
            for message in consumer.consume(num_messages=wanted, timeout=_CONSUME_WAIT_S):
                read = reads.get(message.partition())
                if read is None or read.done:
                    continue
                if message.error() is not None:
                    read.take_event(message)
                    continue
                # A record: the common case, inline (tens of thousands a second). Records arrive in offset order,
                # so one at or past the end (produced after ListOffsets answered) ends the range at the end.
                offset = message.offset()
                if offset >= read.end:
                    read.position = read.end
                    continue
                read.position = offset + 1
                on_record(message)
                count += 1
                if max_events is not None and count >= max_events:
                    break
    finally:
        consumer.unassign()
    return _result(reads, count)


def _result(reads: dict[int, _PartitionRead], count: int) -> ReadResult:
    ranges = {p: OffsetRange(p, r.start, r.position) for p, r in sorted(reads.items())}
    return ReadResult(ranges=ranges, records_read=count, complete=not _pending(reads))


def _pending(reads: dict[int, _PartitionRead]) -> bool:
    return any(not read.done for read in reads.values())
