"""``real`` and ``double precision`` as PostgreSQL 15 prints them: Ryu's shortest round-trip digits.

PostgreSQL's ``float4out``/``float8out`` (extra_float_digits=1, the default) print the fewest digits that
read back as the same float, in fixed notation for decimal exponents -4..5 (float4) or -4..14 (float8) and
as ``1.5e-07`` otherwise; ``-0``, ``NaN``, ``Infinity``, ``-Infinity`` as spelled here.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

__all__ = ["format_float4", "format_float8"]

_float32 = np.float32
# FLT_MAX plus half its ulp: from here a double rounds to float4 infinity.
_FLOAT4_OVERFLOW = 3.4028235677973366e38

# Where the two shortest-digit algorithms part: Python's repr and numpy's Dragon4 accept a decimal lying
# exactly on the rounding boundary (halfway to the neighbouring float) when round-half-even parsing would
# still map it back; PostgreSQL's Ryu (built without STRICTLY_SHORTEST, so acceptBounds = false) never
# does. A short decimal can sit exactly on a boundary only when the boundary is an integer, i.e. from
# 2^53 (float8) or 2^24 (float4) up; there the exact search below decides.
_TWO_53 = 2.0**53
_TWO_24 = 2.0**24


def format_float8(value: float | str) -> str:
    """PostgreSQL 15 ``float8out``: Ryu's shortest digits, fixed notation for exponents -4..14, else ``1e+300``."""
    if type(value) is float and (0.0 < value < 1e15 or -1e15 < value < 0.0):
        # The common case, fast: below 2^53 Python's repr has Ryu's digits, and up to 1e15 its layout too
        # (scientific below 1e-4, written the same way), but for the ".0" it puts after whole numbers.
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, str):
        return _special_float(value)
    if value != value or value in (math.inf, -math.inf):
        return _nonfinite(value)
    if value == 0.0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    negative = value < 0
    x = -value if negative else value
    digits, exp10 = _digits_and_exponent(repr(x))
    if x >= _TWO_53 and _on_rounding_bound(x, digits, exp10, math.ulp(x)):
        digits, exp10 = _shortest_inside(x, math.ulp(x))
    return _render_decimal(negative, digits, exp10, 15)


def format_float4(value: float | str) -> str:
    """PostgreSQL 15 ``float4out``: shortest digits that round-trip *as float4*, fixed for exponents -4..5.

    The JSON number is Java's ``Float.toString`` of the float4; it is rounded to float4 first, so the
    digits are those of the float4 PostgreSQL holds, not of the double the JSON parser produced. numpy's
    Dragon4 "unique" mode (``str`` of a float32) gives PostgreSQL's Ryu digits except on a rounding
    boundary, handled below.
    """
    if isinstance(value, str):
        return _special_float(value)
    if value != value or value in (math.inf, -math.inf):
        return _nonfinite(value)
    if abs(value) >= _FLOAT4_OVERFLOW:
        raise ValueError(f"{value!r} is outside the float4 range")
    negative = value < 0 or (value == 0.0 and math.copysign(1.0, value) < 0)
    f = _float32(-value if negative else value)
    text = str(f)
    if text == "0.0":  # zero, or a double below float4's smallest subnormal
        return "-0" if negative else "0"
    dot = text.find(".")
    if 0 < dot <= 6 and "e" not in text:
        # numpy wrote it positionally (1e-4 <= f < 1e7) and below 1e6: PostgreSQL's fixed notation too.
        text = text[:-2] if text.endswith(".0") else text
        return "-" + text if negative else text
    digits, exp10 = _digits_and_exponent(text)
    if exp10 >= 7:  # f >= 2^24 = 1.6777216e7 is only possible from here
        x = float(f)
        if x >= _TWO_24:
            ulp = 2.0 ** (math.frexp(x)[1] - 24)
            if _on_rounding_bound(x, digits, exp10, ulp):
                digits, exp10 = _shortest_inside(x, ulp)
    return _render_decimal(negative, digits, exp10, 6)


