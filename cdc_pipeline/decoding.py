"""Debezium change events (JsonConverter with schemas) to rows of PostgreSQL COPY text.

Every value is turned into the exact text PostgreSQL's output function prints for it with
``DateStyle=ISO`` and ``TimeZone=UTC``, because destiny.csv must equal ``COPY ... TO STDOUT (FORMAT csv)``.
The value's Kafka Connect schema (type plus logical ``name``) says how Debezium encoded it; the converter
settings this relies on are in ``include/connectors/*.json`` and explained in ``docs/types.md``.

Decoding is the hot path: a message's schema is turned once into a list of per-column converters, cached
by the schema's raw bytes, so that a message whose schema was seen before is decoded by parsing only its
payload and running a flat loop.
"""

from __future__ import annotations

import binascii
import datetime as _dt
import json
import math
import re
from collections.abc import Callable
from fractions import Fraction
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from cdc_pipeline.errors import EventDecodeError, UnsupportedTypeError

__all__ = [
    "UNAVAILABLE_VALUE",
    "ChangeEvent",
    "decode_message",
    "format_source_timestamp",
    "format_float4",
    "format_float8",
]

UNAVAILABLE_VALUE = "__debezium_unavailable_value"
"""Debezium's stand-in for an unchanged TOASTed value (default replica identity): keep the previous value."""

# For a bytea column the placeholder arrives as its UTF-8 bytes, base64-encoded by the JsonConverter.
_UNAVAILABLE_B64 = binascii.b2a_base64(UNAVAILABLE_VALUE.encode(), newline=False).decode()

OPS = frozenset({"c", "u", "d", "r"})

# Debezium encodes PostgreSQL's date/timestamp 'infinity' with these sentinels (PostgresValueConverter:
# POSITIVE_/NEGATIVE_INFINITY_LOCAL_DATE = -5877611-06-21/22 and pgjdbc's DATE_POSITIVE/NEGATIVE_INFINITY
# read as epoch microseconds). The dates lie outside PostgreSQL's range, so they cannot be real values.
_DATE_POS_INF = -2147472693
_DATE_NEG_INF = -2147472692
_TS_POS_INF_US = 9223372036825200000
_TS_NEG_INF_US = -9223372036832400000

# PostgreSQL's date range: 4713-11-24 BC (Julian day 0) to 5874897-12-31 AD, as days since 1970-01-01.
_MIN_DAY = -2440588
_MAX_DAY = 2145042905

_US_PER_DAY = 86_400_000_000
_f32_scientific = np.format_float_scientific
# FLT_MAX plus half its ulp: from here a double rounds to float4 infinity.
_FLOAT4_OVERFLOW = 3.4028235677973366e38

