"""``money`` as PostgreSQL prints it under the source's ``lc_monetary``.

Under ``decimal.handling.mode=string`` Debezium 3.1.1 delivers the amount without symbol or grouping, in two
forms: streamed changes carry ``BigDecimal.toPlainString()`` (``-1234.56``, ``92233720368547758.07``: exact),
snapshot reads carry ``Double.toString`` of pgjdbc's double (``0.1``, ``1000000.0``, ``1.234567890123456E13``).
A double holds every cent exactly up to 2^46 (about 70 trillion); beyond that a snapshot value cannot be told
from its neighbours and is refused rather than guessed.

PostgreSQL's ``cash_out`` formats with the locale's monetary conventions. pgjdbc can only read the result
back when it looks like ``$1,234.56`` / ``-$1,234.56`` (it drops the first character as the symbol and the
commas), so only locales printing that form are supported; others make the snapshot fail in Debezium itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

__all__ = ["MonetaryConventions", "conventions_for", "format_money_cents", "money_converter"]


@dataclass(frozen=True)
class MonetaryConventions:
    """The lconv fields cash_out uses, for a locale whose sign precedes the symbol, which precedes the amount."""

    currency_symbol: str
    decimal_point: str
    thousands_sep: str
    grouping: int
    frac_digits: int
    negative_sign: str


_DOLLAR = MonetaryConventions("$", ".", ",", 3, 2, "-")

# lc_monetary values (as current_setting reports them) whose money text Debezium delivers and we rebuild.
# C/POSIX have an empty lconv; cash_out then falls back to "$", ".", ",", groups of 3, 2 digits, "-".
_SUPPORTED: dict[str, MonetaryConventions] = {
    "C": _DOLLAR, "POSIX": _DOLLAR, "C.UTF-8": _DOLLAR, "C.utf8": _DOLLAR,
    "en_US.UTF-8": _DOLLAR, "en_US.utf8": _DOLLAR, "en_US": _DOLLAR,
}

SUPPORTED_LC_MONETARY = tuple(_SUPPORTED)

# From 2^46 a double's spacing is 1/64 or more, so two amounts a cent apart can share one double.
_EXACT_DOUBLE_LIMIT = 2.0**46
_INT64 = 1 << 63


def conventions_for(lc_monetary: str) -> MonetaryConventions | None:
    """The conventions of a supported lc_monetary, or None."""
    return _SUPPORTED.get(lc_monetary)


def format_money_cents(units: int, conventions: MonetaryConventions) -> str:
    """cash_out for the stored integer (in 1/10^frac_digits), e.g. -123456 → ``-$1,234.56``."""
    digits = str(abs(units)).rjust(conventions.frac_digits + 1, "0")
    whole, fraction = (digits[: -conventions.frac_digits], digits[-conventions.frac_digits :]) \
        if conventions.frac_digits else (digits, "")
    groups = []
    while len(whole) > conventions.grouping:
        groups.insert(0, whole[-conventions.grouping :])
        whole = whole[: -conventions.grouping]
    groups.insert(0, whole)
    amount = conventions.thousands_sep.join(groups) + (conventions.decimal_point + fraction if fraction else "")
    sign = conventions.negative_sign if units < 0 else ""
    return f"{sign}{conventions.currency_symbol}{amount}"


def parse_debezium_money(text: str, frac_digits: int) -> int:
    """The stored integer (cents for 2 digits) from either of Debezium's forms; raises for an ambiguous double."""
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"{text!r} is not a money amount") from exc
    if not amount.is_finite():
        raise ValueError(f"{text!r} is not a money amount")
    if "E" in text or "e" in text:
        # Only Double.toString uses an exponent (from 1e7 up): the snapshot's double. Exact below 2^46.
        as_double = float(text)
        if abs(as_double) >= _EXACT_DOUBLE_LIMIT or not math.isfinite(as_double):
            raise ValueError(
                f"{text!r} is a snapshot read of a money value of 2^46 (about 70 trillion) or more: Debezium reads "
                "money through a double there, which cannot hold every cent, so the exact amount is lost. "
                "Change the column to numeric(20,2) or update the row so a streamed change carries its exact value"
            )
        amount = Decimal(as_double)
    units = int((amount.scaleb(frac_digits)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    if not -_INT64 <= units < _INT64:
        raise ValueError(f"{text!r} is outside money's range")
    return units


def money_converter(lc_monetary: str) -> Callable[[str], str]:
    """A converter from Debezium's money string to PostgreSQL's text under ``lc_monetary``."""
    conventions = _SUPPORTED.get(lc_monetary)
    if conventions is None:
        raise ValueError(f"lc_monetary {lc_monetary!r} is not one of {', '.join(SUPPORTED_LC_MONETARY)}")

    def convert(text: str) -> str:
        if type(text) is not str:
            raise ValueError(f"expected the money amount as a string (decimal.handling.mode=string), got {text!r}")
        return format_money_cents(parse_debezium_money(text, conventions.frac_digits), conventions)

    return convert
