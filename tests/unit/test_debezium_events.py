"""decode_message: the envelope, the event's fields, TRUNCATE, tombstones and every error's advice.

The messages are built in the shape Debezium 3.1.1's JsonConverter writes (see tests/fixtures/samples for
real ones); expected texts are PostgreSQL's.
"""

from __future__ import annotations

import json

import orjson
import pytest

from cdc_pipeline.debezium.events import UNAVAILABLE_VALUE, ChangeEvent, decode_message, format_source_timestamp
from cdc_pipeline.errors import EventDecodeError, UnsupportedTypeError

SOURCE_SCHEMA = {
    "type": "struct",
    "name": "io.debezium.connector.postgresql.Source",
    "field": "source",
    "optional": False,
    "fields": [
        {"type": "string", "optional": False, "field": "version"},
        {"type": "int64", "optional": False, "field": "ts_ms"},
        {"type": "string", "optional": True, "name": "io.debezium.data.Enum", "field": "snapshot"},
        {"type": "string", "optional": False, "field": "schema"},
        {"type": "string", "optional": False, "field": "table"},
        {"type": "int64", "optional": True, "field": "txId"},
        {"type": "int64", "optional": True, "field": "lsn"},
    ],
}


def _field(name: str, ftype: str, logical: str | None = None, **extra) -> dict:
    field = {"type": ftype, "optional": True, "field": name}
    if logical:
        field["name"] = logical
    field.update(extra)
    return field


def _value(fields: list[dict], row: dict | None, op: str = "c", before: dict | None = None, **source) -> bytes:
    row_struct = {"type": "struct", "fields": fields, "optional": True, "name": "srv.public.t.Value"}
    schema = {
        "type": "struct",
        "name": "srv.public.t.Envelope",
        "fields": [
            {**row_struct, "field": "before"},
            {**row_struct, "field": "after"},
            SOURCE_SCHEMA,
            {"type": "string", "optional": False, "field": "op"},
            {"type": "int64", "optional": True, "field": "ts_ms"},
        ],
    }
    src = {"version": "3.1.1.Final", "ts_ms": 1795487926311, "snapshot": "false", "schema": "public",
           "table": "t", "txId": 731, "lsn": 28224264}
    src.update(source)
    payload = {"before": before, "after": None if op in ("d", "t") else row, "source": src, "op": op, "ts_ms": 1}
    return orjson.dumps({"schema": schema, "payload": payload})


def _key(names_types: list[tuple[str, str]], values: dict) -> bytes:
    schema = {"type": "struct", "optional": False, "name": "srv.public.t.Key",
              "fields": [{"type": t, "optional": False, "field": n} for n, t in names_types]}
    return orjson.dumps({"schema": schema, "payload": values})


KEY = _key([("id", "int32")], {"id": 1})


def _decode_one(field: dict, raw) -> str | None:
    fields = [_field("id", "int32"), field]
    event = decode_message(KEY, _value(fields, {"id": 1, field["field"]: raw}))
    assert event is not None
    return event.values[1]


# ---------------------------------------------------------------------------------------------- the event

def test_event_fields_and_null_vs_empty():
    fields = [_field("id", "int32"), _field("a", "string"), _field("b", "string")]
    event = decode_message(KEY, _value(fields, {"id": 7, "a": None, "b": ""}, op="r", snapshot="first", lsn=42))
    assert event == ChangeEvent(
        op="r", schema="public", table="t", columns=("id", "a", "b"), key_columns=("id",),
        values=("7", None, ""), key=("7",), lsn=42, source_ts_ms=1795487926311, txid=731, snapshot="first",
        signature=(("id", "int32", None, None, None, None, True), ("a", "string", None, None, None, None, True),
                   ("b", "string", None, None, None, None, True)),
    )


@pytest.mark.parametrize(("raw", "expected"), [
    ("false", None), (None, None), ("true", "true"), ("last", "last"), ("incremental", "incremental"),
    ("first_in_data_collection", "first_in_data_collection"),
])
def test_snapshot_marker(raw, expected):
    event = decode_message(KEY, _value([_field("id", "int32")], {"id": 1}, op="r", snapshot=raw))
    assert event.snapshot == expected


