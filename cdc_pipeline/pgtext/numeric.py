"""``numeric`` as PostgreSQL prints it.

Under ``decimal.handling.mode=string`` Debezium delivers Java's ``BigDecimal.toPlainString`` of the value,
which is PostgreSQL's own text for finite values (``3.10``, ``0.000``), and its own enum names for the
special values. Under ``precise`` a ``numeric(p,s)`` arrives as Connect's Decimal: a two's-complement
unscaled integer with the scale as a schema parameter.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable

__all__ = ["format_numeric_text", "decimal_converter"]

_NUMERIC_SPECIALS = {"NAN": "NaN", "POSITIVE_INFINITY": "Infinity", "NEGATIVE_INFINITY": "-Infinity"}


def format_numeric_text(value: str) -> str:
    """Numeric text as delivered, with Debezium's ``NAN``/``POSITIVE_INFINITY``/``NEGATIVE_INFINITY`` respelled.

    Only for a column known to be numeric: a text column may hold the string ``NAN``.
    """
    if type(value) is not str:
        raise ValueError(f"expected numeric text, got {value!r}")
    return _NUMERIC_SPECIALS.get(value, value)


def decimal_converter(scale: int) -> Callable[[str], str]:
    """org.apache.kafka.connect.data.Decimal: base64 two's-complement unscaled value; PostgreSQL prints
    exactly ``scale`` fraction digits for numeric(p,s), which is what the schema's scale parameter holds."""

    def convert(b64: str) -> str:
        unscaled = int.from_bytes(binascii.a2b_base64(b64, strict_mode=True), "big", signed=True)
        if scale <= 0:
            return str(unscaled * 10**-scale)
        sign = "-" if unscaled < 0 else ""
        digits = str(abs(unscaled)).rjust(scale + 1, "0")
        return f"{sign}{digits[:-scale]}.{digits[-scale:]}"

    return convert
