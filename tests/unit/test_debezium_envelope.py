"""The schema-plan cache: one plan per (schema, context), the fast path and the full parse agree."""

from __future__ import annotations

import orjson

from cdc_pipeline.debezium import envelope
from cdc_pipeline.pgtext.context import DEFAULT_CONTEXT, RenderContext


def _message(schema: dict, payload: dict) -> bytes:
    return orjson.dumps({"schema": schema, "payload": payload})


ENVELOPE = {
    "type": "struct", "name": "srv.public.t.Envelope",
    "fields": [
        {"type": "struct", "field": "before", "optional": True, "fields": [{"type": "int32", "field": "id"}]},
        {"type": "struct", "field": "after", "optional": True, "fields": [{"type": "int32", "field": "id"}]},
        {"type": "struct", "field": "source", "fields": []},
        {"type": "string", "field": "op"},
    ],
}


def test_the_plan_is_built_once_per_schema_and_context():
    raw = _message(ENVELOPE, {"op": "c", "after": {"id": 1}})
    first, payload = envelope.value_plan_and_payload(raw, DEFAULT_CONTEXT)
    again, _ = envelope.value_plan_and_payload(raw, DEFAULT_CONTEXT)
    other, _ = envelope.value_plan_and_payload(raw, RenderContext(interval_style="iso_8601"))
    assert payload == {"op": "c", "after": {"id": 1}}
    assert again is first
    assert other is not first and other.columns == first.columns


def test_spaced_json_finds_the_same_plan():
    compact = _message(ENVELOPE, {"op": "c"})
    first, _ = envelope.value_plan_and_payload(compact, DEFAULT_CONTEXT)
    spaced, _ = envelope.value_plan_and_payload(b'{ "schema" : ' + orjson.dumps(ENVELOPE) + b', "payload": {} }',
                                                DEFAULT_CONTEXT)
    assert spaced is first


def test_key_columns_in_key_schema_order():
    key = _message({"type": "struct", "fields": [{"type": "int32", "field": "b"}, {"type": "string", "field": "a"}]},
                   {"b": 1, "a": "x"})
    assert envelope.key_columns_of(key) == (("b", "a"), {"b": 1, "a": "x"})
