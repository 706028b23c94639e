"""Which PostgreSQL text form each Debezium field gets, and which catalog columns cannot be rendered exactly.

A field is identified by its Connect ``type``, its logical ``name`` and, with the connector's
``column.propagate.source.type=.*``, the PostgreSQL type in ``__debezium.source.column.type`` (a domain's
own name, resolved to its base through the RenderContext). :func:`converter_for` maps that to a converter
from the JSON value to PostgreSQL's text; a known but unfaithful form is refused with the fix, and anything
unknown is refused rather than guessed. :func:`unsupported_columns` says the same from the catalog, before
the first event. What Debezium 3.1.1 delivers for each type was read on the real chain (docs/types.md).
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cdc_pipeline.errors import EventDecodeError, UnsupportedTypeError
from cdc_pipeline.pgtext.arrays import array_converter
from cdc_pipeline.pgtext.binary import format_bytea_base64
from cdc_pipeline.pgtext.bits import bits_converter, format_bit1
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
from cdc_pipeline.pgtext.intervals import FAITHFUL_STYLES, interval_converter
from cdc_pipeline.pgtext.money import SUPPORTED_LC_MONETARY, money_converter
from cdc_pipeline.pgtext.numeric import decimal_converter, format_numeric_text
from cdc_pipeline.pgtext.refusals import column_refusal, refusal_fix
from cdc_pipeline.pgtext.scalars import format_bool, format_int

if TYPE_CHECKING:
    from cdc_pipeline.source.catalog import TableDescription

__all__ = ["UNAVAILABLE_VALUE", "Converter", "converter_for", "csv_plain", "describe_field", "unsupported_columns"]

Converter = Callable[[Any], str]

UNAVAILABLE_VALUE = "__debezium_unavailable_value"
"""Debezium's stand-in for an unchanged TOASTed value (default replica identity): keep the previous value."""

_PLACEHOLDER = UNAVAILABLE_VALUE.encode()
# The placeholder as each field form carries it (UnchangedToastedPlaceholder): bytes as base64, text arrays as
# a one-element list, int/bigint arrays as the placeholder's byte values, uuid arrays as a name-based UUID.
_UNAVAILABLE_B64 = binascii.b2a_base64(_PLACEHOLDER, newline=False).decode()


def _name_uuid(data: bytes) -> str:
    digest = bytearray(hashlib.md5(data).digest())  # noqa: S324 - Java's UUID.nameUUIDFromBytes, not security
    digest[6] = (digest[6] & 0x0F) | 0x30
    digest[8] = (digest[8] & 0x3F) | 0x80
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_UNAVAILABLE_ARRAYS = (
    [UNAVAILABLE_VALUE], [_UNAVAILABLE_B64], list(_PLACEHOLDER), [_name_uuid(_PLACEHOLDER)],
)


def _keeping_placeholder(convert: Converter, placeholders: tuple, *, plain: bool = False) -> Converter:
    def convert_or_placeholder(value: Any) -> str:
        if value in placeholders:
            return UNAVAILABLE_VALUE
        return convert(value)

    if plain:
        convert_or_placeholder.csv_plain = True  # type: ignore[attr-defined]
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
    # text, varchar, char(n) (padding kept), inet, cidr, macaddr, macaddr8: PostgreSQL's own output text.
    ("string", None): None,
    ("bytes", None): _keeping_placeholder(format_bytea_base64, (_UNAVAILABLE_B64,), plain=True),
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

# Array element types (upper-case typname, as in "_INT4") Debezium delivers faithfully, and how each
# element's JSON value becomes its text. Others are refused; refusals.py says why.
_ARRAY_ELEMENTS: dict[str, Converter | None] = {
    "TEXT": None, "VARCHAR": None, "BPCHAR": None, "UUID": None, "JSON": None, "JSONB": None,
    "INET": None, "CIDR": None, "MACADDR": None, "MACADDR8": None,
    "INT2": format_int, "INT4": format_int, "INT8": format_int, "BOOL": format_bool,
    "FLOAT4": format_float4, "FLOAT8": format_float8, "BYTEA": format_bytea_base64,
    "TIMESTAMPTZ": format_zoned_timestamp,
}
ARRAY_ELEMENT_TYPES = frozenset(name.lower() for name in _ARRAY_ELEMENTS)

_NUMERIC_SOURCE_TYPES = frozenset({"NUMERIC", "DECIMAL"})

# Converters that build their text from numbers, never pass input text through: it is never empty and never
# holds a comma, quote, CR or LF, so a CSV writer need not check it (csv_plain).
_CSV_PLAIN: frozenset[Converter] = frozenset({
    format_int, format_bool, format_float4, format_float8, format_date_days, format_time_millis, format_time_micros,
    format_time_nanos, format_timestamp_millis, format_timestamp_micros, format_timestamp_nanos,
    format_zoned_timestamp, format_bit1, format_bytea_base64,
})


