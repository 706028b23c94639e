"""The field → converter table: which Debezium forms are rendered, which are refused and with what fix."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from cdc_pipeline.errors import EventDecodeError, UnsupportedTypeError
from cdc_pipeline.pgtext.context import DEFAULT_CONTEXT, RenderContext
from cdc_pipeline.pgtext.types import UNAVAILABLE_VALUE, converter_for, unsupported_columns
from cdc_pipeline.source.catalog import CatalogColumn, TableDescription


def _field(name: str, ftype: str, logical: str | None = None, source_type: str | None = None, **extra) -> dict:
    field = {"type": ftype, "optional": True, "field": name}
    if logical:
        field["name"] = logical
    if source_type:
        field["parameters"] = {"__debezium.source.column.type": source_type}
    field.update(extra)
    return field


def convert(field: dict, raw):
    converter = converter_for(field, "srv.public.t.Envelope", DEFAULT_CONTEXT)
    return raw if converter is None else converter(raw)


@pytest.mark.parametrize(("field", "raw", "expected"), [
    (_field("v", "int16"), -32768, "-32768"),
    (_field("v", "boolean"), True, "t"),
    (_field("v", "float"), 0.1, "0.1"),
    (_field("v", "double"), 1e15, "1e+15"),
    (_field("v", "string"), "ab   ", "ab   "),
    (_field("v", "bytes"), "AP8Q", "\\x00ff10"),
    (_field("v", "int32", "io.debezium.time.Date"), 0, "1970-01-01"),
    (_field("v", "int32", "org.apache.kafka.connect.data.Date"), 0, "1970-01-01"),
    (_field("v", "int64", "io.debezium.time.MicroTime"), 0, "00:00:00"),
    (_field("v", "int64", "io.debezium.time.MicroTimestamp"), 0, "1970-01-01 00:00:00"),
    (_field("v", "string", "io.debezium.time.ZonedTimestamp"), "1970-01-01T00:00:00Z", "1970-01-01 00:00:00+00"),
    (_field("v", "string", "io.debezium.data.Uuid"), "ec9e921f-8066-c66a-e36d-480e3cdfe97f",
     "ec9e921f-8066-c66a-e36d-480e3cdfe97f"),
    (_field("v", "string", "io.debezium.data.Json"), '{"b":"x,y",  "c":null}', '{"b":"x,y",  "c":null}'),
    (_field("v", "string", "io.debezium.data.Enum"), "happy", "happy"),
])
def test_supported_forms(field, raw, expected):
    assert convert(field, raw) == expected


def test_bytea_unavailable_placeholder_decodes_to_constant():
    assert convert(_field("v", "bytes"), "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==") == UNAVAILABLE_VALUE


def test_text_unavailable_placeholder_is_the_constant():
    assert convert(_field("v", "string"), UNAVAILABLE_VALUE) == UNAVAILABLE_VALUE


def test_decimal_takes_the_scale_parameter():
    field = _field("v", "bytes", "org.apache.kafka.connect.data.Decimal",
                   parameters={"scale": "2", "connect.decimal.precision": "12"})
    assert convert(field, "z8c=") == "-123.45"
    assert convert(field, "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==") == UNAVAILABLE_VALUE


def test_decimal_without_scale_is_a_decode_error():
    with pytest.raises(EventDecodeError, match="without a scale"):
        converter_for(_field("v", "bytes", "org.apache.kafka.connect.data.Decimal"), "w", DEFAULT_CONTEXT)


def test_numeric_special_values_only_for_numeric_columns():
    assert convert(_field("n", "string", source_type="NUMERIC"), "NAN") == "NaN"
    assert convert(_field("t", "string", source_type="TEXT"), "NAN") == "NAN"


def _typed(name: str, ftype: str, source_type: str, logical: str | None = None, **parameters) -> dict:
    field = _field(name, ftype, logical)
    field["parameters"] = {"__debezium.source.column.type": source_type, **parameters}
    return field


# Forms as Debezium 3.1.1 delivers them (seen on the real chain), and PostgreSQL's text for the same values.
@pytest.mark.parametrize(("field", "raw", "expected"), [
    (_typed("v", "string", "INTERVAL", "io.debezium.time.Interval"), "P-1Y-2M3DT-4H-5M-6.000001S",
     "-1 years -2 mons +3 days -04:05:06.000001"),
    (_typed("v", "string", "MONEY"), "-1234.56", "-$1,234.56"),
    (_typed("v", "string", "MONEY"), "1.234567890123456E13", "$12,345,678,901,234.56"),
    (_typed("v", "boolean", "BIT", length="1"), True, "1"),
    (_typed("v", "bytes", "BIT", "io.debezium.data.Bits", length="5"), "Fg==", "10110"),
    (_typed("v", "string", "INET"), "192.168.0.1/24", "192.168.0.1/24"),
    (_typed("v", "string", "MACADDR8"), "08:00:2b:01:02:03:04:05", "08:00:2b:01:02:03:04:05"),
    (_typed("v", "string", "XML", "io.debezium.data.Xml"), "<a>x &amp; y</a>", "<a>x &amp; y</a>"),
    (_typed("v", "string", "MOOD", "io.debezium.data.Enum"), "happy ñ", "happy ñ"),
    (_typed("v", "string", "NUMERIC"), "POSITIVE_INFINITY", "Infinity"),
    (_typed("v", "int32", "DATE", "io.debezium.time.Date"), -2147472692, "infinity"),
    (_typed("v", "int64", "TIMESTAMP", "io.debezium.time.MicroTimestamp"), -9223372036832400000, "-infinity"),
])
def test_item3_forms(field, raw, expected):
    assert convert(field, raw) == expected


@pytest.mark.parametrize(("items", "source_type", "raw", "expected"), [
    ({"type": "string"}, "_TEXT", ["a", None, "", "NULL", "with space", 'q"uote', "back\\slash", "ñ"],
     '{a,NULL,"","NULL","with space","q\\"uote","back\\\\slash",ñ}'),
    ({"type": "int32"}, "_INT4", [1, None, 3], "{1,NULL,3}"),
    ({"type": "boolean"}, "_BOOL", [True, False, None], "{t,f,NULL}"),
    ({"type": "double"}, "_FLOAT8", [0.1, 1e300, "NaN", "-Infinity"], "{0.1,1e+300,NaN,-Infinity}"),
    ({"type": "float"}, "_FLOAT4", [1.4e-45, 3.14], "{1e-45,3.14}"),
    ({"type": "bytes"}, "_BYTEA", ["AP8=", None, ""], '{"\\\\x00ff",NULL,"\\\\x"}'),
    ({"type": "string", "name": "io.debezium.time.ZonedTimestamp"}, "_TIMESTAMPTZ",
     ["infinity", "2019-12-31T23:02:03.500000Z"], '{infinity,"2019-12-31 23:02:03.5+00"}'),
    ({"type": "string", "name": "io.debezium.data.Json"}, "_JSON", ['{"a": 1}', "null"], '{"{\\"a\\": 1}","null"}'),
    ({"type": "string"}, "_BPCHAR", ["ab ", "c  "], '{"ab ","c  "}'),
    ({"type": "string"}, "_TEXT", [], "{}"),
])
def test_arrays(items, source_type, raw, expected):
    field = _typed("v", "array", source_type)
    field["items"] = {**items, "optional": True}
    assert convert(field, raw) == expected


@pytest.mark.parametrize(("items", "source_type", "placeholder"), [
    ({"type": "string"}, "_TEXT", ["__debezium_unavailable_value"]),
    ({"type": "int32"}, "_INT4", list(b"__debezium_unavailable_value")),
    ({"type": "int64"}, "_INT8", list(b"__debezium_unavailable_value")),
    ({"type": "bytes"}, "_BYTEA", ["X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ=="]),
    # Java's UUID.nameUUIDFromBytes: an MD5 name-based (version 3) UUID
    ({"type": "string", "name": "io.debezium.data.Uuid"}, "_UUID",
     [str(uuid.UUID(bytes=hashlib.md5(b"__debezium_unavailable_value").digest(), version=3))]),
])
def test_array_unavailable_placeholders(items, source_type, placeholder):
    field = _typed("v", "array", source_type)
    field["items"] = items
    assert convert(field, placeholder) == UNAVAILABLE_VALUE


def test_domains_take_their_base_types_text():
    context = RenderContext(domains=(("DMONEY", "MONEY"), ("DNUM", "NUMERIC"), ("DBIT", "BIT")))
    assert converter_for(_typed("v", "string", "DMONEY"), "w", context)("0.0") == "$0.00"
    assert converter_for(_typed("v", "string", "DNUM"), "w", context)("NAN") == "NaN"
    assert converter_for(_typed("v", "boolean", "DBIT", length="1"), "w", context)(False) == "0"


def test_money_and_interval_follow_the_context():
    context = RenderContext(interval_style="iso_8601", lc_monetary="en_US.UTF-8")
    interval = _typed("v", "string", "INTERVAL", "io.debezium.time.Interval")
    assert converter_for(interval, "w", context)("P0Y0M0DT0H0M-0.5S") == "PT-0.5S"
    assert converter_for(_typed("v", "string", "MONEY"), "w", context)("-0.01") == "-$0.01"


@pytest.mark.parametrize(("field", "context", "fragment"), [
    (_field("v", "int64", "io.debezium.time.MicroDuration"), DEFAULT_CONTEXT, "interval.handling.mode"),
    (_field("v", "struct", "io.debezium.data.VariableScaleDecimal"), DEFAULT_CONTEXT, "decimal.handling.mode"),
    (_field("v", "struct", "io.debezium.data.geometry.Point"), DEFAULT_CONTEXT, "docs/types.md"),
    (_field("v", "string", "io.debezium.data.SomethingNew"), DEFAULT_CONTEXT, "io.debezium.data.SomethingNew"),
    (_field("v", "int64", "org.apache.kafka.connect.data.Timestamp"), DEFAULT_CONTEXT, "time.precision.mode"),
    (_typed("v", "string", "TIMETZ", "io.debezium.time.ZonedTime"), DEFAULT_CONTEXT, "shifted to UTC"),
    (_typed("v", "bytes", "VARBIT", "io.debezium.data.Bits", length="2147483647"), DEFAULT_CONTEXT, "leading zeros"),
    (_field("v", "bytes", "io.debezium.data.Bits", parameters={"length": "5"}), DEFAULT_CONTEXT, "leading zeros"),
    (_typed("v", "string", "INTERVAL", "io.debezium.time.Interval"), RenderContext(interval_style="sql_standard"),
     "IntervalStyle 'sql_standard'"),
    (_typed("v", "string", "MONEY"), RenderContext(lc_monetary="de_DE.UTF-8"), "lc_monetary 'de_DE.UTF-8'"),
    (_typed("v", "string", "HSTORE"), DEFAULT_CONTEXT, "hstore"),
    ({**_typed("v", "array", "_NUMERIC"), "items": {"type": "string"}}, DEFAULT_CONTEXT, "NaN element"),
    ({**_typed("v", "array", "_DATE"), "items": {"type": "int32", "name": "io.debezium.time.Date"}}, DEFAULT_CONTEXT,
     "era"),
    ({**_typed("v", "array", "_MOOD"), "items": {"type": "string", "name": "io.debezium.data.Enum"}}, DEFAULT_CONTEXT,
     "NULL element"),
    ({**_field("v", "array"), "items": {"type": "string"}}, DEFAULT_CONTEXT, "column.propagate.source.type"),
])
def test_unsupported_forms_name_column_type_and_fix(field, context, fragment):
    with pytest.raises(UnsupportedTypeError) as info:
        converter_for(field, "srv.public.t.Envelope", context)
    message = str(info.value)
    assert "column 'v'" in message
    assert fragment in message


# ---------------------------------------------------------------------------------------------- the catalog

def _column(name, type_name, kind="b", category="S", element=None, element_kind=None, base=None, shown=None):
    return CatalogColumn(name=name, attnum=1, format_type=shown or type_name, type_name=type_name, type_kind=kind,
                         type_category=category, element_type_name=element, element_type_kind=element_kind,
                         base_type_name=base)


def _description(*columns, **settings):
    return TableDescription(schema="public", table="t", columns=(_column("k", "int4", category="N"), *columns),
                            key_columns=("k",), settings={"IntervalStyle": "postgres", "lc_monetary": "C", **settings})


@pytest.mark.parametrize("column", [
    _column("iv", "interval", category="T"), _column("m", "money", category="N"), _column("e", "mood", kind="e"),
    _column("ip", "inet", category="I"), _column("c", "cidr", category="I"), _column("mac", "macaddr"),
    _column("mac8", "macaddr8"), _column("b", "bit", category="V", shown="bit(5)"), _column("x", "xml"),
    _column("a", "_text", category="A", element="text", element_kind="b", shown="text[]"),
    _column("a8", "_float8", category="A", element="float8", element_kind="b", shown="double precision[]"),
    _column("tz", "_timestamptz", category="A", element="timestamptz", element_kind="b"),
    _column("dm", "dmoney", kind="d", base="money"),
])
def test_supported_columns_pass(column):
    assert unsupported_columns(_description(column)) == []


@pytest.mark.parametrize(("column", "settings", "fragment"), [
    (_column("vb", "varbit", category="V", shown="bit varying"), {}, "leading zeros"),
    (_column("t", "timetz", category="D", shown="time with time zone"), {}, "shifted to UTC"),
    (_column("iv", "interval", category="T"), {"IntervalStyle": "sql_standard"}, "IntervalStyle = 'postgres'"),
    (_column("m", "money", category="N"), {"lc_monetary": "de_DE.UTF-8"}, "lc_monetary = 'C'"),
    (_column("an", "_numeric", category="A", element="numeric", element_kind="b"), {}, "NaN element"),
    (_column("ad", "_date", category="A", element="date", element_kind="b"), {}, "era"),
    (_column("at", "_timestamp", category="A", element="timestamp", element_kind="b"), {}, "Julian"),
    (_column("ae", "_mood", category="A", element="mood", element_kind="e"), {}, "NULL element"),
    (_column("am", "_money", category="A", element="money", element_kind="b"), {}, "out of its change events"),
    (_column("ai", "_interval", category="A", element="interval", element_kind="b"), {}, "out of its change events"),
    (_column("pt", "point", category="G"), {}, "docs/types.md"),
    (_column("r", "int4range", kind="r", category="R"), {}, "docs/types.md"),
    (_column("h", "hstore", category="U"), {}, "hstore"),
    (_column("dv", "dvarbit", kind="d", base="varbit"), {}, "domain dvarbit over varbit"),
    (_column("c", "mycomposite", kind="c", category="C"), {}, "docs/types.md"),
])
def test_unsupported_columns_name_column_type_and_fix(column, settings, fragment):
    messages = unsupported_columns(_description(column, **settings))
    assert len(messages) == 1
    assert messages[0].startswith(f"public.t.{column.name} ({column.format_type}): ")
    assert fragment in messages[0]
    assert "leave public.t out of table.include.list" in messages[0]


def test_every_refused_column_gets_its_own_message():
    description = _description(_column("vb", "varbit"), _column("ok", "text"), _column("t", "timetz"))
    assert [m.split(" ")[0] for m in unsupported_columns(description)] == ["public.t.vb", "public.t.t"]
