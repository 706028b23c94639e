"""The Parquet sink's type mapping and its conversions from COPY text (cdc_pipeline.sinks.arrow_*)."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from cdc_pipeline.errors import SinkError
from cdc_pipeline.pgtext.arrays import format_array
from cdc_pipeline.sinks.arrow_convert import NullNotes, convert, days_from_civil
from cdc_pipeline.sinks.arrow_types import arrow_column, arrow_schema
from cdc_pipeline.sinks.pg_arrays import parse_array
from tests.unit.test_sinks_support import column, table

# The list, format_type -> Arrow type.
PROMISED = {
    "smallint": pa.int16(), "integer": pa.int32(), "bigint": pa.int64(), "real": pa.float32(),
    "double precision": pa.float64(), "numeric(12,3)": pa.decimal128(12, 3), "numeric": pa.string(),
    "boolean": pa.bool_(), "text": pa.string(), "character varying(40)": pa.string(), "character(5)": pa.string(),
    "date": pa.date32(), "time without time zone": pa.time64("us"), "time(3) without time zone": pa.time64("us"),
    "timestamp without time zone": pa.timestamp("us"), "timestamp(3) without time zone": pa.timestamp("us"),
    "timestamp with time zone": pa.timestamp("us", tz="UTC"), "uuid": pa.string(), "json": pa.string(),
    "jsonb": pa.string(), "bytea": pa.binary(),
}
# Beyond the list (docs/types.md, "Parquet").
BEYOND = {
    "interval": pa.string(), "interval(3)": pa.string(), "money": pa.decimal128(19, 2), "inet": pa.string(),
    "cidr": pa.string(), "macaddr": pa.string(), "macaddr8": pa.string(), "bit(7)": pa.string(), "xml": pa.string(),
    "numeric(50,10)": pa.decimal256(50, 10), "numeric(3,5)": pa.string(), "numeric(3,-2)": pa.string(),
    "numeric(200,2)": pa.string(), "numeric(5)": pa.decimal128(5, 0),
}


def typed(format_type: str, values: list[str | None], notes: NullNotes | None = None, **kwargs) -> pa.Array:
    return convert(arrow_column(column("c", format_type, **kwargs)), pa.array(values, pa.string()), notes or NullNotes())


@pytest.mark.parametrize("format_type", [*PROMISED, *BEYOND])
def test_each_type_maps_to_its_arrow_type(format_type):
    expected = {**PROMISED, **BEYOND}[format_type]
    assert arrow_column(column("c", format_type)).arrow_type == expected


def test_enums_domains_and_arrays():
    assert arrow_column(column("e", "mood", kind="e")).arrow_type == pa.string()
    assert arrow_column(column("d", "dmoney", kind="d", base="money")).arrow_type == pa.decimal128(19, 2)
    assert arrow_column(column("d", "dnum", kind="d", base="numeric")).arrow_type == pa.string()
    assert arrow_column(column("d", "dint", kind="d", base="int4")).arrow_type == pa.int32()
    assert arrow_column(column("a", "integer[]", category="A", element="int4")).arrow_type == pa.list_(pa.int32())
    assert arrow_column(column("a", "timestamp with time zone[]", category="A", element="timestamptz")).arrow_type \
        == pa.list_(pa.timestamp("us", tz="UTC"))
    assert arrow_column(column("a", "character(3)[]", category="A", element="bpchar")).arrow_type == pa.list_(pa.string())


def test_the_schema_carries_each_columns_postgresql_type():
    schema = arrow_schema(table(column("id", "integer"), column("c", "character(5)")), metadata={"k": "v"})
    assert schema.field("c").metadata == {b"pg_type": b"character(5)"}
    assert schema.metadata == {b"k": b"v"}


def test_null_stays_null_and_the_empty_string_stays_empty():
    assert typed("text", [None, "", "x"]).to_pylist() == [None, "", "x"]
    assert typed("character(5)", ["ab   "]).to_pylist() == ["ab   "]
    assert typed("integer", [None, "-2147483648"]).to_pylist() == [None, -2147483648]


def test_floats_are_parsed_exactly_with_their_specials():
    values = typed("real", ["3.14", "-0", "NaN", "Infinity", "-Infinity", "1e-45", "3.4028235e+38"]).to_pylist()
    assert values[0] == float(np.float32(3.14)) and str(values[1]) == "-0.0" and values[2] != values[2]
    assert values[3:] == [float("inf"), float("-inf"), 1.401298464324817e-45, 3.4028234663852886e+38]
    assert typed("double precision", ["0.1", "5e-324", "1e+300"]).to_pylist() == [0.1, 5e-324, 1e300]


def test_numeric_with_a_typmod_is_an_exact_decimal_and_nan_becomes_a_counted_null():
    notes = NullNotes()
    assert typed("numeric(12,3)", ["1.500", "-123456789.123", "NaN", None], notes).to_pylist() == [
        Decimal("1.500"), Decimal("-123456789.123"), None, None]
    assert notes.as_dict() == {"c": {"NaN/Infinity (a decimal has none)": 1}}
    assert typed("numeric", ["3.10", "NaN", "-Infinity"]).to_pylist() == ["3.10", "NaN", "-Infinity"]


def test_money_is_the_exact_amount():
    assert typed("money", ["-$1,234.56", "$92,233,720,368,547,758.07", "$0.00"]).to_pylist() == [
        Decimal("-1234.56"), Decimal("92233720368547758.07"), Decimal("0.00")]
    with pytest.raises(SinkError, match="money text"):
        typed("money", ["1.234,56 €"])


def test_dates_bc_and_past_9999_are_exact_and_infinity_is_a_counted_null():
    notes = NullNotes()
    days = typed("date", ["2020-02-29", "0001-01-01", "10000-01-01", "0044-03-15 BC", "infinity", "-infinity", None],
                 notes).cast(pa.int32()).to_pylist()
    epoch = date(1970, 1, 1)
    assert days[:2] == [(date(2020, 2, 29) - epoch).days, (date(1, 1, 1) - epoch).days]
    assert days[2] == (date(9999, 12, 31) - epoch).days + 1
    assert days[3] == days_from_civil(-43, 3, 15) and days[4:] == [None, None, None]
    assert notes.as_dict() == {"c": {"infinity/-infinity (date32 has none)": 2}}


def test_days_from_civil_agrees_with_pythons_calendar():
    rng = random.Random(3)
    for _ in range(2000):
        day = date.fromordinal(rng.randint(1, date(9999, 12, 31).toordinal()))
        assert days_from_civil(day.year, day.month, day.day) == (day - date(1970, 1, 1)).days
    assert days_from_civil(0, 12, 31) == days_from_civil(1, 1, 1) - 1  # 1 BC is year 0, a leap year
    assert days_from_civil(0, 3, 1) - days_from_civil(0, 2, 28) == 2


def test_times_and_timestamps_keep_their_microseconds():
    assert typed("time without time zone", ["12:30:00.5", "00:00:00", "23:59:59.999999"]).cast(pa.int64()).to_pylist() \
        == [45_000_500_000, 0, 86_399_999_999]
    notes = NullNotes()
    assert typed("time without time zone", ["24:00:00"], notes).to_pylist() == [None] and notes.counts
    micros = typed("timestamp without time zone", ["2020-02-29 12:30:00.5", "0044-03-15 12:00:00.5 BC",
                                                   "12345-06-07 08:09:10", "infinity"]).cast(pa.int64()).to_pylist()
    epoch = datetime(1970, 1, 1)
    assert micros[0] == (datetime(2020, 2, 29, 12, 30, 0, 500000) - epoch) // timedelta(microseconds=1)
    assert micros[1] == days_from_civil(-43, 3, 15) * 86_400_000_000 + 43_200_500_000
    assert micros[2] == (days_from_civil(12345, 6, 7) * 86_400 + 8 * 3600 + 9 * 60 + 10) * 1_000_000
    assert micros[3] is None


def test_timestamptz_is_utc_whatever_offset_the_text_carries():
    values = typed("timestamp with time zone", ["2020-02-29 10:30:00.5+00", "2026-06-01 12:00:00.123456+02",
                                                "0044-03-15 12:00:00+00 BC", "-infinity"])
    assert values.type == pa.timestamp("us", tz="UTC")
    assert values[:2].to_pylist() == [datetime(2020, 2, 29, 10, 30, 0, 500000, tzinfo=timezone.utc),
                                      datetime(2026, 6, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)]
    assert values.cast(pa.int64())[2:].to_pylist() == [days_from_civil(-43, 3, 15) * 86_400_000_000 + 43_200_000_000,
                                                       None]


def test_bytea_hex_is_decoded_for_the_whole_column():
    rng = random.Random(5)
    blobs = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 20))) for _ in range(300)]
    texts = ["\\x" + b.hex() for b in blobs]
    texts[7] = None
    got = typed("bytea", texts).to_pylist()
    assert got == [None if t is None else b for t, b in zip(texts, blobs)]
    assert typed("bytea", ["\\x00FF"]).to_pylist() == [b"\x00\xff"]
    with pytest.raises(SinkError, match=r"column c \(bytea\) holds '\\\\x0'"):
        typed("bytea", ["\\x0"])


def test_arrays_become_lists_of_their_element_type():
    assert typed("integer[]", ["{1,NULL,-3}", "{}", None], category="A").to_pylist() == [[1, None, -3], [], None]
    texts = typed("text[]", ['{a,NULL,"","NULL","a b","q\\"uote","back\\\\slash",ñandú}'], category="A").to_pylist()
    assert texts == [["a", None, "", "NULL", "a b", 'q"uote', "back\\slash", "ñandú"]]
    assert typed("bytea[]", ['{"\\\\x00ff",NULL}'], category="A").to_pylist() == [[b"\x00\xff", None]]
    notes = NullNotes()
    stamps = typed("timestamp with time zone[]", ['{"2020-02-29 10:30:00.5+00",infinity}'], notes, category="A")
    assert stamps.to_pylist() == [[datetime(2020, 2, 29, 10, 30, 0, 500000, tzinfo=timezone.utc), None]]
    assert notes.counts


def test_array_text_round_trips_through_postgresqls_quoting():
    rng = random.Random(11)
    alphabet = ['a', ' ', '"', '\\', ',', '{', '}', 'ñ', '\t', 'N', 'U', 'L', '\n']
    for _ in range(500):
        elements = [None if rng.random() < 0.1 else "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
                    for _ in range(rng.randint(0, 5))]
        assert parse_array(format_array(elements)) == elements


@pytest.mark.parametrize("text", ["{{1,2},{3,4}}", "[0:1]={x,y}", "{a", "{a,}", "x"])
def test_array_text_the_pipeline_never_carries_is_refused(text):
    with pytest.raises(ValueError):
        parse_array(text)


@pytest.mark.parametrize("format_type, text", [("integer", "1.5"), ("smallint", "40000"), ("boolean", "true"),
                                               ("date", "24/11/2026"), ("time without time zone", "1:2:3"),
                                               ("numeric(4,1)", "123.45")])
def test_text_postgresql_would_not_print_fails_the_sink_naming_the_column(format_type, text):
    with pytest.raises(SinkError, match=rf"column c \({format_type.replace('(', '[(]').replace(')', '[)]')}\) holds"):
        typed(format_type, ["1" if format_type != "boolean" else "t", text])