def _digits_and_exponent(text: str) -> tuple[str, int]:
    """The significant digits (no leading or trailing zeros) and the decimal exponent of the first one, from a
    positive number written ``123.45``, ``0.001`` or ``1.5e-07``."""
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    stripped = digits.lstrip("0")
    exp10 = (int(exponent) if exponent else 0) + len(whole) - 1 - (len(digits) - len(stripped))
    return stripped.rstrip("0"), exp10


def _gaps(x: float, ulp: float) -> tuple[Fraction, Fraction]:
    """Half-distances to the float below and above ``x`` (the one below is closer at a power of two)."""
    half_up = Fraction(ulp) / 2
    mantissa = math.frexp(x)[0]
    half_down = half_up / 2 if mantissa == 0.5 else half_up
    return half_down, half_up


def _on_rounding_bound(x: float, digits: str, exp10: int, ulp: float) -> bool:
    """Is the decimal ``digits`` x 10^(exp10 - len + 1) exactly halfway to a neighbouring float of ``x``?

    Only for x >= 2^24 (float4) or 2^53 (float8): x and its ulp are integers there, so the test is in
    integers, scaled by 4 (the half-gap below a power of two is a quarter of the ulp).
    """
    shift = exp10 - len(digits) + 1
    if shift < 0:
        return False  # not an integer, while the boundaries are
    value4 = int(digits) * 10**shift * 4
    exact4 = int(x) * 4
    ulp2 = int(ulp) * 2
    below4 = ulp2 // 2 if math.frexp(x)[0] == 0.5 else ulp2
    return value4 == exact4 + ulp2 or value4 == exact4 - below4


def _shortest_inside(x: float, ulp: float) -> tuple[str, int]:
    """Ryu with acceptBounds=false, by exact arithmetic: fewest digits strictly between the two boundaries,
    then the candidate nearest ``x`` (ties to even), moved inside if rounding put it on the lower edge."""
    exact = Fraction(x)
    half_down, half_up = _gaps(x, ulp)
    low, high = exact - half_down, exact + half_up
    e10 = math.floor(math.log10(x))
    while Fraction(10) ** e10 > exact:
        e10 -= 1
    while Fraction(10) ** (e10 + 1) <= exact:
        e10 += 1
    for length in range(1, 18):
        scale = Fraction(10) ** (e10 - length + 1)
        smallest = math.floor(low / scale) + 1
        largest = math.ceil(high / scale) - 1
        if smallest <= largest:
            nearest = round(exact / scale)
            chosen = min(max(nearest, smallest), largest)
            text = str(chosen)
            exponent = e10 - length + 1 + len(text) - 1
            return text.rstrip("0"), exponent
    raise AssertionError(f"no decimal found for {x!r}")


def _render_decimal(negative: bool, digits: str, exp10: int, fixed_below: int) -> str:
    """Ryu's output layout in PostgreSQL: ``d.ddde+XX`` unless -4 <= exponent < (6 for float4, 15 for float8)."""
    n = len(digits)
    if -4 <= exp10 < fixed_below:
        if exp10 < 0:
            text = "0." + "0" * (-exp10 - 1) + digits
        elif n <= exp10 + 1:
            text = digits + "0" * (exp10 + 1 - n)
        else:
            text = digits[: exp10 + 1] + "." + digits[exp10 + 1 :]
    else:
        mantissa = digits[0] + ("." + digits[1:] if n > 1 else "")
        text = f"{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    return "-" + text if negative else text


def _nonfinite(value: float) -> str:
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _special_float(value: str) -> str:
    # Jackson writes non-finite floats as the JSON strings "NaN", "Infinity", "-Infinity".
    if value in ("NaN", "Infinity", "-Infinity"):
        return value
    raise ValueError(f"expected a JSON number or NaN/Infinity/-Infinity, got the string {value!r}")
