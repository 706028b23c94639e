"""bit(n) text from Debezium's io.debezium.data.Bits (little-endian bytes of the bit string's number, zero is
empty) and bit(1)'s boolean. The byte forms are the ones seen on the real chain for the same bit strings."""

from __future__ import annotations

import pytest

from cdc_pipeline.pgtext.bits import bits_converter, format_bit1


@pytest.mark.parametrize(("length", "b64", "expected"), [
    (5, "Fg==", "10110"),
    (8, "gA==", "10000000"),
    (8, "AQ==", "00000001"),
    (8, "", "00000000"),
    (3, "Aw==", "011"),
    (9, "ZwE=", "101100111"),
    (64, "//////////8=", "1" * 64),
    (64, "/////////38=", "0" + "1" * 63),
    (70, "AAAAAAAAAAAg", "1" + "0" * 69),
    (70, "", "0" * 70),
])
def test_bits(length, b64, expected):
    assert bits_converter(length)(b64) == expected


def test_more_bits_than_the_length_is_an_error():
    with pytest.raises(ValueError, match="bit\\(3\\)"):
        bits_converter(3)("CA==")


def test_bit1_is_one_or_zero():
    assert (format_bit1(True), format_bit1(False)) == ("1", "0")
    with pytest.raises(ValueError):
        format_bit1(1)
