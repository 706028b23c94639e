"""decode_csv and the compiled row renderer write exactly what format_row writes of decode_message's values.

Every real record of both fixtures (tests/fixtures/samples and every type of tests/fixtures/types2, under
each IntervalStyle), hand-made rows with every quoting case, values of the wrong JSON type, and broken
messages, which must fail with the same error either way.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import pytest

from cdc_pipeline.pgtext.copy_csv import format_row
from cdc_pipeline.debezium.csv_rows import compile_row_renderer, csv_field
from cdc_pipeline.debezium.events import decode_csv, decode_message
from cdc_pipeline.errors import EventDecodeError
from cdc_pipeline.pgtext.context import RenderContext
from cdc_pipeline.pgtext.floats import format_float8
from cdc_pipeline.pgtext.scalars import format_int
from cdc_pipeline.pgtext.types import converter_for, csv_plain
from cdc_pipeline.source.catalog import TableDescription

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SAMPLES = FIXTURES / "samples" / "debezium-3.1.1-acc_types-events.jsonl.gz"
TYPES2 = FIXTURES / "types2"


def _sample_messages() -> list[tuple[bytes | None, bytes | None, RenderContext]]:
    with gzip.open(SAMPLES, "rb") as handle:
        records = [orjson.loads(line) for line in handle]
    return [(None if r["key"] is None else orjson.dumps(r["key"]), None if r["value"] is None else orjson.dumps(r["value"]),
             RenderContext()) for r in records]


def _types2_messages(scenario: str) -> list[tuple[bytes | None, bytes | None, RenderContext]]:
    description = json.loads((TYPES2 / f"{scenario}-descriptions.json").read_text())["types2"]
    context = RenderContext.from_description(TableDescription.from_json(description))
    with gzip.open(TYPES2 / f"debezium-3.1.1-{scenario}-events.jsonl.gz", "rt", encoding="utf-8") as handle:
        records = [r for r in map(json.loads, handle) if r["topic"].endswith(".public.types2")]
    return [(None if r["key"] is None else r["key"].encode(), None if r["value"] is None else r["value"].encode(), context)
            for r in records]


def _expected_fields(event) -> str:
    return format_row(list(event.values))[:-1] if len(event.values) > 1 else csv_field(event.values[0])


@pytest.mark.parametrize("source", ["samples", "postgres", "iso_8601", "postgres_verbose"])
def test_every_real_record_gives_the_fields_format_row_gives(source):
    messages = _sample_messages() if source == "samples" else _types2_messages(source)
    checked = 0
    for key, value, context in messages:
        event = decode_message(key, value, context)
        change = decode_csv(key, value, context)
        if event is None:
            assert change is None
            continue
        assert (change.op, change.schema, change.table, change.columns, change.key_columns, change.lsn,
                change.source_ts_ms, change.txid, change.snapshot, change.signature) == (
            event.op, event.schema, event.table, event.columns, event.key_columns, event.lsn,
            event.source_ts_ms, event.txid, event.snapshot, event.signature)
        assert change.fields == ("" if event.op == "t" else _expected_fields(event))
        checked += 1
    assert checked > 90


TRICKY = ["", "plain", "a,b", 'say "hi"', "line1\nline2", "cr\rhere", "\\.", " ", "ñandú", '"', ",", "x" * 3000, None]


def test_text_columns_are_quoted_exactly_as_copy_quotes_them():
    render = compile_row_renderer(["a", "b"], [None, None])
    for first in TRICKY:
        for second in TRICKY:
            assert render({"a": first, "b": second}) == format_row([first, second])[:-1]


def test_converted_text_that_may_need_quoting_is_checked():
    array = converter_for({"type": "array", "field": "xs", "items": {"type": "string"},
                           "parameters": {"__debezium.source.column.type": "_TEXT"}}, "t", RenderContext())
    assert not csv_plain(array)
    render = compile_row_renderer(["id", "xs"], [format_int, array])
    row = {"id": 1, "xs": ["a", "b,c", None]}
    assert render(row) == format_row(["1", array(row["xs"])])[:-1] == '1,"{a,""b,c"",NULL}"'


def test_a_value_of_the_wrong_json_type_fails_the_compiled_path_so_the_generic_one_writes_it():
    render = compile_row_renderer(["id", "name"], [format_int, None])
    with pytest.raises(TypeError):
        render({"id": 1, "name": 5})
    # decode_csv then writes what the buffer always wrote for such a value: its str().
    schema = {"type": "struct", "name": "s.public.t.Envelope", "fields": [
        {"type": "struct", "field": "before", "optional": True, "fields": [{"type": "int32", "field": "id"}, {"type": "string", "field": "name"}]},
        {"type": "struct", "field": "after", "optional": True, "fields": [{"type": "int32", "field": "id"}, {"type": "string", "field": "name"}]},
        {"type": "struct", "field": "source", "fields": []}, {"type": "string", "field": "op"}]}
    value = orjson.dumps({"schema": schema, "payload": {"op": "c", "after": {"id": 1, "name": 5},
                                                        "source": {"lsn": 1, "ts_ms": 2, "schema": "public", "table": "t"}}})
    assert decode_csv(None, value).fields == "1,5"


def test_a_failing_converter_raises_the_same_error_on_both_paths():
    schema = {"type": "struct", "name": "s.public.t.Envelope", "fields": [
        {"type": "struct", "field": "before", "optional": True, "fields": [{"type": "double", "field": "x"}]},
        {"type": "struct", "field": "after", "optional": True, "fields": [{"type": "double", "field": "x"}]},
        {"type": "struct", "field": "source", "fields": []}, {"type": "string", "field": "op"}]}
    value = orjson.dumps({"schema": schema, "payload": {"op": "c", "after": {"x": "oops"},
                                                        "source": {"lsn": 1, "ts_ms": 2, "schema": "public", "table": "t"}}})
    with pytest.raises(EventDecodeError) as generic:
        decode_message(None, value)
    with pytest.raises(EventDecodeError) as compiled:
        decode_csv(None, value)
    assert str(compiled.value) == str(generic.value) and "column 'x'" in str(generic.value)


@pytest.mark.parametrize("value", [b"not json", b'{"schema":null,"payload":{}}', b'{"before":null,"op":"c"}'])
def test_broken_messages_fail_alike(value):
    with pytest.raises(EventDecodeError) as generic:
        decode_message(b"k", value)
    with pytest.raises(EventDecodeError) as compiled:
        decode_csv(b"k", value)
    assert str(compiled.value) == str(generic.value)


def test_plain_converters_never_write_text_that_needs_quoting():
    for value in [0.0, -0.0, 1e300, 5e-324, 123.5, float("nan"), "NaN", "-Infinity"]:
        text = format_float8(value)
        assert text and csv_field(text) == text
