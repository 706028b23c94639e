"""The JsonConverter envelope ``{"schema": S, "payload": P}`` and the plans built once per schema.

Decoding is the hot path: a message's schema is turned once into a row plan (column names, per-column
converters, the schema signature), cached by the schema's raw bytes and the render context, so that a
message whose schema was seen before is decoded by parsing only its payload and running a flat loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from cdc_pipeline.debezium.csv_rows import RowRenderer, compile_row_renderer
from cdc_pipeline.errors import EventDecodeError
from cdc_pipeline.pgtext.context import RenderContext
from cdc_pipeline.pgtext.types import Converter, converter_for, describe_field

__all__ = ["RowPlan", "value_plan_and_payload", "key_columns_of", "key_columns_only", "short_repr"]

_MAX_CACHED = 4096


@dataclass(frozen=True, slots=True)
class RowPlan:
    """What a value schema tells us once: the row layout, each column's converter and the signature."""

    columns: tuple[str, ...]
    converters: tuple[Converter | None, ...]
    labels: tuple[str, ...]
    signature: tuple[tuple, ...]
    # key column names -> their positions in ``columns``; filled on first use of each key schema.
    key_positions: dict[tuple[str, ...], tuple[int, ...]]
    # The row object to its COPY CSV fields, compiled from columns and converters (debezium.csv_rows).
    render_csv: RowRenderer


def short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


# An unconstrained numeric is described as length 0 without a scale by snapshot reads (JDBC metadata) and as
# length 131089, scale 0 by streamed changes (pgoutput): seen on the real chain. Both mean "no typmod".
_UNCONSTRAINED_NUMERIC = (("0", None), ("131089", "0"))


def _field_signature(field: dict, context: RenderContext) -> tuple:
    parameters = field.get("parameters") or {}
    source_type = parameters.get("__debezium.source.column.type")
    length = parameters.get("__debezium.source.column.length")
    scale = parameters.get("__debezium.source.column.scale")
    if (length, scale) in _UNCONSTRAINED_NUMERIC and context.base_type(str(source_type).upper()) == "NUMERIC":
        length = scale = None
    return (field.get("field"), field.get("type"), field.get("name"), source_type, length, scale,
            bool(field.get("optional", False)))


def _build_value_plan(schema: Any, context: RenderContext) -> RowPlan:
    if not isinstance(schema, dict) or schema.get("type") != "struct":
        raise EventDecodeError(
            f"the value schema is {short_repr(schema)}, not a Debezium envelope struct: "
            "is this topic written by the Debezium PostgreSQL connector without an unwrap SMT?"
        )
    fields = {f.get("field"): f for f in schema.get("fields") or () if isinstance(f, dict)}
    missing = [name for name in ("op", "source", "after", "before") if name not in fields]
    if missing:
        raise EventDecodeError(
            f"the value schema {schema.get('name')!r} has no {missing} field(s), so it is not a Debezium change "
            "event envelope; remove any ExtractNewRecordState (unwrap) transform from the connector"
        )
    row = fields["after"] if fields["after"].get("fields") else fields["before"]
    where = str(schema.get("name") or "value schema")
    columns, converters, labels, signature = [], [], [], []
    for field in row.get("fields") or ():
        columns.append(field.get("field"))
        converters.append(converter_for(field, where, context))
        labels.append(describe_field(field))
        signature.append(_field_signature(field, context))
    if not columns:
        raise EventDecodeError(f"{where}: the row struct has no fields")
    return RowPlan(tuple(columns), tuple(converters), tuple(labels), tuple(signature), {},
                   compile_row_renderer(columns, converters))


def _build_key_plan(schema: Any, context: RenderContext | None) -> tuple[str, ...]:
    if not isinstance(schema, dict) or schema.get("type") != "struct" or not schema.get("fields"):
        raise EventDecodeError(
            f"the key schema is {short_repr(schema)}, expected a struct of the primary-key columns"
        )
    return tuple(field.get("field") for field in schema["fields"])


_SCHEMA_PREFIX = b'{"schema":'
_PAYLOAD_MARK = b',"payload":'

# context -> (schema bytes -> plan). A context is a handful per process (one per source's settings).
_value_plans: dict[RenderContext, dict[bytes, RowPlan]] = {}
_key_plans: dict[bytes, tuple[str, ...]] = {}  # a key's columns do not depend on the context


# The last context used, its plans and the last schema seen, as one tuple (replaced whole, so threads never
# see a mixed set): a consumer passes the same context object for a whole batch, and a topic's messages
# nearly all carry the same schema. An identity check of the context and one comparison of the message's
# first bytes with the last envelope prefix (``{"schema":S,"payload":``) then replace hashing the dataclass
# and slicing and hashing the schema's kilobytes for every message.
_last_value: tuple[RenderContext | None, dict[bytes, RowPlan], bytes, RowPlan | None] = (None, {}, b"", None)
_last_key: tuple[bytes, tuple[str, ...] | None] = (b"", None)


