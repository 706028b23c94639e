"""``boolean`` and the integer types as PostgreSQL prints them."""

from __future__ import annotations

__all__ = ["format_bool", "format_int"]


def format_bool(value: bool) -> str:
    """``t`` or ``f``."""
    if value is True:
        return "t"
    if value is False:
        return "f"
    raise ValueError(f"expected true or false, got {value!r}")


def format_int(value: int) -> str:
    """Decimal digits with a ``-`` sign; a JSON float or bool here is a wrong schema, not an integer."""
    if type(value) is not int:
        raise ValueError(f"expected an integer, got {value!r}")
    return str(value)