Converter = Callable[[Any], str]


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One decoded row change. ``values`` are COPY text forms aligned with ``columns``; None is NULL.

    For ``op='d'`` the values come from ``before``: under the default replica identity only the key columns
    are set there. A value equal to :data:`UNAVAILABLE_VALUE` means "unchanged, keep the old one".
    ``key`` is the values of ``key_columns`` (primary key, in the key schema's order); ``lsn`` and
    ``source_ts_ms`` are ``source.lsn`` and ``source.ts_ms`` (commit time); ``snapshot`` is true for reads
    of the initial snapshot.
    """

    op: str
    schema: str
    table: str
    columns: tuple[str, ...]
    key_columns: tuple[str, ...]
    values: tuple[str | None, ...]
    key: tuple[str | None, ...]
    lsn: int
    source_ts_ms: int
    snapshot: bool


# --------------------------------------------------------------------------------------------------------
# Text forms of the scalar types


def format_float8(value: float | str) -> str:
    """PostgreSQL 15 ``float8out``: Ryu's shortest digits, fixed notation for exponents -4..14, else ``1e+300``."""
    if isinstance(value, str):
        return _special_float(value)
    if value != value or value in (math.inf, -math.inf):
        return _nonfinite(value)
    if value == 0.0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    negative = value < 0
    x = -value if negative else value
    text = repr(x)
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    stripped = digits.lstrip("0")
    exp10 = (int(exponent) if exponent else 0) + len(whole) - 1 - (len(digits) - len(stripped))
    digits = stripped.rstrip("0")
    if x >= _TWO_53 and _on_rounding_bound(x, digits, exp10, math.ulp(x)):
        digits, exp10 = _shortest_inside(x, math.ulp(x))
    return _render_decimal(negative, digits, exp10, 15)


def format_float4(value: float | str) -> str:
    """PostgreSQL 15 ``float4out``: shortest digits that round-trip *as float4*, fixed for exponents -4..5.

    The JSON number is Java's ``Float.toString`` of the float4; it is rounded to float4 first, so the
    digits are those of the float4 PostgreSQL holds, not of the double the JSON parser produced. numpy's
    Dragon4 "unique" mode gives PostgreSQL's Ryu digits except on a rounding boundary, handled below.
    """
    if isinstance(value, str):
        return _special_float(value)
    if value != value or value in (math.inf, -math.inf):
        return _nonfinite(value)
    if abs(value) >= _FLOAT4_OVERFLOW:
        raise ValueError(f"{value!r} is outside the float4 range")
    f = np.float32(value)
    if f == 0.0:
        return "-0" if np.signbit(f) else "0"
    negative = bool(f < 0)
    if negative:
        f = -f
    text = _f32_scientific(f, unique=True, trim="-")
    mantissa, _, exponent = text.partition("e")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    exp10 = int(exponent)
    if f >= _TWO_24:
        x = float(f)
        ulp = 2.0 ** (math.frexp(x)[1] - 24)
        if _on_rounding_bound(x, digits, exp10, ulp):
            digits, exp10 = _shortest_inside(x, ulp)
    return _render_decimal(negative, digits, exp10, 6)


# Where the two shortest-digit algorithms part: Python's repr and numpy's Dragon4 accept a decimal lying
# exactly on the rounding boundary (halfway to the neighbouring float) when round-half-even parsing would
# still map it back; PostgreSQL's Ryu (built without STRICTLY_SHORTEST, so acceptBounds = false) never
# does. A short decimal can sit exactly on a boundary only when the boundary is an integer, i.e. from
# 2^53 (float8) or 2^24 (float4) up; there the exact search below decides.
_TWO_53 = 2.0**53
_TWO_24 = 2.0**24


def _gaps(x: float, ulp: float) -> tuple[Fraction, Fraction]:
    """Half-distances to the float below and above ``x`` (the one below is closer at a power of two)."""
    half_up = Fraction(ulp) / 2
    mantissa = math.frexp(x)[0]
    half_down = half_up / 2 if mantissa == 0.5 else half_up
    return half_down, half_up


def _on_rounding_bound(x: float, digits: str, exp10: int, ulp: float) -> bool:
    shift = exp10 - len(digits) + 1
    if shift < 0:
        return False  # not an integer, while the boundaries are
    value = int(digits) * 10**shift
    half_down, half_up = _gaps(x, ulp)
    exact = int(x)
    return value == exact + half_up or value == exact - half_down


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


def _format_bool(value: bool) -> str:
    if value is True:
        return "t"
    if value is False:
        return "f"
    raise ValueError(f"expected true or false, got {value!r}")


def _format_int(value: int) -> str:
    if type(value) is not int:
        raise ValueError(f"expected an integer, got {value!r}")
    return str(value)


def _format_date_days(days: int) -> str:
    """Days since 1970-01-01 (io.debezium.time.Date) as PostgreSQL prints a date: ``0044-03-15 BC``."""
    if days == _DATE_POS_INF:
        return "infinity"
    if days == _DATE_NEG_INF:
        return "-infinity"
    if not _MIN_DAY <= days <= _MAX_DAY:
        raise ValueError(f"{days} days from 1970-01-01 is outside PostgreSQL's date range")
    return _date_text(days)


def _date_text(days: int) -> str:
    ordinal = days + 719163
    if 1 <= ordinal <= 3652059:  # 0001-01-01 .. 9999-12-31: the C implementation
        return _dt.date.fromordinal(ordinal).isoformat()
    year, month, day = _civil_from_days(days)
    if year <= 0:
        return f"{1 - year:04d}-{month:02d}-{day:02d} BC"
    return f"{year:04d}-{month:02d}-{day:02d}"


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """Proleptic Gregorian (as PostgreSQL uses) for any day count; year 0 is 1 BC (H. Hinnant's algorithm)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return year, month, day


def _days_from_civil(year: int, month: int, day: int) -> int:
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _time_text(micros: int) -> str:
    """Microseconds since midnight as ``HH:MM:SS[.ffffff]`` with trailing zeros of the fraction dropped."""
    seconds, fraction = divmod(micros, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    if fraction:
        return f"{hour:02d}:{minute:02d}:{second:02d}.{fraction:06d}".rstrip("0")
    return f"{hour:02d}:{minute:02d}:{second:02d}"


def _format_time_micros(micros: int) -> str:
    # 24:00:00 is a valid PostgreSQL time, hence <= one day.
    if type(micros) is not int or not 0 <= micros <= _US_PER_DAY:
        raise ValueError(f"{micros!r} is not a time of day in microseconds (0..86400000000)")
    return _time_text(micros)


def _format_time_millis(millis: int) -> str:
    return _format_time_micros(millis * 1000)


def _nanos_to_micros(nanos: int) -> int:
    micros, rest = divmod(nanos, 1000)
    if rest:
        raise ValueError(f"{nanos} ns has sub-microsecond digits PostgreSQL cannot hold")
    return micros


def _format_time_nanos(nanos: int) -> str:
    return _format_time_micros(_nanos_to_micros(nanos))


_EPOCH = _dt.datetime(1970, 1, 1)
_FAST_MIN_US = -62135596800000000  # 0001-01-01 00:00:00
_FAST_MAX_US = 253402300799999999  # 9999-12-31 23:59:59.999999


def _timestamp_text(micros: int, suffix: str) -> str:
    if _FAST_MIN_US <= micros <= _FAST_MAX_US:  # years 1..9999: datetime's C code
        moment = _EPOCH + _dt.timedelta(microseconds=micros)
        text = moment.isoformat(" ")
        return (text.rstrip("0") if moment.microsecond else text) + suffix
    days, in_day = divmod(micros, _US_PER_DAY)
    date = _date_text(days)
    if date.endswith(" BC"):
        return f"{date[:-3]} {_time_text(in_day)}{suffix} BC"
    return f"{date} {_time_text(in_day)}{suffix}"


def _format_timestamp_micros(micros: int) -> str:
    """Epoch microseconds (io.debezium.time.MicroTimestamp) as PostgreSQL prints a timestamp."""
    if micros == _TS_POS_INF_US:
        return "infinity"
    if micros == _TS_NEG_INF_US:
        return "-infinity"
    if type(micros) is not int:
        raise ValueError(f"expected epoch microseconds, got {micros!r}")
    return _timestamp_text(micros, "")


def _format_timestamp_millis(millis: int) -> str:
    if millis == _TS_POS_INF_US // 1000:
        return "infinity"
    if millis == _TS_NEG_INF_US // 1000:
        return "-infinity"
    return _format_timestamp_micros(millis * 1000)


def _format_timestamp_nanos(nanos: int) -> str:
    return _format_timestamp_micros(_nanos_to_micros(nanos))


_ZONED = re.compile(
    r"([+-]?)(\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d(?::\d\d)?)"
)

# The common case: UTC ("Z"), a four-digit year AD, at most microseconds.
_ZONED_UTC_AD = re.compile(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d{1,6})?Z")


def _format_zoned_timestamp(text: str) -> str:
    """io.debezium.time.ZonedTimestamp (ISO-8601, Java's proleptic year) as timestamptz text in UTC.

    ``2026-11-24T01:02:03.250000Z`` becomes ``2026-11-24 01:02:03.25+00``; ``-0043-...`` (44 BC) gets
    PostgreSQL's `` BC`` suffix after the offset.
    """
    fast = _ZONED_UTC_AD.fullmatch(text)
    if fast is not None and not text.startswith("0000"):
        fraction = fast.group(3)
        if fraction:
            fraction = fraction.rstrip("0")
            if fraction == ".":
                fraction = ""
        return f"{fast.group(1)} {fast.group(2)}{fraction or ''}+00"
    if text in ("infinity", "-infinity") or text == UNAVAILABLE_VALUE:
        return text
    match = _ZONED.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an ISO-8601 zoned timestamp")
    sign, year, month, day, hour, minute, second, fraction, offset = match.groups()
    fraction = (fraction or "").ljust(9, "0")
    if fraction[6:] != "000":
        raise ValueError(f"{text!r} has sub-microsecond digits PostgreSQL cannot hold")
    days = _days_from_civil(-int(year) if sign == "-" else int(year), int(month), int(day))
    micros = (
        days * _US_PER_DAY
        + ((int(hour) * 60 + int(minute)) * 60 + int(second)) * 1_000_000
        + int(fraction[:6])
    )
    if offset != "Z":
        parts = [int(p) for p in offset[1:].split(":")]
        shift = (parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0)) * 1_000_000
        micros -= shift if offset[0] == "+" else -shift
    return _timestamp_text(micros, "+00")


def _format_bytea(b64: str) -> str:
    """Base64 (binary.handling.mode=bytes through the JsonConverter) as bytea's hex output ``\\x0aff``."""
    if b64 == _UNAVAILABLE_B64:
        return UNAVAILABLE_VALUE
    return "\\x" + binascii.a2b_base64(b64, strict_mode=True).hex()


def _decimal_converter(scale: int) -> Converter:
    """org.apache.kafka.connect.data.Decimal: base64 two's-complement unscaled value; PostgreSQL prints
    exactly ``scale`` fraction digits for numeric(p,s), which is what the schema's scale parameter holds."""

    def convert(b64: str) -> str:
        if b64 == _UNAVAILABLE_B64:
            return UNAVAILABLE_VALUE
        unscaled = int.from_bytes(binascii.a2b_base64(b64, strict_mode=True), "big", signed=True)
        if scale <= 0:
            return str(unscaled * 10**-scale)
        sign = "-" if unscaled < 0 else ""
        digits = str(abs(unscaled)).rjust(scale + 1, "0")
        return f"{sign}{digits[:-scale]}.{digits[-scale:]}"

    return convert


# --------------------------------------------------------------------------------------------------------
# Schema → converters

# (Connect type, logical name) → converter; None means the JSON string already is PostgreSQL's text.
_BY_NAME: dict[tuple[str, str | None], Converter | None] = {
    ("int8", None): _format_int,
    ("int16", None): _format_int,
    ("int32", None): _format_int,
    ("int64", None): _format_int,
    ("float", None): format_float4,
    ("double", None): format_float8,
    ("boolean", None): _format_bool,
    ("string", None): None,  # text, varchar, char(n) (padding kept), numeric under decimal.handling.mode=string
    ("bytes", None): _format_bytea,
    ("int32", "io.debezium.time.Date"): _format_date_days,
    ("int32", "org.apache.kafka.connect.data.Date"): _format_date_days,
    ("int32", "io.debezium.time.Time"): _format_time_millis,
    ("int64", "io.debezium.time.MicroTime"): _format_time_micros,
    ("int64", "io.debezium.time.NanoTime"): _format_time_nanos,
    ("int64", "io.debezium.time.Timestamp"): _format_timestamp_millis,
    ("int64", "io.debezium.time.MicroTimestamp"): _format_timestamp_micros,
    ("int64", "io.debezium.time.NanoTimestamp"): _format_timestamp_nanos,
    ("string", "io.debezium.time.ZonedTimestamp"): _format_zoned_timestamp,
    ("string", "io.debezium.data.Uuid"): None,
    ("string", "io.debezium.data.Json"): None,  # json keeps its spacing, jsonb is PostgreSQL's normal form
    ("string", "io.debezium.data.Enum"): None,
    ("string", "io.debezium.data.Xml"): None,
    ("string", "io.debezium.data.Ltree"): None,
}

# Known but not faithful: the fix to give the user, by logical name.
_UNSUPPORTED_FIX: dict[str, str] = {
    "io.debezium.data.VariableScaleDecimal": (
        "unconstrained numeric under decimal.handling.mode=precise loses trailing zeros (3.10 arrives as 3.1); "
        "set decimal.handling.mode=string in the connector config"
    ),
    "io.debezium.time.MicroDuration": (
        "interval arrives as approximate microseconds (a month counted as 30.4375 days), which cannot give back "
        "PostgreSQL's text; expose the column as text through a view (col::text) or leave it out of the table list"
    ),
    "io.debezium.time.Interval": (
        "interval's ISO-8601 form is not PostgreSQL's interval text and this pipeline does not rebuild it; "
        "expose the column as text through a view (col::text) or leave it out"
    ),
    "io.debezium.time.ZonedTime": (
        "timetz arrives shifted to UTC, so its original offset, which PostgreSQL prints, is lost; "
        "store it as time or timestamptz, or expose it as text through a view (col::text)"
    ),
    "org.apache.kafka.connect.data.Time": (
        "time under time.precision.mode=connect is truncated to milliseconds; set time.precision.mode=adaptive"
    ),
    "org.apache.kafka.connect.data.Timestamp": (
        "timestamp under time.precision.mode=connect is truncated to milliseconds; set time.precision.mode=adaptive"
    ),
    "io.debezium.data.Bits": "bit strings arrive as little-endian bytes; expose the column as text through a view",
}

# PostgreSQL types (from column.propagate.source.type, when set) whose text Debezium changes even though
# the Connect schema looks like a supported one: catch them instead of writing a wrong value.
_UNFAITHFUL_SOURCE_TYPES: dict[str, str] = {
    "MONEY": "money arrives without its currency symbol and grouping",
    "BIT": "bit(1) arrives as a boolean, PostgreSQL prints 0/1",
    "VARBIT": "bit varying arrives as bytes",
    "HSTORE": "hstore arrives as JSON or a map, not hstore text",
    "INTERVAL": "interval is not delivered as PostgreSQL text",
    "TIMETZ": "timetz arrives shifted to UTC",
}


# numeric under decimal.handling.mode=string arrives as Java's BigDecimal text, except PostgreSQL's special
# values, which Debezium spells by its own enum names. Only a column known to be numeric (the connector's
# column.propagate.source.type) may be translated: a text column may hold the string "NAN".
_NUMERIC_SOURCE_TYPES = frozenset({"NUMERIC", "DECIMAL"})
_NUMERIC_SPECIALS = {"NAN": "NaN", "POSITIVE_INFINITY": "Infinity", "NEGATIVE_INFINITY": "-Infinity"}


def _format_numeric_text(value: str) -> str:
    if type(value) is not str:
        raise ValueError(f"expected numeric text, got {value!r}")
    return _NUMERIC_SPECIALS.get(value, value)


@dataclass(frozen=True, slots=True)
class _RowPlan:
    columns: tuple[str, ...]
    converters: tuple[Converter | None, ...]
    labels: tuple[str, ...]
    # key column names -> their positions in ``columns``; filled on first use of each key schema.
    key_positions: dict[tuple[str, ...], tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class _EventPlan:
    """What a value schema tells us once: the row layout and where op/source/before/after are."""

    row: _RowPlan


_MAX_CACHED = 4096
_value_plans: dict[bytes, _EventPlan] = {}
_key_plans: dict[bytes, tuple[str, ...]] = {}


def _describe(field: dict) -> str:
    name = field.get("name")
    return f"{field.get('type')}" + (f" ({name})" if name else "")


def _converter_for(field: dict, where: str) -> Converter | None:
    column = field.get("field")
    ftype = field.get("type")
    name = field.get("name")
    parameters = field.get("parameters") or {}
    source_type = str(parameters.get("__debezium.source.column.type", "")).upper()
    if source_type in _UNFAITHFUL_SOURCE_TYPES:
        raise UnsupportedTypeError(
            f"{where}: column {column!r} is PostgreSQL {source_type}, delivered as {_describe(field)}: "
            f"{_UNFAITHFUL_SOURCE_TYPES[source_type]}. Expose the column as text through a view (col::text) "
            "or leave it out of the captured table"
        )
    if source_type in _NUMERIC_SOURCE_TYPES and ftype == "string" and name is None:
        return _format_numeric_text
    if name == "org.apache.kafka.connect.data.Decimal" and ftype == "bytes":
        try:
            scale = int(parameters["scale"])
        except (KeyError, TypeError, ValueError) as exc:
            raise EventDecodeError(f"{where}: column {column!r} is a Decimal without a scale parameter") from exc
        return _decimal_converter(scale)
    if name in _UNSUPPORTED_FIX:
        raise UnsupportedTypeError(
            f"{where}: column {column!r} has Debezium type {_describe(field)}, which has no faithful "
            f"PostgreSQL text here: {_UNSUPPORTED_FIX[name]}"
        )
    key = (ftype, name)
    if key in _BY_NAME:
        return _BY_NAME[key]
    if ftype in ("array", "map", "struct"):
        fix = "arrays, composites, hstore maps and geometric types are not written; expose the column as text through a view (col::text)"
    else:
        fix = "expose the column as text through a view (col::text), or leave it out of the captured table"
    raise UnsupportedTypeError(
        f"{where}: column {column!r} has Debezium type {_describe(field)}, which this pipeline cannot turn "
        f"into PostgreSQL's text faithfully: {fix}"
    )


def _build_value_plan(schema: Any) -> _EventPlan:
    if not isinstance(schema, dict) or schema.get("type") != "struct":
        raise EventDecodeError(
            f"the value schema is {_short(schema)}, not a Debezium envelope struct: "
            "is this topic written by the Debezium PostgreSQL connector without an unwrap SMT?"
        )
    fields = {f.get("field"): f for f in schema.get("fields") or () if isinstance(f, dict)}
    missing = [name for name in ("op", "source", "after", "before") if name not in fields]
    if missing:
        raise EventDecodeError(
            f"the value schema {schema.get('name')!r} has no {missing} field(s), so it is not a Debezium change "
            "event envelope; remove any ExtractNewRecordState (unwrap) transform from the connector"
        )
    row = fields["after"] if fields["after"].get("fields") else fields["before"]
    where = str(schema.get("name") or "value schema")
    columns, converters, labels = [], [], []
    for field in row.get("fields") or ():
        columns.append(field.get("field"))
        converters.append(_converter_for(field, where))
        labels.append(_describe(field))
    if not columns:
        raise EventDecodeError(f"{where}: the row struct has no fields")
    return _EventPlan(_RowPlan(tuple(columns), tuple(converters), tuple(labels), {}))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


# --------------------------------------------------------------------------------------------------------
# Messages

_SCHEMA_PREFIX = b'{"schema":'
_PAYLOAD_MARK = b',"payload":'


def _split_envelope(raw: bytes, what: str, plans: dict, build: Callable[[Any], Any]) -> tuple[Any, Any]:
    """Return (plan, payload). Fast path: JsonConverter writes ``{"schema":S,"payload":P}`` compactly, so S's
    bytes key the cache and only P is parsed. Anything else falls back to a full, checked parse."""
    if raw.startswith(_SCHEMA_PREFIX):
        cut = raw.find(_PAYLOAD_MARK)
        if cut > 0 and raw.endswith(b"}"):
            schema_bytes = raw[len(_SCHEMA_PREFIX) : cut]
            plan = plans.get(schema_bytes)
            if plan is not None:
                try:
                    return plan, orjson.loads(raw[cut + len(_PAYLOAD_MARK) : -1])
                except orjson.JSONDecodeError:
                    pass  # e.g. a bare NaN token: the full parse below accepts it
    document = _loads(raw, what)
    if not isinstance(document, dict) or "schema" not in document or "payload" not in document:
        raise EventDecodeError(
            f"the {what} is JSON but not a JsonConverter envelope with 'schema' and 'payload' "
            f"(starts {_short(raw[:80])}): the connector likely runs with {what}.converter.schemas.enable=false; "
            f"set {what}.converter.schemas.enable=true so each message carries the types needed to decode it"
        )
    schema = document["schema"]
    if schema is None:
        raise EventDecodeError(
            f"the {what} envelope has a null schema: set {what}.converter.schemas.enable=true in the connector"
        )
    schema_key = orjson.dumps(schema)
    plan = plans.get(schema_key)
    if plan is None:
        plan = build(schema)
        if len(plans) >= _MAX_CACHED:
            plans.clear()
        plans[schema_key] = plan
        # Also remember the compact bytes of this exact message so the next one takes the fast path.
        if raw.startswith(_SCHEMA_PREFIX) and (cut := raw.find(_PAYLOAD_MARK)) > 0:
            plans[raw[len(_SCHEMA_PREFIX) : cut]] = plan
    return plan, document["payload"]


def _loads(raw: bytes, what: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        # Jackson can be configured to write NaN/Infinity as bare tokens, which only the stdlib accepts.
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventDecodeError(
            f"the {what} bytes are not JSON ({exc}; starts {_short(bytes(raw[:80]))}): the topic must be written "
            f"with org.apache.kafka.connect.json.JsonConverter as {what}.converter"
        ) from exc


def _build_key_plan(schema: Any) -> tuple[str, ...]:
    if not isinstance(schema, dict) or schema.get("type") != "struct" or not schema.get("fields"):
        raise EventDecodeError(f"the key schema is {_short(schema)}, expected a struct of the primary-key columns")
    return tuple(field.get("field") for field in schema["fields"])


def decode_message(key: bytes | None, value: bytes | None) -> ChangeEvent | None:
    """Decode one Kafka record of a Debezium PostgreSQL topic; None for a delete's tombstone (null value).

    Raises EventDecodeError for bytes that are not a Debezium JSON envelope (with the likely cause and fix)
    and UnsupportedTypeError for a column whose type has no faithful text form.
    """
    if value is None:
        return None
    plan, payload = _split_envelope(value, "value", _value_plans, _build_value_plan)
    if not isinstance(payload, dict):
        raise EventDecodeError(f"the value payload is {_short(payload)}, expected a Debezium change event object")
    op = payload.get("op")
    if op not in OPS:
        if op == "t":
            raise EventDecodeError(
                "op 't' (TRUNCATE) cannot be applied row by row; keep skipped.operations=t (the default) "
                "and reload the table with a new snapshot if it was truncated"
            )
        raise EventDecodeError(f"unknown op {op!r}: expected one of c, u, d, r (is this a Debezium change event?)")
    row = payload.get("before") if op == "d" else payload.get("after")
    if not isinstance(row, dict):
        side = "before" if op == "d" else "after"
        raise EventDecodeError(
            f"op {op!r} event has {side}={_short(row)}; expected the row. For deletes the table needs a primary "
            "key or REPLICA IDENTITY FULL"
        )
    source = payload.get("source")
    if not isinstance(source, dict):
        raise EventDecodeError("the event has no 'source' block, so it is not a Debezium change event")
    rowplan = plan.row
    values = []
    append = values.append
    get = row.get
    column = None
    raw_value = None
    try:
        for column, convert in zip(rowplan.columns, rowplan.converters):
            raw_value = get(column)
            if raw_value is None or convert is None:
                append(raw_value)
            else:
                append(convert(raw_value))
    except UnsupportedTypeError:
        raise
    except Exception as exc:  # noqa: BLE001 - every converter failure becomes one precise decode error
        index = rowplan.columns.index(column)
        raise EventDecodeError(
            f"{source.get('schema')}.{source.get('table')}: column {column!r} ({rowplan.labels[index]}) "
            f"value {_short(raw_value)} cannot be decoded: {exc}"
        ) from exc
    if key is None:
        key_columns: tuple[str, ...] = ()
    else:
        key_columns, _ = _split_envelope(key, "key", _key_plans, _build_key_plan)
    positions = rowplan.key_positions.get(key_columns)
    if positions is None:
        unknown = [name for name in key_columns if name not in rowplan.columns]
        if unknown:
            raise EventDecodeError(f"key columns {unknown} are not columns of the row {list(rowplan.columns)}")
        positions = tuple(rowplan.columns.index(name) for name in key_columns)
        rowplan.key_positions[key_columns] = positions
    lsn = source.get("lsn")
    ts_ms = source.get("ts_ms")
    if type(lsn) is not int or type(ts_ms) is not int:
        raise EventDecodeError(f"source block lacks an integer lsn/ts_ms (lsn={lsn!r}, ts_ms={ts_ms!r})")
    snapshot = source.get("snapshot")
    return ChangeEvent(
        op=op,
        schema=source.get("schema") or "",
        table=source.get("table") or "",
        columns=rowplan.columns,
        key_columns=key_columns,
        values=tuple(values),
        key=tuple(values[i] for i in positions),
        lsn=lsn,
        source_ts_ms=ts_ms,
        snapshot=snapshot not in (None, "false", False),
    )


def format_source_timestamp(ts_ms: int) -> str:
    """Commit time (source.ts_ms) as timestamptz text in UTC, e.g. ``2026-11-24 01:02:03.123+00``."""
    return _timestamp_text(ts_ms * 1000, "+00")