@pytest.mark.parametrize(("sequence", "lsn"), [
    ('["31590336","31590400"]', 31590336),  # the last commit's LSN
    ('[null,"31634600"]', 31634600),        # right after a start: where streaming resumed
])
def test_an_incremental_snapshots_read_takes_its_lsn_from_the_sequence(sequence, lsn):
    raw = _value([_field("id", "int32")], {"id": 1}, op="r", snapshot="incremental", lsn=None, txId=None,
                 sequence=sequence)
    event = decode_message(KEY, raw)
    assert (event.op, event.snapshot, event.lsn, event.txid) == ("r", "incremental", lsn, None)


def test_an_incremental_read_without_a_sequence_is_still_refused():
    raw = _value([_field("id", "int32")], {"id": 1}, op="r", snapshot="incremental", lsn=None, sequence="[null,null]")
    with pytest.raises(EventDecodeError, match="lacks an integer lsn"):
        decode_message(KEY, raw)


def test_missing_txid_is_none():
    event = decode_message(KEY, _value([_field("id", "int32")], {"id": 1}, txId=None))
    assert event.txid is None


def test_signature_tells_schema_changes_apart():
    def signature(fields):
        return decode_message(KEY, _value(fields, {"id": 1})).signature

    base = [_field("id", "int32"), _field("v", "string", parameters={
        "__debezium.source.column.type": "VARCHAR", "__debezium.source.column.length": "10"})]
    longer = [_field("id", "int32"), _field("v", "string", parameters={
        "__debezium.source.column.type": "VARCHAR", "__debezium.source.column.length": "20"})]
    renamed = [_field("id", "int32"), _field("w", "string", parameters={
        "__debezium.source.column.type": "VARCHAR", "__debezium.source.column.length": "10"})]
    assert signature(base) == signature(json.loads(json.dumps(base)))
    assert len({signature(base), signature(longer), signature(renamed)}) == 3
    assert signature(base)[1] == ("v", "string", None, "VARCHAR", "10", None, True)


def test_delete_takes_before_and_composite_key_in_key_schema_order():
    fields = [_field("k2", "string"), _field("x", "string"), _field("k1", "int32")]
    key = _key([("k1", "int32"), ("k2", "string")], {"k1": 3, "k2": "b,c"})
    event = decode_message(key, _value(fields, {}, op="d", before={"k2": "b,c", "x": None, "k1": 3}))
    assert event.op == "d"
    assert event.values == ("b,c", None, "3")
    assert event.key_columns == ("k1", "k2")
    assert event.key == ("3", "b,c")


def test_tombstone_is_none():
    assert decode_message(KEY, None) is None


def test_truncate_is_an_event_without_rows():
    # As seen on the real stack with skipped.operations=none: null key, before/after null, a source block.
    fields = [_field("id", "int32"), _field("v", "string")]
    event = decode_message(None, _value(fields, None, op="t", lsn=26396368, txId=731))
    assert (event.op, event.columns, event.values, event.key, event.key_columns) == ("t", (), (), (), ())
    assert (event.schema, event.table, event.lsn, event.txid, event.snapshot) == ("public", "t", 26396368, 731, None)
    assert [column[0] for column in event.signature] == ["id", "v"]


def test_spaced_json_takes_the_slow_path_with_same_result():
    fields = [_field("id", "int32"), _field("v", "float")]
    compact = _value(fields, {"id": 1, "v": 3.14})
    spaced = json.dumps(json.loads(compact), indent=2).encode()
    assert decode_message(KEY, spaced) == decode_message(KEY, compact)


def test_bare_nan_token_is_accepted():
    fields = [_field("id", "int32"), _field("v", "double")]
    raw = _value(fields, {"id": 1, "v": 0.5}).replace(b'"v":0.5', b'"v":NaN')
    assert decode_message(KEY, raw).values[1] == "NaN"


def test_unavailable_placeholder_passes_through():
    assert _decode_one(_field("v", "string"), UNAVAILABLE_VALUE) == UNAVAILABLE_VALUE


def test_format_source_timestamp():
    assert format_source_timestamp(1795487926311) == "2026-11-24 02:38:46.311+00"
    assert format_source_timestamp(1795487926000) == "2026-11-24 02:38:46+00"
    assert format_source_timestamp(1795487926310) == "2026-11-24 02:38:46.31+00"


