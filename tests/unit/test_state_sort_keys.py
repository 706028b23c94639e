"""Sort keys: byte order equals the value order PostgreSQL uses, per type; composites; numpy's padded arrays.

The proof against the real PostgreSQL is tests/stack/test_sort_keys_live.py; these check the same
properties against orders computed here, quickly and for many more values.
"""

from __future__ import annotations

import math
import random
import struct
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pytest

from cdc_pipeline.errors import BatchFileError
from cdc_pipeline.state.sort_keys import KeyEncoder, encode_value, normalize_type, unordered_key_types


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A generator of the test's own, seeded by its name: its values do not depend on which tests ran before it
    (``--random-order`` shuffles them), and a failure repeats with the same values."""
    return random.Random(f"7:{request.node.name}")


def assert_orders_like(values: list[str], format_type: str, sort_key) -> None:
    """Encodings sort as ``sort_key`` does, equal exactly when it says equal, and numpy's S arrays agree."""
    encoded = [encode_value(v, format_type) for v in values]
    by_value = sorted(range(len(values)), key=lambda i: sort_key(values[i]))
    by_bytes = sorted(range(len(values)), key=lambda i: encoded[i])
    assert [sort_key(values[i]) for i in by_bytes] == [sort_key(values[i]) for i in by_value]
    for a, b in zip(by_bytes, by_bytes[1:]):
        assert (encoded[a] == encoded[b]) == (sort_key(values[a]) == sort_key(values[b])), (values[a], values[b])
    width = max(map(len, encoded))
    array = np.array(encoded, dtype=f"S{width}")
    assert [sort_key(values[i]) for i in np.argsort(array, kind="stable")] == [sort_key(values[i]) for i in by_value]
    assert_prefix_free(encoded)


def assert_prefix_free(encoded: list[bytes]) -> None:
    distinct = sorted(set(encoded))
    for a, b in zip(distinct, distinct[1:]):
        assert not b.startswith(a), (a, b)


@pytest.mark.parametrize(("format_type", "bits"), [("smallint", 16), ("integer", 32), ("bigint", 64)])
def test_integers_order_by_value_and_the_column_path_agrees(format_type, bits, rng):
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    values = [str(v) for v in [low, high, 0, -1, 1, *[rng.randint(low, high) for _ in range(300)]]]
    assert_orders_like(values, format_type, int)
    encoder = KeyEncoder([format_type])
    assert [bytes(v) for v in encoder.encode_columns([values])] == [e.rstrip(b"\x00") for e in encoder.encode_rows([[v] for v in values])]
    with pytest.raises(BatchFileError):
        encoder.encode_columns([[str(high + 1)]])


def numeric_order(text: str):
    number = Decimal(text)
    return (1, Decimal(0)) if number.is_nan() else (0, number)


def test_numeric_orders_by_value_with_nan_above_infinity_and_trailing_zeros_insignificant(rng):
    values = ["NaN", "Infinity", "-Infinity", "0", "0.000", "-0", "1", "1.0", "1.00", "10", "9.999", "0.1", "0.01",
              "-0.12", "-0.123", "-0.1", "100", "1e5", "123456789012345678901234567890.123456789",
              "-123456789012345678901234567890.1", "0.000000000000000000001", "-0.000000000000000000001"]
    for _ in range(400):
        digits = str(rng.randrange(1, 10 ** rng.randrange(1, 25)))
        point = rng.randrange(0, len(digits) + 1)
        text = (digits[:point] or "0") + "." + digits[point:] + "0" * rng.randrange(3)
        values.append(("-" if rng.random() < 0.5 else "") + text)
    assert_orders_like(values, "numeric(40,20)", numeric_order)


def float_order(text: str):
    number = float(text)
    return (1, 0.0) if math.isnan(number) else (0, number)


@pytest.mark.parametrize("format_type", ["real", "double precision"])
def test_floats_order_by_value_negative_zero_equals_zero_nan_greatest(format_type, rng):
    values = ["NaN", "Infinity", "-Infinity", "0", "-0", "1e-310", "-1e-310", "1.5", "-1.5", "1e308", "-1e308"]
    values += [repr(struct.unpack(">d", struct.pack(">Q", rng.getrandbits(64)))[0]) for _ in range(300)]
    values = [v.replace("inf", "Infinity").replace("nan", "NaN") for v in values]
    assert_orders_like(values, format_type, float_order)


def test_dates_order_by_time_across_bc_long_years_and_infinities(rng):
    values = ["-infinity", "infinity", "4713-01-01 BC", "0001-12-31 BC", "0001-01-01", "1999-12-31", "2000-01-01",
              "10000-01-01", "5874897-12-31", "0044-03-15 BC", "0045-03-15 BC"]
    start = date(1, 1, 1)
    values += [(start + timedelta(days=rng.randrange(3_650_000))).isoformat() for _ in range(300)]

    def order(text: str):
        if text in ("infinity", "-infinity"):
            return (1 if text == "infinity" else -1, 0)
        bc = text.endswith(" BC")
        year, month, day = (int(p) for p in text.removesuffix(" BC").split("-"))
        return (0, ((1 - year) if bc else year, month, day))

    assert_orders_like(values, "date", order)


