"""Which PostgreSQL text form each Debezium field gets, and which columns cannot be rendered exactly.

A field is identified by its Connect ``type``, its logical ``name`` and, with the connector's
``column.propagate.source.type=.*``, the PostgreSQL type in ``__debezium.source.column.type``. The table
below maps that to a converter from the JSON value to PostgreSQL's text; a known but unfaithful form is
refused with the fix to give the user, and anything unknown is refused rather than guessed.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import Any

from cdc_pipeline.errors import EventDecodeError, UnsupportedTypeError
from cdc_pipeline.pgtext.binary import format_bytea_base64
from cdc_pipeline.pgtext.context import RenderContext
from cdc_pipeline.pgtext.datetimes import (
    format_date_days,
    format_time_micros,
    format_time_millis,
    format_time_nanos,
    format_timestamp_micros,
    format_timestamp_millis,
    format_timestamp_nanos,
    format_zoned_timestamp,
)
from cdc_pipeline.pgtext.floats import format_float4, format_float8
from cdc_pipeline.pgtext.numeric import decimal_converter, format_numeric_text
from cdc_pipeline.pgtext.scalars import format_bool, format_int

__all__ = ["UNAVAILABLE_VALUE", "Converter", "converter_for", "describe_field"]

Converter = Callable[[Any], str]

UNAVAILABLE_VALUE = "__debezium_unavailable_value"
"""Debezium's stand-in for an unchanged TOASTed value (default replica identity): keep the previous value."""

# For a bytes field the placeholder arrives as its UTF-8 bytes, base64-encoded by the JsonConverter.
_UNAVAILABLE_B64 = binascii.b2a_base64(UNAVAILABLE_VALUE.encode(), newline=False).decode()


def _bytes_keeping_placeholder(convert: Converter) -> Converter:
    def convert_or_placeholder(b64: str) -> str:
        if b64 == _UNAVAILABLE_B64:
            return UNAVAILABLE_VALUE
        return convert(b64)

    return convert_or_placeholder


# (Connect type, logical name) → converter; None means the JSON string already is PostgreSQL's text.
_BY_NAME: dict[tuple[str, str | None], Converter | None] = {
    ("int8", None): format_int,
    ("int16", None): format_int,
    ("int32", None): format_int,
    ("int64", None): format_int,
    ("float", None): format_float4,
    ("double", None): format_float8,
    ("boolean", None): format_bool,
    ("string", None): None,  # text, varchar, char(n) (padding kept), numeric under decimal.handling.mode=string
    ("bytes", None): _bytes_keeping_placeholder(format_bytea_base64),
    ("int32", "io.debezium.time.Date"): format_date_days,
    ("int32", "org.apache.kafka.connect.data.Date"): format_date_days,
    ("int32", "io.debezium.time.Time"): format_time_millis,
    ("int64", "io.debezium.time.MicroTime"): format_time_micros,
    ("int64", "io.debezium.time.NanoTime"): format_time_nanos,
    ("int64", "io.debezium.time.Timestamp"): format_timestamp_millis,
    ("int64", "io.debezium.time.MicroTimestamp"): format_timestamp_micros,
    ("int64", "io.debezium.time.NanoTimestamp"): format_timestamp_nanos,
    ("string", "io.debezium.time.ZonedTimestamp"): format_zoned_timestamp,
    ("string", "io.debezium.data.Uuid"): None,
    ("string", "io.debezium.data.Json"): None,  # json keeps its spacing, jsonb is PostgreSQL's normal form
    ("string", "io.debezium.data.Enum"): None,
    ("string", "io.debezium.data.Xml"): None,
    ("string", "io.debezium.data.Ltree"): None,
}

