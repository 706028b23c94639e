"""``interval`` as PostgreSQL 15 prints it under each ``IntervalStyle``, rebuilt from Debezium's ISO-8601 form.

With ``interval.handling.mode=string`` Debezium 3.1.1 delivers ``Interval.toIsoString(years, months, days,
hours, minutes, seconds)``: pgjdbc's ``PGInterval`` parses the text PostgreSQL sent (each field keeps its own
sign: ``-1 years -2 mons +3 days -04:05:06.5`` becomes years -1, months -2, days 3, hours -4, minutes -5,
seconds -6.5), and Debezium prints ``"P" + years + "Y" + months + "M" + days + "DT" + hours + "H" + minutes +
"M" + BigDecimal.valueOf(seconds).stripTrailingZeros().toPlainString() + "S"`` after truncating the seconds
to 9 decimals. ``PGInterval`` keeps whole microseconds, so rounding those seconds to the microsecond gives
back PostgreSQL's exact value: ``months = years*12 + months``, ``days``, ``micros`` of the time part.

Under ``IntervalStyle=sql_standard`` ``PGInterval`` misreads PostgreSQL's text (``1-2 3 4:05:06`` loses
years, months and days), so that style is refused (see :mod:`cdc_pipeline.pgtext.types`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal

__all__ = ["parse_debezium_interval", "format_interval", "interval_converter", "FAITHFUL_STYLES"]

# The styles in which pgjdbc reads PostgreSQL's interval text correctly (checked on the real chain).
FAITHFUL_STYLES = ("postgres", "postgres_verbose", "iso_8601")

_ISO = re.compile(r"P(-?\d+)Y(-?\d+)M(-?\d+)DT(-?\d+)H(-?\d+)M(-?\d+(?:\.\d+)?)S")
_US_PER_SECOND = 1_000_000
_US_PER_MINUTE = 60 * _US_PER_SECOND
_US_PER_HOUR = 60 * _US_PER_MINUTE
_MICRO = Decimal(1) / _US_PER_SECOND
_INT64 = 1 << 63
_INT32 = 1 << 31


def parse_debezium_interval(text: str) -> tuple[int, int, int]:
    """``P1Y2M3DT4H5M6.78S`` → (months, days, microseconds), PostgreSQL's own three fields."""
    match = _ISO.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not Debezium's interval form PnYnMnDTnHnMnS")
    years, months, days, hours, minutes = (int(match.group(i)) for i in range(1, 6))
    seconds = Decimal(match.group(6))
    micros = (hours * 3600 + minutes * 60) * _US_PER_SECOND + int(
        (seconds * _US_PER_SECOND).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    )
    total_months = years * 12 + months
    if not (-_INT32 <= total_months < _INT32 and -_INT32 <= days < _INT32 and -_INT64 <= micros < _INT64):
        raise ValueError(f"{text!r} is outside PostgreSQL's interval range")
    return total_months, days, micros


def _fields(months: int, micros: int) -> tuple[int, int, int, int, int, int]:
    """PostgreSQL's interval2itm: C division, truncating toward zero, so every field keeps the sign."""
    year, mon = _tdiv(months, 12)
    hour, rest = _tdiv(micros, _US_PER_HOUR)
    minute, rest = _tdiv(rest, _US_PER_MINUTE)
    sec, usec = _tdiv(rest, _US_PER_SECOND)
    return year, mon, hour, minute, sec, usec


def _tdiv(a: int, b: int) -> tuple[int, int]:
    q = abs(a) // b
    q = -q if a < 0 else q
    return q, a - q * b


def _seconds(sec: int, usec: int, fill_zeros: bool) -> str:
    """AppendSeconds: |sec|, two digits when ``fill_zeros``, then the fraction without trailing zeros."""
    text = f"{abs(sec):02d}" if fill_zeros else str(abs(sec))
    if usec:
        text += "." + f"{abs(usec):06d}".rstrip("0")
    return text


def format_interval(months: int, days: int, micros: int, style: str) -> str:
    """PostgreSQL 15's EncodeInterval for one IntervalStyle ('postgres', 'postgres_verbose',
    'sql_standard', 'iso_8601')."""
    year, mon, hour, minute, sec, usec = _fields(months, micros)
    if style == "postgres":
        return _postgres(year, mon, days, hour, minute, sec, usec)
    if style == "iso_8601":
        return _iso_8601(year, mon, days, hour, minute, sec, usec)
    if style == "postgres_verbose":
        return _verbose(year, mon, days, hour, minute, sec, usec)
    if style == "sql_standard":
        return _sql_standard(year, mon, days, hour, minute, sec, usec)
    raise ValueError(f"unknown IntervalStyle {style!r}")


