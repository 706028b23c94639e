"""The Kafka edge cases of the bounded reader and of the offset helpers, against a scripted consumer
(tests/unit/scripted_kafka.py): gaps, end-of-partition events, batch limits, broker errors, Tansu's answers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from confluent_kafka import OFFSET_INVALID, KafkaError as RdKafkaError, KafkaException

from cdc_pipeline.errors import BrokerUnreachableError, KafkaError, OffsetOutOfRangeError
from cdc_pipeline.kafka import reader
from cdc_pipeline.kafka.offsets import commit_offsets, committed_offsets, offsets_at_time
from cdc_pipeline.kafka.reader import OffsetRange, ReadResult, read_range, read_to_end
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


def ranges(**by_partition) -> dict[int, OffsetRange]:
    return {int(p[1:]): OffsetRange(int(p[1:]), start, end) for p, (start, end) in by_partition.items()}


# -- read_range: to the end --

def test_reads_every_record_from_the_given_starts_to_each_partitions_end(kafka):
    consumer = kafka({0: log(range(5)), 1: log(range(3))})
    result, got = read(consumer, {1: 0, 0: 2})
    assert consumer.calls[0] == ("assign", [(TOPIC, 0, 2), (TOPIC, 1, 0)])
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
    consumer = kafka({0: log([0, 1, 2], end=6, listed_high=3, fetched_high=3)})  # the end event alone says 6
    result, got = read(consumer, {0: 3})
    assert got == []
    assert result == ReadResult(ranges(p0=(3, 6)), records_read=0, complete=True)


def test_a_partition_already_at_its_end_reads_nothing_and_counts_as_complete(kafka):
    consumer = kafka({0: log(range(5)), 1: log(range(4))})
    result, got = read(consumer, {0: 5, 1: 2})
    assert got == [(1, 2), (1, 3)]
    assert result == ReadResult(ranges(p0=(5, 5), p1=(2, 4)), records_read=2, complete=True)


def test_tansus_short_listed_high_gives_way_to_the_fetched_high_watermark(kafka):
    consumer = kafka({0: log(range(5), listed_high=2, fetched_high=5)}, flavour="tansu")
    result, got = read(consumer, {0: 0})
    assert [o for _, o in got] == [0, 1, 2, 3, 4]
    assert result.ranges == ranges(p0=(0, 5)) and result.complete


def test_the_end_is_at_least_the_first_records_offset_plus_one(kafka):
    consumer = kafka({0: log([3, 4], listed_high=0, fetched_high=OFFSET_INVALID)})
    result, got = read(consumer, {0: 0})
    assert got == [(0, 3)]
    assert result == ReadResult(ranges(p0=(0, 4)), records_read=1, complete=True)


def test_records_produced_after_the_end_was_fixed_are_left_for_the_next_run(kafka):
    consumer = kafka({0: log(range(6), listed_high=3, fetched_high=3)})  # 3..5 arrived while reading
    result, got = read(consumer, {0: 0})
    assert any(m.offset() == 4 and m.error() is None for m in consumer.delivered)  # the consumer did hand them over
    assert got == [(0, 0), (0, 1), (0, 2)]
    assert result == ReadResult(ranges(p0=(0, 3)), records_read=3, complete=True)


def test_an_end_event_short_of_the_fixed_end_does_not_close_the_range(kafka):
    # read_committed: the end event comes at the last stable offset (3), below the high watermark (6) that fixed
    # the end while a transaction is open; the range must not claim 3..5 as read
    consumer = kafka({0: log(range(3), end=3, listed_high=6, fetched_high=6)})
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
    assert consumer.calls == []


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


def test_a_start_beyond_the_log_end_raises_OffsetOutOfRangeError(kafka):
    consumer = kafka({0: log(range(5))})
    with pytest.raises(OffsetOutOfRangeError) as raised:
        read(consumer, {0: 9})
    assert (raised.value.partition, raised.value.offset) == (0, 9)


def test_a_start_beyond_the_end_on_tansu_is_never_reported_complete(kafka):
    consumer = kafka({0: log(range(5))}, flavour="tansu")  # Tansu answers such a fetch with nothing
    result, got = read(consumer, {0: 9}, max_seconds=1.0)
    assert got == [] and result == ReadResult(ranges(p0=(9, 9)), records_read=0, complete=False)


# -- read_to_end --

def test_read_to_end_answers_the_true_end_past_tansus_short_listing(kafka):
    consumer = kafka({0: log(range(7), listed_high=4, fetched_high=7), 1: log([0, 2], end=5)}, flavour="tansu")
    assert read_to_end(clients_for(consumer), TOPIC, {0: 2, 1: 0}) == {0: 7, 1: 5}


def test_read_to_end_fails_when_a_partition_does_not_reach_its_end_in_time(kafka):
    consumer = kafka({0: log(range(3)), 1: log(range(3), silent=True)})
    with pytest.raises(KafkaError, match=r"could not read pg\.public\.t to its end within 5 s"):
        read_to_end(clients_for(consumer), TOPIC, {0: 0, 1: 0}, max_seconds=5)


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


def test_offsets_at_time_answers_the_first_offset_at_or_after_the_time(kafka):
    consumer = kafka(STAMPED)
    assert offsets_at_time(clients_for(consumer), TOPIC, [0, 1], 3000) == {0: 2, 1: 3}
    assert consumer.calls[0] == ("offsets_for_times", [(TOPIC, 0, 3000), (TOPIC, 1, 3000)])


def test_offsets_at_time_maps_apaches_minus_one_to_the_end(kafka):
    consumer = kafka({0: log(range(5)), 1: log(range(2))})
    assert offsets_at_time(clients_for(consumer), TOPIC, [0, 1], 9000) == {0: 5, 1: 2}
    assert [c for c in consumer.calls if c[0] == "assign"] == []  # -1 needs no read


def test_offsets_at_time_maps_tansus_zero_to_the_true_end_when_every_record_is_older(kafka):
    consumer = kafka({0: log(range(5), listed_high=3, fetched_high=5)}, flavour="tansu")
    assert offsets_at_time(clients_for(consumer), TOPIC, [0], 9000) == {0: 5}  # not ListOffsets' short 3


def test_offsets_at_time_keeps_tansus_zero_when_the_first_record_is_not_older(kafka):
    consumer = kafka({0: log(range(5))}, flavour="tansu")
    assert offsets_at_time(clients_for(consumer), TOPIC, [0], 1000) == {0: 0}


@pytest.mark.parametrize("flavour", ["apache", "tansu"])
def test_offsets_at_time_of_an_empty_partition_is_its_end(kafka, flavour):
    consumer = kafka({0: log([], end=0), 1: log(range(2))}, flavour=flavour)
    assert offsets_at_time(clients_for(consumer), TOPIC, [0, 1], 1500) == {0: 0, 1: 1}


def test_offsets_at_time_keeps_tansus_zero_when_the_record_has_no_timestamp(kafka):
    # nothing tells "every record is older" from "the first record is not older": keep 0, which skips nothing
    consumer = kafka({0: log(range(5), ts={0: None})}, flavour="tansu")
    assert offsets_at_time(clients_for(consumer), TOPIC, [0], 9000) == {0: 0}


def test_offsets_at_time_turns_a_consumer_exception_into_KafkaError(kafka):
    consumer = kafka(STAMPED, raises=unreachable())
    with pytest.raises(KafkaError, match=r"offsets_for_times on pg\.public\.t failed"):
        offsets_at_time(clients_for(consumer), TOPIC, [0, 1], 3000)
