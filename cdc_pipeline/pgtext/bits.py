"""``bit(n)`` as PostgreSQL prints it: ``n`` characters ``0``/``1``.

Debezium delivers ``bit(1)`` as a Connect boolean and ``bit(n>1)`` as ``io.debezium.data.Bits``: the bit string
read as a binary number (first bit most significant), written as little-endian bytes with the fewest bytes
(zero is empty), the declared ``n`` in the ``length`` parameter. Leading zeros come back from ``n``.
``bit varying`` carries no length of its own value, so its leading zeros are lost: it is refused.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable

__all__ = ["format_bit1", "bits_converter"]


def format_bit1(value: bool) -> str:
    """bit(1) arrives as a boolean; PostgreSQL prints ``1`` or ``0``."""
    if value is True:
        return "1"
    if value is False:
        return "0"
    raise ValueError(f"expected true or false for bit(1), got {value!r}")


def bits_converter(length: int) -> Callable[[str], str]:
    """Base64 little-endian bytes → the ``length`` bits, most significant first."""
    if length < 1:
        raise ValueError(f"bit length {length} must be at least 1")

    def convert(b64: str) -> str:
        number = int.from_bytes(binascii.a2b_base64(b64, strict_mode=True), "little")
        if number >> length:
            raise ValueError(f"{b64!r} holds {number.bit_length()} bits, more than the column's bit({length})")
        return format(number, f"0{length}b")

    return convert
