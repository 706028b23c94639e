"""numeric text. Expected strings are PostgreSQL 15's ``x::numeric::text``."""

from __future__ import annotations

import pytest

from cdc_pipeline.pgtext.numeric import decimal_converter, format_numeric_text


@pytest.mark.parametrize(("raw", "text"), [
    ("NAN", "NaN"), ("POSITIVE_INFINITY", "Infinity"), ("NEGATIVE_INFINITY", "-Infinity"), ("3.10", "3.10"),
    ("12345678901234567890.000000001", "12345678901234567890.000000001"), ("0.000", "0.000"),
])
def test_numeric_text_with_debezium_specials_respelled(raw, text):
    # Seen on the real chain: numeric 'NaN' arrives as "NAN" under decimal.handling.mode=string.
    assert format_numeric_text(raw) == text


@pytest.mark.parametrize(("scale", "raw", "expected"), [
    (2, "z8c=", "-123.45"),       # -12345
    (2, "EtaH", "12345.67"),      # 1234567
    (2, "BQ==", "0.05"),          # 5
    (2, "+w==", "-0.05"),         # -5
    (3, "AA==", "0.000"),         # numeric(12,3) zero keeps its scale
    (0, "MDk=", "12345"),
    (-2, "ew==", "12300"),        # numeric(5,-2): 123 * 10^2
])
def test_connect_decimal_uses_schema_scale(scale, raw, expected):
    assert decimal_converter(scale)(raw) == expected
