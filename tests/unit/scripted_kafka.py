"""A scripted stand-in for confluent_kafka.Consumer, for the unit tests of cdc_pipeline.kafka.

Each partition is a ``Log``: the offsets it holds (with their Kafka timestamps), where it starts and ends, what
ListOffsets says its high watermark is, and errors to deliver when the read reaches an offset. The broker answers
as Apache Kafka does: ListOffsets "latest" is the log end (the high watermark) unless a test says otherwise,
offsets_for_times answers -1 for a timestamp later than every record. ``ScriptedConsumer.consume`` plays that log
from the assigned offsets the way librdkafka does with ``enable.partition.eof`` and ``auto.offset.reset=error``:
records in offset order skipping missing offsets, one end-of-partition event at the log end, an
_AUTO_OFFSET_RESET error (the broker's OFFSET_OUT_OF_RANGE) for a position below the log start or beyond its end.
Partitions are interleaved one message at a time, in partition order, and a call never returns more than
``num_messages``. The consumer has only the methods the pipeline calls; ``calls`` records them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from confluent_kafka import (
    OFFSET_INVALID, TIMESTAMP_CREATE_TIME, TIMESTAMP_NOT_AVAILABLE, KafkaError as RdKafkaError, KafkaException,
    TopicPartition,
)

TOPIC = "pg.public.t"


class FakeClock:
    """time.monotonic for the reader: it moves only when a consume call waits in vain."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@dataclass
class Log:
    records: dict[int, int | None]  # offset -> Kafka timestamp (ms), None: the record has none
    end: int  # the log end: where end-of-partition is reported
    start: int = 0  # the log start (retention): a position below it is out of range
    # ListOffsets' "latest"; default: end. Below end: records produced after ListOffsets answered; above end: the
    # log ends below that answer (an end of partition at the last stable offset, or a log truncated since).
    listed_high: int | None = None
    errors: dict[int, list[RdKafkaError]] = field(default_factory=dict)  # position -> errors delivered there, once
    silent: bool = False  # the broker never answers a fetch of this partition


def log(offsets, end: int | None = None, *, ts: dict[int, int] | None = None, **kw) -> Log:
    """A partition holding ``offsets`` (timestamps 1000 * (offset + 1) unless given), ending at ``end``."""
    offsets, ts = list(offsets), ts or {}
    end = (max(offsets) + 1 if offsets else 0) if end is None else end
    return Log({o: ts[o] if o in ts else 1000 * (o + 1) for o in offsets}, end, **kw)


class FakeMessage:
    """Shaped like confluent_kafka.Message."""

    def __init__(self, topic, partition, offset, *, error=None, timestamp=None):  # timestamp None: not available
        self._topic, self._partition, self._offset = topic, partition, offset
        self._error, self._timestamp = error, timestamp

    def topic(self):
        return self._topic

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset

    def key(self):
        return None if self._error else f"k{self._offset}".encode()

    def value(self):
        return None if self._error else f"{self._partition}@{self._offset}".encode()

    def error(self):
        return self._error

    def timestamp(self):
        return (TIMESTAMP_NOT_AVAILABLE, -1) if self._timestamp is None else (TIMESTAMP_CREATE_TIME, self._timestamp)

    def __repr__(self):
        return f"FakeMessage({self._partition}@{self._offset}, error={self._error})"


def unreachable() -> KafkaException:
    return KafkaException(RdKafkaError(RdKafkaError._TIMED_OUT, "Local: Timed out"))


