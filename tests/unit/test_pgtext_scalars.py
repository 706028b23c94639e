"""boolean and integer text."""

from __future__ import annotations

import pytest

from cdc_pipeline.pgtext.scalars import format_bool, format_int


@pytest.mark.parametrize(("raw", "expected"), [
    (-32768, "-32768"), (2147483647, "2147483647"), (-9223372036854775808, "-9223372036854775808"), (0, "0"),
])
def test_integers(raw, expected):
    assert format_int(raw) == expected


def test_booleans():
    assert (format_bool(True), format_bool(False)) == ("t", "f")


@pytest.mark.parametrize("raw", [1.0, True, "1"])
def test_an_integer_column_refuses_other_json(raw):
    with pytest.raises(ValueError, match="expected an integer"):
        format_int(raw)


def test_a_boolean_column_refuses_integers():
    with pytest.raises(ValueError, match="expected true or false"):
        format_bool(1)