# Known but not faithful: the fix to give the user, by logical name.
_UNSUPPORTED_FIX: dict[str, str] = {
    "io.debezium.data.VariableScaleDecimal": (
        "unconstrained numeric under decimal.handling.mode=precise loses trailing zeros (3.10 arrives as 3.1); "
        "set decimal.handling.mode=string in the connector config"
    ),
    "io.debezium.time.MicroDuration": (
        "interval arrives as approximate microseconds (a month counted as 30.4375 days), which cannot give back "
        "PostgreSQL's text; expose the column as text through a view (col::text) or leave it out of the table list"
    ),
    "io.debezium.time.Interval": (
        "interval's ISO-8601 form is not PostgreSQL's interval text and this pipeline does not rebuild it; "
        "expose the column as text through a view (col::text) or leave it out"
    ),
    "io.debezium.time.ZonedTime": (
        "timetz arrives shifted to UTC, so its original offset, which PostgreSQL prints, is lost; "
        "store it as time or timestamptz, or expose it as text through a view (col::text)"
    ),
    "org.apache.kafka.connect.data.Time": (
        "time under time.precision.mode=connect is truncated to milliseconds; set time.precision.mode=adaptive"
    ),
    "org.apache.kafka.connect.data.Timestamp": (
        "timestamp under time.precision.mode=connect is truncated to milliseconds; set time.precision.mode=adaptive"
    ),
    "io.debezium.data.Bits": "bit strings arrive as little-endian bytes; expose the column as text through a view",
}

# PostgreSQL types (from column.propagate.source.type, when set) whose text Debezium changes even though
# the Connect schema looks like a supported one: catch them instead of writing a wrong value.
_UNFAITHFUL_SOURCE_TYPES: dict[str, str] = {
    "MONEY": "money arrives without its currency symbol and grouping",
    "BIT": "bit(1) arrives as a boolean, PostgreSQL prints 0/1",
    "VARBIT": "bit varying arrives as bytes",
    "HSTORE": "hstore arrives as JSON or a map, not hstore text",
    "INTERVAL": "interval is not delivered as PostgreSQL text",
    "TIMETZ": "timetz arrives shifted to UTC",
}

# numeric under decimal.handling.mode=string: Debezium spells the special values by its own enum names.
_NUMERIC_SOURCE_TYPES = frozenset({"NUMERIC", "DECIMAL"})


def describe_field(field: dict) -> str:
    """``string (io.debezium.data.Json)``: the Connect type and logical name, for messages."""
    name = field.get("name")
    return f"{field.get('type')}" + (f" ({name})" if name else "")


def converter_for(field: dict, where: str, context: RenderContext) -> Converter | None:
    """The converter for one field of the row struct; raises UnsupportedTypeError with the fix."""
    column = field.get("field")
    ftype = field.get("type")
    name = field.get("name")
    parameters = field.get("parameters") or {}
    source_type = str(parameters.get("__debezium.source.column.type", "")).upper()
    if source_type in _UNFAITHFUL_SOURCE_TYPES:
        raise UnsupportedTypeError(
            f"{where}: column {column!r} is PostgreSQL {source_type}, delivered as {describe_field(field)}: "
            f"{_UNFAITHFUL_SOURCE_TYPES[source_type]}. Expose the column as text through a view (col::text) "
            "or leave it out of the captured table"
        )
    if source_type in _NUMERIC_SOURCE_TYPES and ftype == "string" and name is None:
        return format_numeric_text
    if name == "org.apache.kafka.connect.data.Decimal" and ftype == "bytes":
        try:
            scale = int(parameters["scale"])
        except (KeyError, TypeError, ValueError) as exc:
            raise EventDecodeError(f"{where}: column {column!r} is a Decimal without a scale parameter") from exc
        return _bytes_keeping_placeholder(decimal_converter(scale))
    if name in _UNSUPPORTED_FIX:
        raise UnsupportedTypeError(
            f"{where}: column {column!r} has Debezium type {describe_field(field)}, which has no faithful "
            f"PostgreSQL text here: {_UNSUPPORTED_FIX[name]}"
        )
    key = (ftype, name)
    if key in _BY_NAME:
        return _BY_NAME[key]
    if ftype in ("array", "map", "struct"):
        fix = "arrays, composites, hstore maps and geometric types are not written; expose the column as text through a view (col::text)"
    else:
        fix = "expose the column as text through a view (col::text), or leave it out of the captured table"
    raise UnsupportedTypeError(
        f"{where}: column {column!r} has Debezium type {describe_field(field)}, which this pipeline cannot turn "
        f"into PostgreSQL's text faithfully: {fix}"
    )
