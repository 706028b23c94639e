"""EventCollector: what a batch's records become, and what is counted and set aside."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

from cdc_pipeline.buffer.batch_buffer import BatchBuffer
from cdc_pipeline.connector_spec import load_connector_spec
from cdc_pipeline.debezium.events import RenderContext
from cdc_pipeline.buffer.event_collector import EventCollector
from cdc_pipeline.layout import PipelineLayout

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "fixtures" / "samples" / "debezium-3.1.1-acc_types-events.jsonl.gz"


class FakeMessage:
    """The confluent_kafka.Message methods the collector reads."""

    def __init__(self, key, value, offset, partition=0, topic="acc2.public.acc_types", ts=1_795_487_926_813):
        self._key, self._value, self._offset, self._partition, self._topic, self._ts = key, value, offset, partition, topic, ts

    def key(self):
        return self._key

    def value(self):
        return self._value

    def offset(self):
        return self._offset

    def partition(self):
        return self._partition

    def topic(self):
        return self._topic

    def timestamp(self):
        return (1, self._ts)


def collector_for(tmp_path, table="public.acc_types", start_from_ms=None, incarnation=3):
    return EventCollector(spec_for(tmp_path, table), incarnation=incarnation, context=RenderContext(),
                          start_from_ms=start_from_ms)


def spec_for(tmp_path, table="public.acc_types"):
    config = json.loads((REPO / "include" / "connectors" / "clientes.json").read_text())["config"]
    config.update({"table.include.list": table, "topic.prefix": "acc2"})
    path = tmp_path / "acc.json"
    path.write_text(json.dumps({"name": "acc", "config": config}))
    return load_connector_spec(path)


def buffered(collector, tmp_path, columns=None):
    """The collector's rows as buffer.csv holds them, read back as dicts (None for NULL)."""
    if not len(collector.rows):
        return []
    columns = columns or next(iter(collector.signatures.values()))
    buffer = BatchBuffer(PipelineLayout(tmp_path / "pipeline"))
    buffer.add(collector.meta(columns, collector.key_columns or ("k1", "k2"), 0), collector.rows)
    _, frame = buffer.read()
    return frame.to_dict("records")


def sample_records():
    with gzip.open(SAMPLES, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def encode(obj) -> bytes | None:
    return None if obj is None else json.dumps(obj).encode()


def test_rows_counts_and_tombstones(tmp_path):
    collector = collector_for(tmp_path)
    records = sample_records()[:80]
    for r in records:
        collector.add(FakeMessage(encode(r["key"]), encode(r["value"]), r["offset"], r["partition"]))
    counts = collector.counts()
    ops = [r["value"]["payload"]["op"] for r in records if r["value"]]
    assert counts["reads"] == ops.count("r") and counts["creates"] == ops.count("c")
    assert counts["tombstones"] == sum(1 for r in records if r["value"] is None)
    rows = buffered(collector, tmp_path)
    assert len(collector.rows) == len(ops) == len(rows)
    row = rows[0]
    assert row["operacion"] == ops[0] and row["_topic"] == "acc2.public.acc_types"
    assert row["timestamp"].endswith("+00")
    assert collector.key_columns == ("k1", "k2")
    assert row["_incarnation"] == "3" and row["_txid"] is not None
    assert len(collector.signatures) == 1 and next(iter(collector.signatures.values()))[:2] == ("k1", "k2")
    assert collector.max_lsn == max(r["value"]["payload"]["source"]["lsn"] for r in records if r["value"])


def test_events_of_another_table_are_counted_and_skipped(tmp_path):
    collector = collector_for(tmp_path, "public.other")
    record = next(r for r in sample_records() if r["value"])
    collector.add(FakeMessage(encode(record["key"]), encode(record["value"]), 0))
    assert len(collector.rows) == 0 and collector.counts()["other_tables"] == 1


def test_undecodable_messages_go_to_the_dead_letter_file_once(tmp_path):
    collector = collector_for(tmp_path)
    collector.add(FakeMessage(b"k", b"not json at all", 7, partition=2))
    assert collector.counts()["dead_lettered"] == 1 and len(collector.rows) == 0
    target = tmp_path / "dead_letters.jsonl"
    collector.write_dead_letters(target)
    collector.write_dead_letters(target)  # a retry of the same range
    entries = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["topic"], entry["partition"], entry["offset"]) == ("acc2.public.acc_types", 2, 7)
    assert base64.b64decode(entry["value_base64"]) == b"not json at all"
    assert "JSON" in entry["error"] or "json" in entry["error"]


