"""date, time, timestamp, timestamptz text. Expected strings are PostgreSQL 15's output (DateStyle=ISO,
TimeZone=UTC); the inputs follow Debezium 3.1.1's encodings (days/ms/us/ns since the epoch, ISO strings)."""

from __future__ import annotations

import pytest

from cdc_pipeline.pgtext.datetimes import (
    format_date_days,
    format_time_micros,
    format_time_millis,
    format_time_nanos,
    format_timestamp_micros,
    format_timestamp_millis,
    format_timestamp_nanos,
    format_zoned_timestamp,
)


@pytest.mark.parametrize(("raw", "expected"), [
    (0, "1970-01-01"),
    (20781, "2026-11-24"),
    (-719162, "0001-01-01"),
    (-719163, "0001-12-31 BC"),
    (-2440588, "4714-11-24 BC"),
    (2932896, "9999-12-31"),
    (2932897, "10000-01-01"),
    (2145042905, "5874897-12-31"),
])
def test_date(raw, expected):
    assert format_date_days(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    # Seen on the real chain (Debezium 3.1.1): streamed changes carry -5877611-06-21/22 as days...
    (-2147472692, "infinity"),
    (-2147472691, "-infinity"),
    # ...snapshot reads and array elements pgjdbc's infinity through java.sql.Date (a day either side: JVM zone).
    (-622191234, "infinity"),
    (-622191233, "infinity"),
    (-625821272, "-infinity"),
    (-625821273, "-infinity"),
])
def test_date_infinity_in_each_encoding(raw, expected):
    assert format_date_days(raw) == expected


@pytest.mark.parametrize("raw", [-2147472693, -622191236, -625821270, 2145042906])
def test_other_days_outside_the_range_are_errors(raw):
    with pytest.raises(ValueError, match="outside PostgreSQL's date range"):
        format_date_days(raw)


def test_date_outside_postgres_range_is_an_error():
    with pytest.raises(ValueError, match="outside PostgreSQL's date range"):
        format_date_days(-3000000)


@pytest.mark.parametrize(("convert", "raw", "expected"), [
    (format_time_micros, 45000500000, "12:30:00.5"),
    (format_time_micros, 0, "00:00:00"),
    (format_time_micros, 86399999999, "23:59:59.999999"),
    (format_time_micros, 86400000000, "24:00:00"),
    (format_time_micros, 3723000010, "01:02:03.00001"),
    (format_time_millis, 45000500, "12:30:00.5"),
    (format_time_nanos, 45000500000000, "12:30:00.5"),
])
def test_time(convert, raw, expected):
    assert convert(raw) == expected


def test_nano_time_with_sub_microsecond_digits_is_an_error():
    with pytest.raises(ValueError, match="sub-microsecond"):
        format_time_nanos(1)


def test_time_past_midnight_is_an_error():
    with pytest.raises(ValueError, match="not a time of day"):
        format_time_micros(86400000001)


@pytest.mark.parametrize(("convert", "raw", "expected"), [
    (format_timestamp_micros, 998633833123456, "2001-08-24 06:17:13.123456"),
    (format_timestamp_micros, 2302538157500000, "2042-12-18 17:55:57.5"),
    (format_timestamp_micros, -63517780799500000, "0044-03-15 12:00:00.5 BC"),
    (format_timestamp_micros, 253402300800000001, "10000-01-01 00:00:00.000001"),
    (format_timestamp_micros, 9223372036825200000, "infinity"),
    (format_timestamp_micros, -9223372036832400000, "-infinity"),
    (format_timestamp_millis, 998633833123, "2001-08-24 06:17:13.123"),
    (format_timestamp_millis, 9223372036825200, "infinity"),
    (format_timestamp_nanos, 998633833123456000, "2001-08-24 06:17:13.123456"),
])
def test_timestamp(convert, raw, expected):
    assert convert(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("2026-06-01T15:00:00.250000Z", "2026-06-01 15:00:00.25+00"),
    ("1970-01-01T00:00:00.000000Z", "1970-01-01 00:00:00+00"),
    ("2026-11-24T01:02:03Z", "2026-11-24 01:02:03+00"),
    ("2026-11-24T03:02:03.123+02:00", "2026-11-24 01:02:03.123+00"),
    ("+10000-01-01T01:02:03.250000Z", "10000-01-01 01:02:03.25+00"),
    ("0000-01-01T00:00:00Z", "0001-01-01 00:00:00+00 BC"),
    ("-0043-03-15T12:00:00.500000Z", "0044-03-15 12:00:00.5+00 BC"),
    ("infinity", "infinity"),
    ("-infinity", "-infinity"),
])
def test_timestamptz_in_utc(raw, expected):
    assert format_zoned_timestamp(raw) == expected


@pytest.mark.parametrize("raw", ["+292269055-12-02T23:00:00.000000Z", "+294277-01-01T00:00:00Z",
                                 "-4713-11-23T23:59:59.999999Z"])
def test_zoned_timestamp_outside_postgres_range_is_an_error(raw):
    # The first is how Debezium delivers '-infinity' inside a timestamptz[]: refused rather than guessed.
    with pytest.raises(ValueError, match="outside PostgreSQL's timestamp range"):
        format_zoned_timestamp(raw)


def test_zoned_timestamp_range_ends():
    assert format_zoned_timestamp("+294276-12-31T23:59:59.999999Z") == "294276-12-31 23:59:59.999999+00"
    assert format_zoned_timestamp("-4713-11-24T00:00:00Z") == "4714-11-24 00:00:00+00 BC"


def test_malformed_zoned_timestamp_is_an_error():
    with pytest.raises(ValueError, match="'yesterday' is not an ISO-8601"):
        format_zoned_timestamp("yesterday")