class ScriptedConsumer:
    def __init__(self, logs: dict[int, Log], *, topic: str = TOPIC, clock: FakeClock | None = None,
                 global_errors=(), committed: dict[int, int] | None = None, commit_raises: Exception | None = None,
                 commit_refused: dict[int, RdKafkaError] | None = None, raises: Exception | None = None):
        self.logs, self.topic = logs, topic
        self.clock = clock or FakeClock()
        self.global_errors = list(global_errors)  # delivered by the first consume call, with partition -1
        self.committed_offsets = committed or {}
        self.commit_raises, self.commit_refused = commit_raises, commit_refused or {}
        self.raises = raises  # raised by get_watermark_offsets, offsets_for_times, list_topics and committed
        self.pending_errors = {p: {o: list(errs) for o, errs in lg.errors.items()} for p, lg in logs.items()}
        self.calls: list[tuple] = []
        self.delivered: list[FakeMessage] = []
        self._positions: dict[int, int] = {}
        self._at_eof: set[int] = set()
        self._stopped: set[int] = set()

    # -- the Consumer methods the pipeline calls --

    def assign(self, partitions):
        self.calls.append(("assign", [(tp.topic, tp.partition, tp.offset) for tp in partitions]))
        assert all(tp.topic == self.topic and tp.offset >= 0 for tp in partitions), partitions
        self._positions = {tp.partition: tp.offset for tp in partitions}
        self._at_eof, self._stopped = set(), set()

    def unassign(self):
        self.calls.append(("unassign",))
        self._positions = {}

    def consume(self, num_messages=1, timeout=-1):
        self.calls.append(("consume", num_messages))
        out = []
        while self.global_errors and len(out) < num_messages:
            out.append(FakeMessage(None, -1, OFFSET_INVALID, error=self.global_errors.pop(0)))
        progressed = True
        while progressed and len(out) < num_messages:
            progressed = False
            for partition in sorted(self._positions):
                message = self._next(partition) if len(out) < num_messages else None
                if message is not None:
                    out.append(message)
                    progressed = True
        if not out:
            self.clock.now += timeout  # consume waits its whole timeout when nothing comes
        self.delivered.extend(out)
        return out

    def get_watermark_offsets(self, partition, timeout=None, cached=False):
        assert not cached, "the pipeline asks the broker (ListOffsets), never librdkafka's cache"
        self.calls.append(("list_offsets", partition.partition))
        if self.raises is not None:
            raise self.raises
        lg = self.logs[partition.partition]
        return lg.start, lg.end if lg.listed_high is None else lg.listed_high

    def offsets_for_times(self, partitions, timeout=None):
        self.calls.append(("offsets_for_times", [(tp.topic, tp.partition, tp.offset) for tp in partitions]))
        if self.raises is not None:
            raise self.raises
        answer = []
        for tp in partitions:
            records = sorted(self.logs[tp.partition].records.items())
            at_or_after = [o for o, ts in records if ts is not None and ts >= tp.offset]
            answer.append(TopicPartition(tp.topic, tp.partition, at_or_after[0] if at_or_after else -1))
        return answer

    def list_topics(self, topic=None, timeout=None):
        if self.raises is not None:
            raise self.raises
        described = SimpleNamespace(error=None, partitions={p: SimpleNamespace(id=p) for p in self.logs})
        return SimpleNamespace(topics={self.topic: described} if self.logs else {})

    def commit(self, message=None, offsets=None, asynchronous=True):
        self.calls.append(("commit", [(tp.topic, tp.partition, tp.offset) for tp in offsets], asynchronous))
        if self.commit_raises is not None:
            raise self.commit_raises
        return [SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=tp.offset,
                                error=self.commit_refused.get(tp.partition)) for tp in offsets]

    def committed(self, partitions, timeout=None):
        if self.raises is not None:
            raise self.raises
        return [TopicPartition(tp.topic, tp.partition, self.committed_offsets.get(tp.partition, OFFSET_INVALID))
                for tp in partitions]

    # -- the broker's side --

    def _next(self, partition: int) -> FakeMessage | None:
        lg, position = self.logs[partition], self._positions[partition]
        if lg.silent or partition in self._stopped:
            return None
        errors = self.pending_errors[partition].get(position)
        if errors:
            return FakeMessage(self.topic, partition, position, error=errors.pop(0))
        if position < lg.start or position > lg.end:
            self._stopped.add(partition)  # auto.offset.reset=error: reported once, then the partition stops
            return FakeMessage(self.topic, partition, position, error=RdKafkaError(
                RdKafkaError._AUTO_OFFSET_RESET, "fetch failed due to requested offset not available on the broker"))
        following = [o for o in sorted(lg.records) if position <= o < lg.end]
        if following:
            offset = following[0]
            self._positions[partition] = offset + 1
            self._at_eof.discard(partition)
            return FakeMessage(self.topic, partition, offset, timestamp=lg.records[offset])
        self._positions[partition] = lg.end  # what is left below the end are gaps: the fetch moves past them
        if partition in self._at_eof:
            return None
        self._at_eof.add(partition)
        return FakeMessage(self.topic, partition, lg.end, error=RdKafkaError(RdKafkaError._PARTITION_EOF))


class ScriptedAdmin:
    """describe_topics of confluent_kafka's AdminClient: the topic's id."""

    def __init__(self, topic: str, topic_id: str) -> None:
        self.topic, self.topic_id = topic, topic_id

    def describe_topics(self, topics, request_timeout=None):
        return {self.topic: SimpleNamespace(result=lambda: SimpleNamespace(topic_id=self.topic_id))}


def clients_for(consumer: ScriptedConsumer, topic_id: str = "scripted-topic-id") -> SimpleNamespace:
    """What cdc_pipeline.kafka uses of KafkaClients."""
    return SimpleNamespace(consumer=consumer, admin=ScriptedAdmin(consumer.topic, topic_id), group_id="cdc-csv.t")
