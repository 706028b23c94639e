"""The Kafka edge cases of the bounded reader and of the offset helpers, against a scripted consumer
(tests/unit/scripted_kafka.py), which answers as Apache Kafka does: ends, gaps, end-of-partition events, batch
limits, broker errors, out of range, and the status command's backlog."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError as RdKafkaError, KafkaException, TopicPartition

from cdc_pipeline.errors import BrokerUnreachableError, KafkaError, OffsetOutOfRangeError
from cdc_pipeline.kafka import reader
from cdc_pipeline.kafka.offsets import commit_offsets, committed_offsets, offsets_at_time
from cdc_pipeline.kafka.reader import OffsetRange, ReadResult, read_range
from cdc_pipeline.commands.status import Backlog, kafka_backlog
from tests.unit.scripted_kafka import TOPIC, FakeClock, ScriptedConsumer, clients_for, log, unreachable


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    """The reader's deadline runs on the consumer's clock, which moves only when a consume call waits in vain."""
    fake = FakeClock()
    monkeypatch.setattr(reader, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


@pytest.fixture
def kafka(clock):
    def make(logs, **kw) -> ScriptedConsumer:
        return ScriptedConsumer(logs, clock=clock, **kw)
    return make


def read(consumer, starts, *, max_events=None, max_seconds=120.0):
    got: list[tuple[int, int]] = []

    def on_record(message):
        assert message.error() is None and message.value() == f"{message.partition()}@{message.offset()}".encode()
        got.append((message.partition(), message.offset()))

    result = read_range(clients_for(consumer), TOPIC, starts, on_record, max_events=max_events, max_seconds=max_seconds)
    return result, got


def consume_sizes(consumer) -> list[int]:
    return [call[1] for call in consumer.calls if call[0] == "consume"]


def fetches(consumer) -> list[tuple]:
    """The calls that fetch: assign, consume, unassign."""
    return [call for call in consumer.calls if call[0] in ("assign", "consume", "unassign")]


def ranges(**by_partition) -> dict[int, OffsetRange]:
    return {int(p[1:]): OffsetRange(int(p[1:]), start, end) for p, (start, end) in by_partition.items()}


# -- read_range: to the end --

def test_reads_every_record_from_the_given_starts_to_each_partitions_end(kafka):
    consumer = kafka({0: log(range(5)), 1: log(range(3))})
    result, got = read(consumer, {1: 0, 0: 2})
    assert consumer.calls[:2] == [("list_offsets", 1), ("list_offsets", 0)]  # each end is asked before the read
    assert consumer.calls[2] == ("assign", [(TOPIC, 0, 2), (TOPIC, 1, 0)])
    assert consumer.calls[-1] == ("unassign",)
    assert [o for p, o in got if p == 0] == [2, 3, 4] and [o for p, o in got if p == 1] == [0, 1, 2]
    assert result == ReadResult(ranges(p0=(2, 5), p1=(0, 3)), records_read=6, complete=True)


def test_a_gap_inside_the_range_is_skipped_and_the_range_stays_contiguous(kafka):
    consumer = kafka({0: log([0, 1, 4, 7], end=8)})  # 2, 3, 5, 6 compacted away
    result, got = read(consumer, {0: 0})
    assert got == [(0, 0), (0, 1), (0, 4), (0, 7)]
    assert result == ReadResult(ranges(p0=(0, 8)), records_read=4, complete=True)


def test_a_gap_at_the_tail_ends_the_range_at_the_end_of_partition_offset(kafka):
    consumer = kafka({0: log([0, 1, 2], end=6)})  # 3..5 are transaction markers
    result, got = read(consumer, {0: 0})
    assert got == [(0, 0), (0, 1), (0, 2)]
    assert result == ReadResult(ranges(p0=(0, 6)), records_read=3, complete=True)


def test_a_range_of_markers_only_is_read_through_to_the_end_of_partition_event(kafka):
    consumer = kafka({0: log([0, 1, 2], end=6)})  # 3..5 are markers: no record, only the end event closes it
    result, got = read(consumer, {0: 3})
    assert consumer.delivered[-1].error().code() == RdKafkaError._PARTITION_EOF
    assert got == []
    assert result == ReadResult(ranges(p0=(3, 6)), records_read=0, complete=True)


def test_a_partition_already_at_its_end_reads_nothing_and_counts_as_complete(kafka):
    consumer = kafka({0: log(range(5)), 1: log(range(4))})
    result, got = read(consumer, {0: 5, 1: 2})
    assert got == [(1, 2), (1, 3)]
    assert result == ReadResult(ranges(p0=(5, 5), p1=(2, 4)), records_read=2, complete=True)
    assert fetches(consumer)[0] == ("assign", [(TOPIC, 1, 2)])  # partition 0 is not fetched


def test_when_every_partition_starts_at_its_end_nothing_is_fetched(kafka):
    # partition 1's records came after ListOffsets answered 0: the next run's
    consumer = kafka({0: log(range(5)), 1: log(range(2), listed_high=0), 2: log([], end=0)})
    result, got = read(consumer, {0: 5, 1: 0, 2: 0})
    assert (result, got) == (ReadResult(ranges(p0=(5, 5), p1=(0, 0), p2=(0, 0)), records_read=0, complete=True), [])
    assert fetches(consumer) == []


def test_records_produced_after_the_end_was_fixed_are_left_for_the_next_run(kafka):
    # partition 0: 3..5 arrived after ListOffsets answered 3; partition 1: 2 and 3 are transaction markers, so the
    # first record after 1 is 4, produced after ListOffsets answered 4
    consumer = kafka({0: log(range(6), listed_high=3), 1: log([0, 1, 4, 5], end=6, listed_high=4)})
    result, got = read(consumer, {0: 0, 1: 0})
    assert {(m.partition(), m.offset()) for m in consumer.delivered} >= {(0, 4), (1, 4)}  # the consumer handed them over
    assert got == [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2)]
    assert result == ReadResult(ranges(p0=(0, 3), p1=(0, 4)), records_read=5, complete=True)


def test_an_end_event_short_of_the_fixed_end_does_not_close_the_range(kafka):
    # read_committed: the end event comes at the last stable offset (3), below the high watermark (6) that fixed
    # the end while a transaction is open; the range must not claim 3..5 as read
    consumer = kafka({0: log(range(3), end=3, listed_high=6)})
    result, got = read(consumer, {0: 0}, max_seconds=1.0)
    assert got == [(0, 0), (0, 1), (0, 2)]
    assert result == ReadResult(ranges(p0=(0, 3)), records_read=3, complete=False)


def test_no_partitions_reads_nothing_and_assigns_nothing(kafka):
    consumer = kafka({})
    result, got = read(consumer, {})
    assert (result, got) == (ReadResult({}, records_read=0, complete=True), [])
    assert [c for c in consumer.calls if c[0] in ("assign", "consume")] == []


def test_a_partition_that_never_answers_leaves_the_batch_incomplete_at_the_deadline(kafka, clock):
    consumer = kafka({0: log(range(3)), 1: log(range(3), silent=True)})
    started = clock.now
    result, got = read(consumer, {0: 0, 1: 1}, max_seconds=2.0)
    assert got == [(0, 0), (0, 1), (0, 2)]
    assert result == ReadResult(ranges(p0=(0, 3), p1=(1, 1)), records_read=3, complete=False)
    assert 2.0 <= clock.now - started < 2.2 and consumer.calls[-1] == ("unassign",)


def test_an_unreachable_broker_at_list_offsets_raises_before_assigning(kafka):
    consumer = kafka({0: log(range(3))}, raises=unreachable())
    with pytest.raises(BrokerUnreachableError, match=r"offsets of pg\.public\.t\[0\]"):
        read(consumer, {0: 0})
    assert consumer.calls == [("list_offsets", 0)]


# -- read_range: max_events --

def test_max_events_stops_exactly_and_reports_the_range_read_per_partition(kafka):
    consumer = kafka({0: log(range(20)), 1: log(range(10))})
    result, got = read(consumer, {0: 10, 1: 0}, max_events=5)
    assert got == [(0, 10), (1, 0), (0, 11), (1, 1), (0, 12)]
    assert result == ReadResult(ranges(p0=(10, 13), p1=(0, 2)), records_read=5, complete=False)
    assert consume_sizes(consumer) == [5]
    # the next run, from where this one stopped, reads the rest: nothing lost, nothing twice
    rest, got_rest = read(consumer, {p: r.end for p, r in result.ranges.items()})
    assert sorted(got + got_rest) == [(0, o) for o in range(10, 20)] + [(1, o) for o in range(10)]
    assert rest.ranges == ranges(p0=(13, 20), p1=(2, 10)) and rest.complete


def test_end_of_partition_events_do_not_count_toward_max_events(kafka):
    consumer = kafka({0: log([0]), 1: log(range(5))})
    result, got = read(consumer, {0: 0, 1: 0}, max_events=3)
    assert got == [(0, 0), (1, 0), (1, 1)]
    assert consume_sizes(consumer) == [3, 1]  # the first batch carried partition 0's end event
    assert result == ReadResult(ranges(p0=(0, 1), p1=(0, 2)), records_read=3, complete=False)


def test_max_events_reached_on_the_last_record_is_complete(kafka):
    consumer = kafka({0: log(range(3))})
    result, got = read(consumer, {0: 0}, max_events=3)
    assert len(got) == 3 and result == ReadResult(ranges(p0=(0, 3)), records_read=3, complete=True)


# -- read_range: broker errors --

@pytest.mark.parametrize("error", [
    RdKafkaError(RdKafkaError._TRANSPORT),  # not flagged retriable: _TRANSIENT lists it
    RdKafkaError(RdKafkaError._ALL_BROKERS_DOWN),
    RdKafkaError(RdKafkaError.REQUEST_TIMED_OUT, retriable=True),
    RdKafkaError(RdKafkaError.NOT_LEADER_FOR_PARTITION, retriable=True),
], ids=lambda e: e.name())
def test_a_transient_error_is_logged_and_reading_goes_on(kafka, caplog, error):
    consumer = kafka({0: log(range(3), errors={1: [error, error]})})
    result, got = read(consumer, {0: 0})
    assert got == [(0, 0), (0, 1), (0, 2)]
    assert result == ReadResult(ranges(p0=(0, 3)), records_read=3, complete=True)
    assert sum("transient broker error while reading partition 0" in r.getMessage() for r in caplog.records) == 2


def test_an_error_of_no_partition_of_the_read_is_ignored(kafka):
    consumer = kafka({0: log(range(2))}, global_errors=[RdKafkaError(RdKafkaError._ALL_BROKERS_DOWN)])
    result, got = read(consumer, {0: 0})
    assert consumer.delivered[0].partition() == -1
    assert got == [(0, 0), (0, 1)] and result.ranges == ranges(p0=(0, 2)) and result.complete


@pytest.mark.parametrize("error", [
    RdKafkaError(RdKafkaError.TOPIC_AUTHORIZATION_FAILED),
    RdKafkaError(RdKafkaError.INVALID_MSG),
    RdKafkaError(RdKafkaError._FATAL, "fenced", fatal=True),
], ids=lambda e: e.name())
def test_a_non_retriable_error_fails_the_read_naming_the_partition(kafka, error):
    consumer = kafka({0: log(range(3)), 1: log(range(3), errors={2: [error]})})
    got: list[int] = []
    with pytest.raises(KafkaError, match="reading partition 1 failed") as raised:
        read_range(clients_for(consumer), TOPIC, {0: 0, 1: 0}, lambda m: got.append((m.partition(), m.offset())),
                   max_events=None)
    assert not isinstance(raised.value, OffsetOutOfRangeError)
    assert (1, 2) not in got and (1, 1) in got
    assert consumer.calls[-1] == ("unassign",)


@pytest.mark.parametrize("error", [
    RdKafkaError(RdKafkaError._AUTO_OFFSET_RESET),
    RdKafkaError(RdKafkaError.OFFSET_OUT_OF_RANGE),
    RdKafkaError(RdKafkaError.OFFSET_OUT_OF_RANGE, retriable=True),  # out of range wins over the retriable flag
], ids=["auto_offset_reset", "offset_out_of_range", "offset_out_of_range_retriable"])
def test_out_of_range_mid_read_raises_OffsetOutOfRangeError_at_the_position_reached(kafka, error):
    consumer = kafka({0: log(range(5), errors={2: [error]})})
    got: list[int] = []
    with pytest.raises(OffsetOutOfRangeError) as raised:
        read_range(clients_for(consumer), TOPIC, {0: 0}, lambda m: got.append(m.offset()), max_events=None)
    assert (raised.value.partition, raised.value.offset) == (0, 2) and got == [0, 1]
    assert consumer.calls[-1] == ("unassign",)


def test_a_start_below_the_log_start_raises_OffsetOutOfRangeError(kafka):
    consumer = kafka({0: log(range(5, 9), start=5)})  # retention removed 0..4
    with pytest.raises(OffsetOutOfRangeError, match="partition 0: offset 2 is out of range") as raised:
        read(consumer, {0: 2})
    assert (raised.value.partition, raised.value.offset) == (0, 2)


def test_a_start_beyond_the_log_end_raises_OffsetOutOfRangeError_without_a_fetch(kafka):
    consumer = kafka({0: log(range(3)), 1: log(range(5))})
    with pytest.raises(OffsetOutOfRangeError, match="partition 1: offset 9 is out of range") as raised:
        read(consumer, {0: 0, 1: 9})
    assert (raised.value.partition, raised.value.offset) == (1, 9)
    assert fetches(consumer) == []


def test_a_log_truncated_after_list_offsets_answered_raises_OffsetOutOfRangeError(kafka):
    consumer = kafka({0: log(range(3), listed_high=6)})  # the broker lost 3..5 after answering 6
    with pytest.raises(OffsetOutOfRangeError) as raised:
        read(consumer, {0: 4})
    assert (raised.value.partition, raised.value.offset) == (0, 4)
    assert consumer.calls[-1] == ("unassign",)


# -- commit_offsets, committed_offsets --

def test_commit_offsets_commits_exactly_the_given_offsets_synchronously(kafka):
    consumer = kafka({0: log([]), 1: log([])})
    commit_offsets(clients_for(consumer), TOPIC, {1: 7, 0: 3})
    assert consumer.calls == [("commit", [(TOPIC, 0, 3), (TOPIC, 1, 7)], False)]


def test_commit_offsets_of_nothing_does_not_call_the_broker(kafka):
    consumer = kafka({})
    commit_offsets(clients_for(consumer), TOPIC, {})
    assert consumer.calls == []


def test_commit_offsets_turns_a_consumer_exception_into_KafkaError(kafka):
    failure = KafkaException(RdKafkaError(RdKafkaError.COORDINATOR_NOT_AVAILABLE))
    consumer = kafka({0: log([])}, commit_raises=failure)
    with pytest.raises(KafkaError, match=r"committing offsets \{0: 3\} of pg\.public\.t failed") as raised:
        commit_offsets(clients_for(consumer), TOPIC, {0: 3})
    assert raised.value.__cause__ is failure and not isinstance(raised.value, BrokerUnreachableError)


def test_commit_offsets_fails_when_the_broker_refuses_one_partition(kafka):
    refused = RdKafkaError(RdKafkaError.OFFSET_METADATA_TOO_LARGE)
    consumer = kafka({0: log([]), 1: log([]), 2: log([])}, commit_refused={1: refused})
    with pytest.raises(KafkaError, match="refused the commit of pg.public.t for partitions") as raised:
        commit_offsets(clients_for(consumer), TOPIC, {0: 1, 1: 2, 2: 3})
    message = str(raised.value)
    assert f"'1: {refused}'" in message and "'0: " not in message and "'2: " not in message


def test_committed_offsets_maps_no_commit_to_none(kafka):
    consumer = kafka({0: log([]), 1: log([])}, committed={0: 5})
    assert committed_offsets(clients_for(consumer), TOPIC, [0, 1]) == {0: 5, 1: None}


def test_committed_offsets_on_an_unreachable_broker_raises_BrokerUnreachableError(kafka):
    consumer = kafka({0: log([])}, raises=unreachable())
    with pytest.raises(BrokerUnreachableError, match="group cdc-csv.t's committed offsets"):
        committed_offsets(clients_for(consumer), TOPIC, [0])


# -- offsets_at_time --

STAMPED = {0: log(range(5)),  # timestamps 1000, 2000, .. 5000
           1: log([0, 3, 6], end=7, ts={0: 1000, 3: 3500, 6: 6000})}


def test_offsets_at_time_answers_the_first_offset_at_or_after_the_time_without_reading_it(kafka):
    consumer = kafka(STAMPED)
    assert offsets_at_time(clients_for(consumer), TOPIC, [0, 1], 3000) == {0: 2, 1: 3}
    assert consumer.calls == [("offsets_for_times", [(TOPIC, 0, 3000), (TOPIC, 1, 3000)])]


def test_offsets_at_time_maps_minus_one_to_the_high_watermark(kafka):
    # every record of partitions 0 and 1 is older (-1); partition 1 ends with a transaction marker at 3
    consumer = kafka({0: log(range(5)), 1: log([0, 1, 2], end=4), 2: log([0, 7], end=8, ts={7: 8000})})
    assert offsets_at_time(clients_for(consumer), TOPIC, [0, 1, 2], 5500) == {0: 5, 1: 4, 2: 7}
    assert [c for c in consumer.calls if c[0] != "offsets_for_times"] == [("list_offsets", 0), ("list_offsets", 1)]


def test_offsets_at_time_of_an_empty_partition_is_its_end(kafka):
    consumer = kafka({0: log([], end=0), 1: log(range(2))})
    assert offsets_at_time(clients_for(consumer), TOPIC, [0, 1], 1500) == {0: 0, 1: 1}


def test_offsets_at_time_fails_on_a_partitions_error_instead_of_taking_it_for_the_end(kafka, monkeypatch):
    consumer = kafka(STAMPED)
    refused = SimpleNamespace(topic=TOPIC, partition=1, offset=-1, error=RdKafkaError(RdKafkaError.NOT_LEADER_FOR_PARTITION))
    monkeypatch.setattr(consumer, "offsets_for_times", lambda partitions, timeout=None: [
        TopicPartition(TOPIC, 0, 2), refused])  # shaped like a TopicPartition whose error is set
    with pytest.raises(KafkaError, match=r"offsets_for_times on pg\.public\.t failed for partitions \['1: "):
        offsets_at_time(clients_for(consumer), TOPIC, [0, 1], 3000)


def test_offsets_at_time_turns_a_consumer_exception_into_KafkaError(kafka):
    consumer = kafka(STAMPED, raises=unreachable())
    with pytest.raises(KafkaError, match=r"offsets_for_times on pg\.public\.t failed"):
        offsets_at_time(clients_for(consumer), TOPIC, [0, 1], 3000)


# -- kafka_backlog (the status commands' live backlog) --

def backlog(consumer, ends: dict[int, int]) -> Backlog:
    return kafka_backlog(clients_for(consumer), TOPIC, max_seconds=5)(ends)


def test_backlog_is_each_high_watermark_minus_the_resume_point_and_the_oldest_unread_records_age(kafka):
    now_ms = int(time.time() * 1000)
    stamps = {o: now_ms - 90_000 + 1000 * o for o in range(10)}
    consumer = kafka({0: log(range(10), ts=stamps), 1: log(range(4), end=6, ts={o: now_ms for o in range(4)}),
                      2: log(range(3))})
    measured = backlog(consumer, {0: 3, 1: 2, 2: 3})
    # Few enough to read: the records there (partition 1's offsets 4 and 5 hold none).
    assert (measured.partitions, measured.total, measured.measured) == ({0: 7, 1: 2, 2: 0}, 9, "kafka")
    assert measured.approximate is False
    assert 86 <= measured.oldest_age_seconds <= 88 + 5  # partition 0's record 3, 87 s old
    # one read per partition with a backlog, from its resume point to its end; none of partition 2
    assert [c for c in consumer.calls if c[0] == "assign"] == [("assign", [(TOPIC, 0, 3)]), ("assign", [(TOPIC, 1, 2)])]


def test_a_backlog_too_large_to_read_is_each_high_watermark_minus_the_resume_point_and_says_so(kafka, monkeypatch):
    from cdc_pipeline.commands import status

    monkeypatch.setattr(status, "EXACT_BACKLOG_UP_TO", 5)
    now_ms = int(time.time() * 1000)
    stamps = {o: now_ms - 90_000 + 1000 * o for o in range(10)}
    consumer = kafka({0: log(range(10), ts=stamps), 1: log(range(4), end=6, ts={o: now_ms for o in range(4)}),
                      2: log(range(3))})
    measured = backlog(consumer, {0: 3, 1: 2, 2: 3})
    assert (measured.partitions, measured.total, measured.approximate) == ({0: 7, 1: 4, 2: 0}, 11, True)
    assert 86 <= measured.oldest_age_seconds <= 88 + 5
    assert consume_sizes(consumer) == [1, 1]  # only each partition's oldest unread record, for its age


def test_backlog_counts_from_the_log_start_when_the_resume_point_lies_outside_the_log(kafka):
    # partition 0: retention deleted 0..4 below the resume point 2; partition 1: the broker lost everything from
    # 5 on, past which the resume point 9 lies; partition 2 has no resume point (added since)
    consumer = kafka({0: log(range(5, 9), start=5), 1: log(range(5)), 2: log(range(2, 4), start=2)})
    measured = backlog(consumer, {0: 2, 1: 9})
    assert (measured.partitions, measured.total) == ({0: 4, 1: 5, 2: 2}, 11)
    assert [c[1] for c in consumer.calls if c[0] == "assign"] == [[(TOPIC, 0, 5)], [(TOPIC, 1, 0)], [(TOPIC, 2, 2)]]


def test_backlog_at_the_end_reads_no_record(kafka):
    consumer = kafka({0: log(range(5)), 1: log([], end=0)})
    assert backlog(consumer, {0: 5, 1: 0}) == Backlog({0: 0, 1: 0}, 0, None, "kafka")
    assert fetches(consumer) == []


def test_backlog_of_a_missing_topic_is_empty(kafka):
    assert backlog(kafka({}), {0: 5}) == Backlog(measured="kafka")
