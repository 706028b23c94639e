"""``date``, ``time``, ``timestamp`` and ``timestamptz`` as PostgreSQL prints them (DateStyle=ISO, TimeZone=UTC).

Debezium delivers epoch counts (days, milli/micro/nanoseconds) and, for timestamptz, an ISO-8601 string in
UTC with Java's proleptic year (``-0043`` is 44 BC). PostgreSQL prints years <= 0 as ``0044-03-15 BC``, more
than four digits past 9999, and drops trailing zeros of the fraction.
"""

from __future__ import annotations

import datetime as _dt
import re

__all__ = [
    "format_date_days",
    "format_time_micros",
    "format_time_millis",
    "format_time_nanos",
    "format_timestamp_micros",
    "format_timestamp_millis",
    "format_timestamp_nanos",
    "format_zoned_timestamp",
    "timestamp_text",
    "time_text",
    "days_from_civil",
]

# How Debezium 3.1.1 encodes PostgreSQL's 'infinity' / '-infinity' (seen on the real chain):
# - streamed dates: PostgresValueConverter's POSITIVE_/NEGATIVE_INFINITY_LOCAL_DATE, -5877611-06-21 and -22;
# - dates read by the snapshot (and array elements): pgjdbc's DATE_POSITIVE/NEGATIVE_INFINITY milliseconds
#   through java.sql.Date.toLocalDate(), whose int day count overflows; that conversion uses the Connect
#   JVM's time zone, so a day either side is accepted;
# - timestamps, both paths: pgjdbc's infinity milliseconds read as epoch microseconds.
# Every one lies far outside PostgreSQL's date range, so none can be a real value.
DATE_POS_INF = -2147472692
DATE_NEG_INF = -2147472691
SNAPSHOT_DATE_POS_INF = -622191234
SNAPSHOT_DATE_NEG_INF = -625821272
TS_POS_INF_US = 9223372036825200000
TS_NEG_INF_US = -9223372036832400000

# PostgreSQL's date range: 4713-11-24 BC (Julian day 0) to 5874897-12-31 AD, as days since 1970-01-01.
_MIN_DAY = -2440588
_MAX_DAY = 2145042905

US_PER_DAY = 86_400_000_000


def format_date_days(days: int) -> str:
    """Days since 1970-01-01 (io.debezium.time.Date) as PostgreSQL prints a date: ``0044-03-15 BC``."""
    if type(days) is int and -719162 <= days <= 2932896:  # 0001-01-01 .. 9999-12-31: the C implementation
        return _date_from_ordinal(days + 719163).isoformat()
    if type(days) is not int or not _MIN_DAY <= days <= _MAX_DAY:
        if days == DATE_POS_INF or (type(days) is int and abs(days - SNAPSHOT_DATE_POS_INF) <= 1):
            return "infinity"
        if days == DATE_NEG_INF or (type(days) is int and abs(days - SNAPSHOT_DATE_NEG_INF) <= 1):
            return "-infinity"
        raise ValueError(f"{days!r} days from 1970-01-01 is outside PostgreSQL's date range")
    return _date_text(days)