# ---------------------------------------------------------------------------------------------- errors

def test_not_json_is_a_decode_error():
    with pytest.raises(EventDecodeError, match="value bytes are not JSON.*JsonConverter"):
        decode_message(KEY, b"\x00\x01avro?")


def test_schemaless_json_says_enable_schemas():
    with pytest.raises(EventDecodeError, match="value.converter.schemas.enable=true"):
        decode_message(KEY, b'{"before":null,"after":{"id":1},"op":"c"}')


def test_null_schema_says_enable_schemas():
    with pytest.raises(EventDecodeError, match="null schema.*schemas.enable=true"):
        decode_message(KEY, b'{"schema":null,"payload":{"id":1}}')


def test_unwrapped_record_says_remove_unwrap():
    schema = {"type": "struct", "fields": [{"type": "int32", "field": "id"}], "name": "srv.public.t.Value"}
    with pytest.raises(EventDecodeError, match="ExtractNewRecordState"):
        decode_message(KEY, orjson.dumps({"schema": schema, "payload": {"id": 1}}))


def test_unknown_op_is_an_error():
    raw = _value([_field("id", "int32")], {"id": 1}, op="c").replace(b'"op":"c"', b'"op":"x"')
    with pytest.raises(EventDecodeError, match="unknown op 'x'"):
        decode_message(KEY, raw)


def test_key_not_envelope_is_an_error():
    with pytest.raises(EventDecodeError, match="key.converter.schemas.enable=true"):
        decode_message(b'{"id":1}', _value([_field("id", "int32")], {"id": 1}))


def test_malformed_value_names_column_type_and_value():
    with pytest.raises(EventDecodeError, match=r"column 'v' \(string \(io.debezium.time.ZonedTimestamp\)\).*'yesterday'"):
        _decode_one(_field("v", "string", "io.debezium.time.ZonedTimestamp"), "yesterday")


def test_a_bug_in_a_converter_fails_loudly_instead_of_becoming_a_decode_error(monkeypatch):
    from cdc_pipeline.pgtext import types

    def broken(value):
        raise RuntimeError("a bug in the converter")

    monkeypatch.setitem(types._BY_NAME, ("string", "io.debezium.time.ZonedTimestamp"), broken)
    field = _field("v_bug", "string", "io.debezium.time.ZonedTimestamp")
    with pytest.raises(RuntimeError, match="a bug in the converter"):
        _decode_one(field, "2026-11-30T10:00:00Z")


def test_unsupported_type_is_refused_when_the_schema_is_first_seen():
    with pytest.raises(UnsupportedTypeError, match="column 'v'.*MicroDuration"):
        _decode_one(_field("v", "int64", "io.debezium.time.MicroDuration"), 0)


def test_unconstrained_numeric_has_one_signature_in_snapshot_and_stream():
    # Seen on the real chain: snapshot reads say length 0 and no scale, streamed changes 131089 and 0.
    def signature(length, scale):
        parameters = {"__debezium.source.column.type": "NUMERIC", "__debezium.source.column.length": length}
        if scale is not None:
            parameters["__debezium.source.column.scale"] = scale
        fields = [_field("id", "int32"), _field("n", "string", parameters=parameters)]
        return decode_message(KEY, _value(fields, {"id": 1, "n": "1.50"})).signature

    assert signature("0", None) == signature("131089", "0")
    assert signature("12", "2") != signature("0", None)


def test_alternating_contexts_each_get_their_own_text():
    from cdc_pipeline.pgtext.context import RenderContext

    field = _field("v", "string", "io.debezium.time.Interval",
                   parameters={"__debezium.source.column.type": "INTERVAL"})
    raw = _value([_field("id", "int32"), field], {"id": 1, "v": "P0Y0M0DT0H0M-0.5S"})
    postgres, iso = RenderContext(), RenderContext(interval_style="iso_8601")
    texts = [decode_message(KEY, raw, context).values[1] for context in (postgres, iso, postgres, iso)]
    assert texts == ["-00:00:00.5", "PT-0.5S", "-00:00:00.5", "PT-0.5S"]
