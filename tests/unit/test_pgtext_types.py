"""The field → converter table: which Debezium forms are rendered, which are refused and with what fix."""

from __future__ import annotations

import pytest

from cdc_pipeline.errors import EventDecodeError, UnsupportedTypeError
from cdc_pipeline.pgtext.context import DEFAULT_CONTEXT
from cdc_pipeline.pgtext.types import UNAVAILABLE_VALUE, converter_for


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


@pytest.mark.parametrize(("field", "fragment"), [
    (_field("v", "int64", "io.debezium.time.MicroDuration"), "MicroDuration"),
    (_field("v", "struct", "io.debezium.data.VariableScaleDecimal"), "decimal.handling.mode=string"),
    (_field("v", "struct", "io.debezium.data.geometry.Point"), "col::text"),
    (_field("v", "string", "io.debezium.data.SomethingNew"), "io.debezium.data.SomethingNew"),
    (_field("v", "int64", "org.apache.kafka.connect.data.Timestamp"), "time.precision.mode=adaptive"),
])
def test_unsupported_forms_name_column_type_and_fix(field, fragment):
    with pytest.raises(UnsupportedTypeError) as info:
        converter_for(field, "srv.public.t.Envelope", DEFAULT_CONTEXT)
    message = str(info.value)
    assert "column 'v'" in message
    assert fragment in message