_date_from_ordinal = _dt.date.fromordinal


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


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date; year 0 is 1 BC."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def time_text(micros: int) -> str:
    """Microseconds since midnight as ``HH:MM:SS[.ffffff]`` with trailing zeros of the fraction dropped."""
    seconds, fraction = divmod(micros, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    if fraction:
        return f"{hour:02d}:{minute:02d}:{second:02d}.{fraction:06d}".rstrip("0")
    return f"{hour:02d}:{minute:02d}:{second:02d}"


def format_time_micros(micros: int) -> str:
    # 24:00:00 is a valid PostgreSQL time, hence <= one day.
    if type(micros) is not int or not 0 <= micros <= US_PER_DAY:
        raise ValueError(f"{micros!r} is not a time of day in microseconds (0..86400000000)")
    return time_text(micros)


def format_time_millis(millis: int) -> str:
    return format_time_micros(millis * 1000)


def nanos_to_micros(nanos: int) -> int:
    micros, rest = divmod(nanos, 1000)
    if rest:
        raise ValueError(f"{nanos} ns has sub-microsecond digits PostgreSQL cannot hold")
    return micros


def format_time_nanos(nanos: int) -> str:
    return format_time_micros(nanos_to_micros(nanos))


_EPOCH = _dt.datetime(1970, 1, 1)
# PostgreSQL's timestamp range: 4714-11-24 00:00:00 BC .. 294276-12-31 23:59:59.999999.
_MIN_TS_US = _MIN_DAY * US_PER_DAY
_MAX_TS_US = 9_224_318_015_999_999_999
_FAST_MIN_US = -62135596800000000  # 0001-01-01 00:00:00
_FAST_MAX_US = 253402300799999999  # 9999-12-31 23:59:59.999999


def timestamp_text(micros: int, suffix: str) -> str:
    """Epoch microseconds as ``YYYY-MM-DD HH:MM:SS[.ffffff]`` + ``suffix``, `` BC`` last for years <= 0."""
    if _FAST_MIN_US <= micros <= _FAST_MAX_US:  # years 1..9999: datetime's C code
        moment = _EPOCH + _dt.timedelta(0, 0, micros)
        text = moment.isoformat(" ")
        return (text.rstrip("0") if moment.microsecond else text) + suffix
    days, in_day = divmod(micros, US_PER_DAY)
    date = _date_text(days)
    if date.endswith(" BC"):
        return f"{date[:-3]} {time_text(in_day)}{suffix} BC"
    return f"{date} {time_text(in_day)}{suffix}"


def format_timestamp_micros(micros: int) -> str:
    """Epoch microseconds (io.debezium.time.MicroTimestamp) as PostgreSQL prints a timestamp."""
    if type(micros) is int and _FAST_MIN_US <= micros <= _FAST_MAX_US:  # years 1..9999, inlined: the hot path
        moment = _EPOCH + _dt.timedelta(0, 0, micros)
        text = moment.isoformat(" ")
        return text.rstrip("0") if moment.microsecond else text
    if micros == TS_POS_INF_US:
        return "infinity"
    if micros == TS_NEG_INF_US:
        return "-infinity"
    if type(micros) is not int:
        raise ValueError(f"expected epoch microseconds, got {micros!r}")
    return timestamp_text(micros, "")


def format_timestamp_millis(millis: int) -> str:
    if millis == TS_POS_INF_US // 1000:
        return "infinity"
    if millis == TS_NEG_INF_US // 1000:
        return "-infinity"
    return format_timestamp_micros(millis * 1000)


def format_timestamp_nanos(nanos: int) -> str:
    return format_timestamp_micros(nanos_to_micros(nanos))


_ZONED = re.compile(
    r"([+-]?)(\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d(?::\d\d)?)"
)

# The common case: UTC ("Z"), a four-digit year AD, at most microseconds.
_ZONED_UTC_AD = re.compile(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d{1,6})?Z")


def format_zoned_timestamp(text: str) -> str:
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
    if text in ("infinity", "-infinity"):
        return text
    match = _ZONED.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an ISO-8601 zoned timestamp")
    sign, year, month, day, hour, minute, second, fraction, offset = match.groups()
    fraction = (fraction or "").ljust(9, "0")
    if fraction[6:] != "000":
        raise ValueError(f"{text!r} has sub-microsecond digits PostgreSQL cannot hold")
    days = days_from_civil(-int(year) if sign == "-" else int(year), int(month), int(day))
    micros = (
        days * US_PER_DAY
        + ((int(hour) * 60 + int(minute)) * 60 + int(second)) * 1_000_000
        + int(fraction[:6])
    )
    if offset != "Z":
        parts = [int(p) for p in offset[1:].split(":")]
        shift = (parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0)) * 1_000_000
        micros -= shift if offset[0] == "+" else -shift
    if not _MIN_TS_US <= micros <= _MAX_TS_US:
        # In a timestamptz[] element Debezium turns '-infinity' into +292269055-12-02T23:00:00Z: refuse, not guess.
        raise ValueError(f"{text!r} is outside PostgreSQL's timestamp range (an array's -infinity arrives so)")
    return timestamp_text(micros, "+00")