def test_timestamps_order_by_time_and_timestamptz_by_instant(rng):
    base = datetime(1, 1, 1, tzinfo=timezone.utc)
    moments = [base + timedelta(microseconds=rng.randrange(315_000_000_000_000_000)) for _ in range(300)]
    naive = [m.strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0").rstrip(".") for m in moments]
    naive += ["-infinity", "infinity", "0044-03-15 12:00:00 BC", "10000-01-01 00:00:00", "2000-01-01 00:00:00.5"]

    def order(text: str):
        if text.endswith("infinity"):
            return (-1 if text.startswith("-") else 1, None)
        bc = text.endswith(" BC")
        day, clock = text.removesuffix(" BC").split(" ")
        year, month, dom = (int(p) for p in day.split("-"))
        return (0, ((1 - year) if bc else year, month, dom, clock.ljust(15, "0") if "." in clock else clock + ".000000"))

    assert_orders_like(naive, "timestamp(6) without time zone", order)
    same = ["2026-01-01 10:00:00+02", "2026-01-01 08:00:00+00", "2026-01-01 03:30:00-04:30", "2026-01-01 08:00:00.000001+00"]
    encoded = [encode_value(v, "timestamp with time zone") for v in same]
    assert encoded[0] == encoded[1] == encoded[2] < encoded[3]
    assert encode_value("0044-03-15 10:00:00+00 BC", "timestamp with time zone") < encode_value("0001-01-01 00:00:00+00", "timestamp with time zone")


def test_times_order_up_to_24_00(rng):
    values = ["00:00:00", "24:00:00", "23:59:59.999999", "12:00:00.5", "12:00:00.05", "00:00:00.000001"]
    values += [f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(10**6):06d}" for _ in range(200)]
    assert_orders_like(values, "time without time zone", lambda t: (t[:8], t[9:].ljust(6, "0")))


def random_text(rng: random.Random) -> str:
    alphabet = ["a", "b", "z", "A", " ", ",", '"', "\n", "é", "ñ", "€", "😀", "\x01", "\u07ff", "\uffff"]
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 6)))


@pytest.mark.parametrize("format_type", ["text", "character varying(40)", "name", "some_domain"])
def test_text_orders_by_code_point(format_type, rng):
    values = ["", "a", "ab", "a\x01", "b", "é", "e\u0301", *[random_text(rng) for _ in range(300)]]
    assert_orders_like(values, format_type, lambda t: t.encode("utf-8"))
    assert [c.rstrip(b"\x00") for c in KeyEncoder([format_type]).encode_rows([[v] for v in values])] == \
        [bytes(v) for v in KeyEncoder([format_type]).encode_columns([values])]


def test_char_ignores_trailing_blanks_as_bpchar_comparison_does():
    assert encode_value("a    ", "character(5)") == encode_value("a", "character(5)")
    assert encode_value("a    ", "character(5)") < encode_value("a\t   ", "character(5)")
    assert_orders_like(["ab   ", "a b  ", "a    ", "a\t   ", "     ", "b    "], "character(5)", lambda t: t.rstrip(" ").encode())


def test_bytea_orders_by_bytes_then_length_with_zero_bytes(rng):
    raw = [b"", b"\x00", b"\x00\x00", b"\x00\x01", b"\x01", b"\xff", b"\x00\xff", *[rng.randbytes(rng.randrange(4)) for _ in range(200)]]
    values = ["\\x" + r.hex() for r in raw]
    assert_orders_like(values, "bytea", lambda t: bytes.fromhex(t[2:]))
    assert encode_value("a\\\\b\\000", "bytea") == encode_value("\\x615c6200", "bytea")


def test_uuid_boolean_and_oid(rng):
    values = [str(uuid.UUID(bytes=rng.randbytes(16))) for _ in range(200)]
    assert_orders_like(values, "uuid", lambda t: uuid.UUID(t).bytes)
    assert encode_value("f", "boolean") < encode_value("t", "boolean")
    assert encode_value("4000000000", "oid") > encode_value("5", "oid")


def test_composite_keys_order_lexicographically_whatever_the_component_lengths(rng):
    pairs = [("a", "b"), ("ab", ""), ("a", ""), ("", "zz"), ("a\x01", "a"), *[(random_text(rng), random_text(rng)) for _ in range(300)]]
    encoder = KeyEncoder(["text", "text"])
    encoded = encoder.encode_rows(pairs)
    assert sorted(pairs, key=lambda p: (p[0].encode(), p[1].encode())) == [pairs[i] for i in sorted(range(len(pairs)), key=encoded.__getitem__)]
    array = encoder.encode_columns([[p[0] for p in pairs], [p[1] for p in pairs]])
    assert [pairs[i] for i in np.argsort(array, kind="stable")] == sorted(pairs, key=lambda p: (p[0].encode(), p[1].encode()))
    mixed = [(str(rng.randint(-5, 5)), rng.choice(["0", "0.0", "-1.5", "NaN", "2"])) for _ in range(100)]
    encoded = KeyEncoder(["integer", "numeric"]).encode_rows(mixed)
    by_bytes = [mixed[i] for i in sorted(range(len(mixed)), key=encoded.__getitem__)]
    assert [(int(a), numeric_order(b)) for a, b in by_bytes] == sorted((int(a), numeric_order(b)) for a, b in mixed)


def test_types_without_an_encoding_order_as_text_and_say_so():
    assert normalize_type("timestamp(3) with time zone") == "timestamp with time zone"
    notes = unordered_key_types({"id": "integer", "span": "interval", "code": "my_enum"})
    assert len(notes) == 2 and "span" in notes[0] and "interval" in notes[0]


def test_values_that_do_not_parse_are_refused():
    with pytest.raises(BatchFileError):
        KeyEncoder(["date"]).encode_rows([["2026-13-45x"]])
    with pytest.raises(BatchFileError):
        encode_value(None, "integer")