def test_records_committed_before_start_from_are_counted_not_kept(tmp_path):
    events = [r for r in sample_records() if r["value"] and r["value"]["payload"]["op"] == "c"]
    commit_times = sorted({r["value"]["payload"]["source"]["ts_ms"] for r in events})
    cut = commit_times[len(commit_times) // 2]
    collector = collector_for(tmp_path, start_from_ms=cut)
    for r in events:
        # A Kafka timestamp far in the future: the filter must use the source commit time.
        collector.add(FakeMessage(encode(r["key"]), encode(r["value"]), r["offset"], ts=9_999_999_999_999))
    older = sum(1 for r in events if r["value"]["payload"]["source"]["ts_ms"] < cut)
    assert older > 0
    assert collector.counts()["before_start"] == older and len(collector.rows) == len(events) - older


def test_a_truncate_is_a_row_with_no_values_and_is_counted(tmp_path):
    collector = collector_for(tmp_path)
    record = next(r for r in sample_records() if r["value"])
    value = json.loads(json.dumps(record["value"]))
    payload = value["payload"]
    payload.update(op="t", before=None, after=None)
    collector.add(FakeMessage(None, encode(value), 41))
    assert collector.counts()["truncates"] == 1
    columns = tuple(f["field"] for f in record["value"]["schema"]["fields"][0]["fields"])
    (row,) = buffered(collector, tmp_path, columns)
    assert row["operacion"] == "t" and row["_offset"] == "41"
    assert all(row[c] is None for c in columns) and row["_incarnation"] == "3"
    assert collector.signatures == {}  # a truncate carries no row, so it says nothing about the columns


def test_snapshot_reads_and_the_last_snapshot_marker_are_noticed(tmp_path):
    collector = collector_for(tmp_path)
    reads = [r for r in sample_records() if r["value"] and r["value"]["payload"]["op"] == "r"]
    for number, r in enumerate(reads[:3]):
        value = json.loads(json.dumps(r["value"]))
        value["payload"]["source"]["snapshot"] = "last" if number == 2 else "true"
        collector.add(FakeMessage(encode(r["key"]), encode(value), number))
    assert collector.snapshot_reads == 3 and collector.last_snapshot_marker


def _rows_as_dicts(records, incarnation="3"):
    """buffer rows built the way the collector built them before it wrote lines: dicts from decode_message."""
    from cdc_pipeline.debezium.events import decode_message, format_source_timestamp

    rows = []
    for r in records:
        event = decode_message(encode(r["key"]), encode(r["value"]))
        if event is None:
            continue
        row = dict(zip(event.columns, event.values))
        row.update(operacion=event.op, timestamp=format_source_timestamp(event.source_ts_ms), _topic="acc2.public.acc_types",
                   _partition=str(r["partition"]), _offset=str(r["offset"]), _lsn=str(event.lsn),
                   _incarnation=incarnation, _txid=None if event.txid is None else str(event.txid))
        rows.append(row)
    return rows


def test_buffer_bytes_equal_those_of_rows_given_as_dicts(tmp_path):
    records = sample_records()
    collector = collector_for(tmp_path)
    for r in records:
        collector.add(FakeMessage(encode(r["key"]), encode(r["value"]), r["offset"], r["partition"]))
    meta = collector.meta(next(iter(collector.signatures.values())), collector.key_columns, 0)
    lines = BatchBuffer(PipelineLayout(tmp_path / "lines"))
    dicts = BatchBuffer(PipelineLayout(tmp_path / "dicts"))
    assert lines.add(meta, collector.rows) == dicts.add(meta, _rows_as_dicts(records)) == len(collector.rows)
    assert lines.path.read_bytes() == dicts.path.read_bytes()


def test_a_batch_read_again_over_unmerged_rows_is_kept_once(tmp_path):
    records = [r for r in sample_records() if r["value"]][:40]
    first, again = collector_for(tmp_path), collector_for(tmp_path)
    for r in records[:30]:
        first.add(FakeMessage(encode(r["key"]), encode(r["value"]), r["offset"], r["partition"]))
    for r in records[20:]:  # a retry that read part of the same range, and more
        again.add(FakeMessage(encode(r["key"]), encode(r["value"]), r["offset"], r["partition"]))
    meta = first.meta(next(iter(first.signatures.values())), first.key_columns, 0)
    buffer = BatchBuffer(PipelineLayout(tmp_path / "pipeline"))
    buffer.add(meta, first.rows)
    assert buffer.add(meta, again.rows) == 40
    _, frame = buffer.read()
    assert list(zip(frame["_partition"], frame["_offset"])) == [(str(r["partition"]), str(r["offset"])) for r in records]