def csv_plain(convert: Converter | None) -> bool:
    """True when ``convert``'s text never needs CSV quoting (see _CSV_PLAIN); None (the JSON string passed
    through) is not."""
    return convert is not None and (convert in _CSV_PLAIN or getattr(convert, "csv_plain", False))


def describe_field(field: dict) -> str:
    """``string (io.debezium.data.Json)``: the Connect type and logical name, for messages."""
    name = field.get("name")
    return f"{field.get('type')}" + (f" ({name})" if name else "")


def _refuse(where: str, field: dict, source_type: str, why: str) -> UnsupportedTypeError:
    shown = f"PostgreSQL {source_type.lower()}, " if source_type else ""
    return UnsupportedTypeError(
        f"{where}: column {field.get('field')!r} ({shown}delivered as {describe_field(field)}) cannot be written "
        f"as PostgreSQL's text: {why}"
    )


def converter_for(field: dict, where: str, context: RenderContext) -> Converter | None:
    """The converter for one field of the row struct; raises UnsupportedTypeError with the fix."""
    ftype = field.get("type")
    name = field.get("name")
    parameters = field.get("parameters") or {}
    source_type = context.base_type(str(parameters.get("__debezium.source.column.type", "")).upper())
    if ftype == "array":
        return _array_converter(field, source_type, where)
    fix = refusal_fix(source_type.lower()) if source_type else None
    if fix is not None:
        raise _refuse(where, field, source_type, fix)
    if source_type == "MONEY":
        if context.lc_monetary not in SUPPORTED_LC_MONETARY:
            raise _refuse(where, field, source_type, refusal_fix("money", lc_monetary=context.lc_monetary))
        return money_converter(context.lc_monetary)
    if name == "io.debezium.time.Interval":
        if context.interval_style not in FAITHFUL_STYLES:
            raise _refuse(where, field, source_type, refusal_fix("interval", interval_style=context.interval_style))
        return interval_converter(context.interval_style)
    if source_type == "BIT" and ftype == "boolean":
        return format_bit1
    if name == "io.debezium.data.Bits":
        if source_type != "BIT":
            raise _refuse(where, field, source_type, refusal_fix("varbit"))
        return _keeping_placeholder(bits_converter(int(parameters.get("length", 0))), (_UNAVAILABLE_B64,), plain=True)
    if source_type in _NUMERIC_SOURCE_TYPES and ftype == "string" and name is None:
        return format_numeric_text
    if name == "org.apache.kafka.connect.data.Decimal" and ftype == "bytes":
        try:
            scale = int(parameters["scale"])
        except (KeyError, TypeError, ValueError) as exc:
            raise EventDecodeError(f"{where}: column {field.get('field')!r} is a Decimal without a scale parameter") from exc
        return _keeping_placeholder(decimal_converter(scale), (_UNAVAILABLE_B64,), plain=True)
    fix = refusal_fix(name) if name else None
    if fix is not None:
        raise _refuse(where, field, source_type, fix)
    key = (ftype, name)
    if key in _BY_NAME:
        return _BY_NAME[key]
    raise _refuse(where, field, source_type, refusal_fix("unknown"))


def _array_converter(field: dict, source_type: str, where: str) -> Converter:
    if not source_type.startswith("_"):
        raise _refuse(where, field, source_type, refusal_fix("array without source type"))
    element_type = source_type[1:]
    items = field.get("items") or {}
    if items.get("name") == "io.debezium.data.Enum":
        raise _refuse(where, field, source_type, refusal_fix("enum[]"))
    if element_type not in _ARRAY_ELEMENTS:
        raise _refuse(where, field, source_type, refusal_fix(f"{element_type.lower()}[]"))
    convert = array_converter(_ARRAY_ELEMENTS[element_type], text_elements=items.get("type") == "string")
    return _keeping_placeholder(convert, (UNAVAILABLE_VALUE, *_UNAVAILABLE_ARRAYS))


def unsupported_columns(description: TableDescription) -> list[str]:
    """One message per column of ``description`` that cannot be rendered exactly: the column, its type, why,
    and the fix. [] when every column can. Unknown types are refused, not guessed."""
    settings = description.settings
    messages = []
    for column in description.columns:
        why = column_refusal(
            column,
            interval_style=str(settings.get("IntervalStyle", "postgres")).lower(),
            lc_monetary=str(settings.get("lc_monetary", "C")),
            array_elements=ARRAY_ELEMENT_TYPES,
        )
        if why is not None:
            messages.append(
                f"{description.qualified_table}.{column.name} ({column.format_type}): {why}; destiny.csv holds "
                f"every column COPY prints, so until then leave {description.qualified_table} out of "
                "table.include.list"
            )
    return messages