def _postgres(year: int, mon: int, mday: int, hour: int, minute: int, sec: int, usec: int) -> str:
    parts: list[str] = []
    is_before = False  # each nonzero field sets it for (only) the next one, as in AddPostgresIntPart
    for value, unit in ((year, "year"), (mon, "mon"), (mday, "day")):
        if value == 0:
            continue
        parts.append(f"{'+' if is_before and value > 0 else ''}{value} {unit}{'' if value == 1 else 's'}")
        is_before = value < 0
    if not parts or hour or minute or sec or usec:
        minus = hour < 0 or minute < 0 or sec < 0 or usec < 0
        sign = "-" if minus else ("+" if is_before else "")
        parts.append(f"{sign}{abs(hour):02d}:{abs(minute):02d}:{_seconds(sec, usec, True)}")
    return " ".join(parts)


def _iso_8601(year: int, mon: int, mday: int, hour: int, minute: int, sec: int, usec: int) -> str:
    if not (year or mon or mday or hour or minute or sec or usec):
        return "PT0S"
    text = "P"
    for value, unit in ((year, "Y"), (mon, "M"), (mday, "D")):
        if value:
            text += f"{value}{unit}"
    if hour or minute or sec or usec:
        text += "T"
    for value, unit in ((hour, "H"), (minute, "M")):
        if value:
            text += f"{value}{unit}"
    if sec or usec:
        text += ("-" if sec < 0 or usec < 0 else "") + _seconds(sec, usec, False) + "S"
    return text


def _verbose(year: int, mon: int, mday: int, hour: int, minute: int, sec: int, usec: int) -> str:
    text = "@"
    is_zero = True
    is_negative = False
    for value, unit in ((year, "year"), (mon, "mon"), (mday, "day"), (hour, "hour"), (minute, "min")):
        if value == 0:
            continue
        if is_zero:  # the first nonzero field decides "ago"; the others are printed relative to it
            is_negative = value < 0
            value = abs(value)
        elif is_negative:
            value = -value
        text += f" {value} {unit}{'' if value == 1 else 's'}"
        is_zero = False
    if sec or usec:
        text += " "
        if sec < 0 or (sec == 0 and usec < 0):
            if is_zero:
                is_negative = True
            elif not is_negative:
                text += "-"
        elif is_negative:
            text += "-"
        text += _seconds(sec, usec, False) + (" sec" + ("s" if abs(sec) != 1 or usec else ""))
        is_zero = False
    if is_zero:
        text += " 0"
    if is_negative:
        text += " ago"
    return text


def _sql_standard(year: int, mon: int, mday: int, hour: int, minute: int, sec: int, usec: int) -> str:
    fields = (year, mon, mday, hour, minute, sec, usec)
    has_negative = any(v < 0 for v in fields)
    has_positive = any(v > 0 for v in fields)
    has_year_month = bool(year or mon)
    has_day_time = bool(mday or hour or minute or sec or usec)
    standard = not (has_negative and has_positive) and not (has_year_month and has_day_time)
    prefix = ""
    if has_negative and standard:
        prefix = "-"
        year, mon, mday, hour, minute, sec, usec = (-v for v in fields)
    if not has_negative and not has_positive:
        return "0"
    if not standard:
        year_sign = "-" if year < 0 or mon < 0 else "+"
        day_sign = "-" if mday < 0 else "+"
        sec_sign = "-" if hour < 0 or minute < 0 or sec < 0 or usec < 0 else "+"
        return (f"{year_sign}{abs(year)}-{abs(mon)} {day_sign}{abs(mday)} "
                f"{sec_sign}{abs(hour)}:{abs(minute):02d}:{_seconds(sec, usec, True)}")
    if has_year_month:
        return f"{prefix}{year}-{mon}"
    if mday:
        return f"{prefix}{mday} {hour}:{minute:02d}:{_seconds(sec, usec, True)}"
    return f"{prefix}{hour}:{minute:02d}:{_seconds(sec, usec, True)}"


def interval_converter(style: str) -> Callable[[str], str]:
    """A converter from Debezium's ISO form to the text PostgreSQL prints under ``style``."""
    if style not in FAITHFUL_STYLES:
        raise ValueError(f"IntervalStyle {style!r} is not one Debezium delivers faithfully ({FAITHFUL_STYLES})")

    def convert(text: str) -> str:
        months, days, micros = parse_debezium_interval(text)
        return format_interval(months, days, micros, style)

    return convert
