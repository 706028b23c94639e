"""real / double precision text. Expected strings come from PostgreSQL 15 itself (``SELECT x::float4::text``,
``x::float8::text`` on a scratch cluster), not from this code."""

from __future__ import annotations

import pytest

from cdc_pipeline.pgtext.floats import format_float4, format_float8


@pytest.mark.parametrize(("raw", "expected"), [
    (1e30, "1e+30"),
    (1.5e-07, "1.5e-07"),
    (123456.7, "123456.7"),
    (1000000.0, "1e+06"),
    (999999.0, "999999"),
    (0.0001, "0.0001"),
    (1e-05, "1e-05"),
    (3.14, "3.14"),
    (1.27843376e8, "1.27843376e+08"),  # shortest decimal lies on a rounding bound: Ryu skips it
    (16777216.0, "1.6777216e+07"),
    (1.401298464324817e-45, "1e-45"),
    (3.4028235e38, "3.4028235e+38"),  # Java's Float.toString(Float.MAX_VALUE)
    (-0.0, "-0"),
    (0.0, "0"),
    ("NaN", "NaN"),
    ("Infinity", "Infinity"),
    ("-Infinity", "-Infinity"),
    (0.1, "0.1"),
])
def test_real_is_float4_shortest_text(raw, expected):
    assert format_float4(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    (1e15, "1e+15"),
    (1e14, "100000000000000"),
    (0.1, "0.1"),
    (42.0, "42"),
    (1e300, "1e+300"),
    (-2.5e-300, "-2.5e-300"),
    (0.3333333333333333, "0.3333333333333333"),
    (1e-05, "1e-05"),
    (1e23, "9.999999999999999e+22"),
    (86514807359638592.0, "8.651480735963859e+16"),
    (123456789012345.6, "123456789012345.6"),
    (5e-324, "5e-324"),
    (-0.0, "-0"),
    ("NaN", "NaN"),
    ("-Infinity", "-Infinity"),
])
def test_double_precision_is_float8_shortest_text(raw, expected):
    assert format_float8(raw) == expected


def test_float4_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="outside the float4 range"):
        format_float4(1e39)


def test_other_strings_are_errors():
    with pytest.raises(ValueError, match="NaN/Infinity"):
        format_float8("nan")