def value_plan_and_payload(raw: bytes, context: RenderContext) -> tuple[RowPlan, Any]:
    """The row plan of a value message's schema (cached) and its parsed payload."""
    global _last_value
    last_context, plans, prefix, plan = _last_value
    if context is last_context:
        if plan is not None and raw.startswith(prefix) and raw.endswith(b"}"):
            try:
                return plan, orjson.loads(memoryview(raw)[len(prefix) : -1])
            except orjson.JSONDecodeError:
                pass  # e.g. a bare NaN token: the checked path below accepts it
    else:
        plans = _value_plans.setdefault(context, {})
        _last_value = (context, plans, b"", None)
    plan, payload = _split_envelope(raw, "value", plans, _build_value_plan, context)
    envelope_prefix = _prefix_of(raw)
    if envelope_prefix is not None:
        _last_value = (context, plans, envelope_prefix, plan)
    return plan, payload


def key_columns_of(raw: bytes) -> tuple[tuple[str, ...], Any]:
    """The key's column names, in the key schema's order (cached), and its parsed payload."""
    return _split_envelope(raw, "key", _key_plans, _build_key_plan, None)


def key_columns_only(raw: bytes) -> tuple[str, ...]:
    """The key's column names, without parsing its payload when its schema is the last one seen."""
    global _last_key
    prefix, columns = _last_key
    if columns is not None and raw.startswith(prefix):
        return columns
    columns, _ = key_columns_of(raw)
    envelope_prefix = _prefix_of(raw)
    if envelope_prefix is not None:
        _last_key = (envelope_prefix, columns)
    return columns


def _prefix_of(raw: bytes) -> bytes | None:
    """``{"schema":S,"payload":`` of a compact JsonConverter message, or None for any other layout."""
    if raw.startswith(_SCHEMA_PREFIX):
        cut = raw.find(_PAYLOAD_MARK)
        if cut > 0:
            return raw[: cut + len(_PAYLOAD_MARK)]
    return None


def _split_envelope(
    raw: bytes, what: str, plans: dict, build: Callable[[Any, Any], Any], context: RenderContext | None
) -> tuple[Any, Any]:
    """Return (plan, payload). Fast path: JsonConverter writes ``{"schema":S,"payload":P}`` compactly, so S's
    bytes key the cache and only P is parsed. Anything else falls back to a full, checked parse."""
    if raw.startswith(_SCHEMA_PREFIX):
        cut = raw.find(_PAYLOAD_MARK)
        if cut > 0 and raw.endswith(b"}"):
            plan = plans.get(raw[len(_SCHEMA_PREFIX) : cut])
            if plan is not None:
                try:
                    return plan, orjson.loads(raw[cut + len(_PAYLOAD_MARK) : -1])
                except orjson.JSONDecodeError:
                    pass  # e.g. a bare NaN token: the full parse below accepts it
    document = _loads(raw, what)
    if not isinstance(document, dict) or "schema" not in document or "payload" not in document:
        raise EventDecodeError(
            f"the {what} is JSON but not a JsonConverter envelope with 'schema' and 'payload' "
            f"(starts {short_repr(raw[:80])}): the connector likely runs with {what}.converter.schemas.enable=false; "
            f"set {what}.converter.schemas.enable=true so each message carries the types needed to decode it"
        )
    schema = document["schema"]
    if schema is None:
        raise EventDecodeError(
            f"the {what} envelope has a null schema: set {what}.converter.schemas.enable=true in the connector"
        )
    schema_key = orjson.dumps(schema)
    plan = plans.get(schema_key)
    if plan is None:
        plan = build(schema, context)
        if len(plans) >= _MAX_CACHED:
            plans.clear()
        plans[schema_key] = plan
        # Also remember the compact bytes of this exact message so the next one takes the fast path.
        if raw.startswith(_SCHEMA_PREFIX) and (cut := raw.find(_PAYLOAD_MARK)) > 0:
            plans[raw[len(_SCHEMA_PREFIX) : cut]] = plan
    return plan, document["payload"]


def _loads(raw: bytes, what: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        # Jackson can be configured to write NaN/Infinity as bare tokens, which only the stdlib accepts.
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventDecodeError(
            f"the {what} bytes are not JSON ({exc}; starts {short_repr(bytes(raw[:80]))}): the topic must be "
            f"written with org.apache.kafka.connect.json.JsonConverter as {what}.converter"
        ) from exc
