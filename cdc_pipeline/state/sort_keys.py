"""Order-preserving byte encodings of primary-key values, so that byte order is PostgreSQL's ORDER BY.

A key value arrives as PostgreSQL's COPY text (``'42'``, ``'2026-01-01 BC'``, ``'\\x00ff'``); its column's type
is a ``format_type`` string (``'integer'``, ``'numeric(12,3)'``, ``'timestamp(3) with time zone'``). Each
component is encoded so that comparing the bytes (memcmp, shorter first) orders values exactly as PostgreSQL
does under the C collation, and so that no component's encoding is a prefix of another's (prefix-free). A
composite key is the concatenation of its components, which then orders lexicographically, as
``ORDER BY k1, k2`` does.

Prefix-free is what makes the fixed-width ``S{W}`` arrays of :mod:`numpy` safe: numpy pads with zero bytes
and ignores trailing zeros when comparing, but two different prefix-free encodings already differ at a byte
inside both, so padding never decides an order nor merges two keys.

======================================  =====================================================================
types                                   encoding
======================================  =====================================================================
smallint, integer, bigint, oid          big-endian two's complement, sign bit flipped (2, 4, 8 bytes)
numeric                                 tag (-Infinity, negative, zero, positive, Infinity, NaN), decimal
                                        exponent, base-100 digit pairs and a terminator; negatives inverted.
                                        Trailing zeros are insignificant (1.0 = 1.00), as in PostgreSQL.
real, double precision                  IEEE-754 double, order-flipped; -0 = 0, NaN above +Infinity
date, timestamp, timestamptz            microseconds (days for date) from 2000-01-01 as int64; ±infinity at
                                        the ends; BC years and years past 9999 by value; offsets applied
time                                    microseconds since midnight (24:00:00 included)
boolean                                 false < true
uuid                                    its 16 bytes
bytea                                   its bytes, 0x00 escaped as 00 FF, terminated by 00 00
text, varchar, char, anything else      UTF-8 bytes then 00 (text holds no NUL); char(n) without its
                                        trailing blanks (PostgreSQL compares bpchar without them)
======================================  =====================================================================

Any other type orders as its text form (see :func:`unordered_key_types` for the note the caller logs).
"""

from __future__ import annotations

import math
import re
import struct
import uuid as uuid_module
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdc_pipeline.errors import BatchFileError

__all__ = ["KeyEncoder", "encode_value", "normalize_type", "unordered_key_types"]

_TYPMOD = re.compile(r"\([^)]*\)")
_INTEGER_WIDTH = {"smallint": 2, "integer": 4, "bigint": 8, "oid": 4}
_TEXT_TYPES = frozenset({"text", "character varying", "name", "citext"})
_CHAR_TYPES = frozenset({"character", "bpchar"})
_DATE_TIME = re.compile(
    r"^(\d+)-(\d\d)-(\d\d)(?: (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?([+-]\d\d(?::?\d\d){0,2})?)?( BC)?$"
)
_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?$")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_EPOCH_DAYS = 10957  # 2000-01-01 in days from 1970-01-01 (PostgreSQL's epoch, any fixed day would do)


def normalize_type(format_type: str) -> str:
    """``'numeric(12,3)'`` -> ``'numeric'``, ``'timestamp(3) with time zone'`` -> ``'timestamp with time zone'``."""
    return _TYPMOD.sub("", format_type).strip()


def unordered_key_types(key_types: dict[str, str]) -> list[str]:
    """One note per key column whose type has no encoding of its own and orders by its text form."""
    notes = []
    for column, format_type in key_types.items():
        if _component_encoder(format_type) is _encode_fallback_text:
            notes.append(
                f"key column {column} has type {format_type}, which destiny.csv orders by the bytes of its text "
                "form; PostgreSQL's ORDER BY may order it differently (the rows and their bytes are the same)"
            )
    return notes


def encode_value(text: str, format_type: str) -> bytes:
    """The order-preserving, prefix-free encoding of one key component given as COPY text."""
    if text is None:
        raise BatchFileError(f"a primary-key value of type {format_type} is NULL; primary-key columns never are")
    return _component_encoder(format_type)(text)


class KeyEncoder:
    """Encodes whole keys (one or more columns) of one table into a fixed-width ``S{W}`` numpy array."""

    def __init__(self, key_types: Sequence[str]) -> None:
        self.key_types = tuple(key_types)
        self._encoders = [_component_encoder(t) for t in self.key_types]

    def encode_rows(self, rows: Sequence[Sequence[str]]) -> list[bytes]:
        """One ``bytes`` per row of key values (COPY text, in key order)."""
        encoders = self._encoders
        try:
            if len(encoders) == 1:
                encode = encoders[0]
                return [encode(row[0]) for row in rows]
            return [b"".join(encode(value) for encode, value in zip(encoders, row, strict=True)) for row in rows]
        except (ValueError, TypeError, InvalidOperation, OverflowError) as exc:
            raise BatchFileError(
                f"a primary-key value does not parse as its type {list(self.key_types)}: {exc}; the buffer or "
                "destiny.csv holds text PostgreSQL would not print for that type"
            ) from exc

    def encode_columns(self, columns: Sequence[Sequence[str]]) -> np.ndarray:
        """Keys of whole columns (one sequence of COPY text per key column) as an ``S{W}`` array.

        Integer and text-like columns are encoded column-at-a-time (the bulk path of large loads); the other
        types go value by value.
        """
        count = len(columns[0]) if columns else 0
        parts = [self._encode_column(values, format_type) for values, format_type in zip(columns, self.key_types, strict=True)]
        if count == 0:
            return np.empty(0, dtype="S1")
        joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, pa.scalar(b"", pa.binary()))
        return binary_to_fixed(joined)

    def _encode_column(self, values: Sequence[str], format_type: str) -> pa.Array:
        base = normalize_type(format_type)
        if base in _INTEGER_WIDTH and base != "oid":
            width = _INTEGER_WIDTH[base]
            try:
                numbers = np.asarray(values, dtype=object).astype(np.int64)
            except (ValueError, TypeError, OverflowError) as exc:
                raise BatchFileError(f"a primary-key value of type {format_type} is not an integer: {exc}") from exc
            bias = 1 << (8 * width - 1)
            if len(numbers) and (numbers.min() < -bias or numbers.max() >= bias):
                raise BatchFileError(f"a primary-key value of type {format_type} is out of its range")
            # Two's complement plus the bias, modulo 2**(8*width): the sign bit flipped, big-endian.
            biased = (numbers.view(np.uint64) + np.uint64(bias)) & np.uint64((1 << (8 * width)) - 1)
            raw = biased.astype(f">u{width}").tobytes()
            return pa.Array.from_buffers(pa.binary(width), len(numbers), [None, pa.py_buffer(raw)]).cast(pa.binary())
        if base in _TEXT_TYPES or base in _CHAR_TYPES:
            array = pa.array(values, type=pa.string())
            if array.null_count:
                raise BatchFileError(f"a primary-key value of type {format_type} is NULL; primary-key columns never are")
            if base in _CHAR_TYPES:
                array = pc.utf8_rtrim(array, characters=" ")
            if pc.any(pc.match_substring(array, "\x00")).as_py():
                raise BatchFileError(f"a primary-key value of type {format_type} holds a NUL character")
            return pc.binary_join_element_wise(array.cast(pa.binary()), pa.scalar(b"\x00", pa.binary()), pa.scalar(b"", pa.binary()))
        encode = _component_encoder(format_type)
        try:
            return pa.array([encode(v) for v in values], type=pa.binary())
        except (ValueError, TypeError, InvalidOperation, OverflowError) as exc:
            raise BatchFileError(f"a primary-key value does not parse as {format_type}: {exc}") from exc


def binary_to_fixed(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Variable-length binary values -> ``S{W}`` (W = the longest, at least 1), zero-padded, vectorised."""
    if isinstance(array, pa.ChunkedArray):
        array = pa.concat_arrays(array.chunks) if array.num_chunks else pa.array([], pa.binary())
    array = array.cast(pa.large_binary())
    count = len(array)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64, count=count + 1, offset=array.offset * 8)
    lengths = np.diff(offsets)
    width = max(int(lengths.max()) if count else 1, 1)
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8) if array.buffers()[2] is not None else np.empty(0, np.uint8)
    data = data[offsets[0]:offsets[-1]]
    matrix = np.zeros((count, width), dtype=np.uint8)
    if len(data):
        rows = np.repeat(np.arange(count, dtype=np.int64), lengths)
        within = np.arange(len(data), dtype=np.int64) - np.repeat(offsets[:-1] - offsets[0], lengths)
        matrix.reshape(-1)[rows * width + within] = data
    return matrix.view(f"S{width}").reshape(count)


# --- components ------------------------------------------------------------------------------------------


def _component_encoder(format_type: str) -> Callable[[str], bytes]:
    base = normalize_type(format_type)
    if base in _INTEGER_WIDTH:
        width = _INTEGER_WIDTH[base]
        return (lambda text: _encode_unsigned(int(text), width)) if base == "oid" else (lambda text: _encode_int(int(text), width))
    if base == "numeric":
        return _encode_numeric
    if base in ("real", "double precision"):
        return _encode_float
    if base == "date":
        return _encode_date
    if base == "timestamp without time zone":
        return _encode_timestamp
    if base == "timestamp with time zone":
        return _encode_timestamptz
    if base == "time without time zone":
        return _encode_time
    if base == "boolean":
        return _encode_bool
    if base == "uuid":
        return _encode_uuid
    if base == "bytea":
        return _encode_bytea
    if base in _CHAR_TYPES:
        return _encode_char
    if base in _TEXT_TYPES:
        return _encode_text
    return _encode_fallback_text


def _encode_int(number: int, width: int) -> bytes:
    bias = 1 << (8 * width - 1)
    if not -bias <= number < bias:
        raise ValueError(f"{number} does not fit in {8 * width} bits")
    return (number + bias).to_bytes(width, "big")


def _encode_unsigned(number: int, width: int) -> bytes:
    return number.to_bytes(width, "big")


def _encode_text(text: str) -> bytes:
    if "\x00" in text:
        raise ValueError("text holds a NUL character, which PostgreSQL text never does")
    return text.encode("utf-8") + b"\x00"


def _encode_fallback_text(text: str) -> bytes:
    return _encode_text(text)


def _encode_char(text: str) -> bytes:
    return _encode_text(text.rstrip(" "))


def _encode_bool(text: str) -> bytes:
    if text in ("t", "true"):
        return b"\x02"
    if text in ("f", "false"):
        return b"\x01"
    raise ValueError(f"{text!r} is not a boolean's text (t or f)")


def _encode_uuid(text: str) -> bytes:
    return uuid_module.UUID(text).bytes


def _encode_bytea(text: str) -> bytes:
    raw = _parse_bytea(text)
    return raw.replace(b"\x00", b"\x00\xff") + b"\x00\x00"


def _parse_bytea(text: str) -> bytes:
    if text.startswith("\\x"):
        return bytes.fromhex(text[2:])
    # bytea_output = 'escape': printable bytes as is, \\ for a backslash, \ooo for the rest.
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\":
            out += ch.encode("latin-1")
            i += 1
        elif text[i + 1 : i + 2] == "\\":
            out.append(0x5C)
            i += 2
        else:
            out.append(int(text[i + 1 : i + 4], 8))
            i += 4
    return bytes(out)


# numeric: tags leave room so that every finite negative < zero < every finite positive.
_NUM_NEG_INF, _NUM_NEG, _NUM_ZERO, _NUM_POS, _NUM_POS_INF, _NUM_NAN = 1, 2, 3, 4, 5, 6


def _encode_numeric(text: str) -> bytes:
    number = Decimal(text)
    if number.is_nan():
        return bytes([_NUM_NAN])
    if number.is_infinite():
        return bytes([_NUM_NEG_INF if number < 0 else _NUM_POS_INF])
    if number.is_zero():
        return bytes([_NUM_ZERO])
    sign, digits, exponent = number.as_tuple()
    digit_text = "".join(map(str, digits)).rstrip("0")
    leading = len(digit_text)
    digit_text = digit_text.lstrip("0")
    # value = 0.d1d2...dn x 10**magnitude, d1 != 0
    magnitude = len(digits) + exponent - (leading - len(digit_text))
    if len(digit_text) % 2:
        digit_text += "0"
    pairs = bytes(int(digit_text[i : i + 2]) + 1 for i in range(0, len(digit_text), 2))  # 1..100
    biased = magnitude + (1 << 31)
    if not 0 <= biased < (1 << 32):
        raise ValueError(f"numeric {text} is out of range")
    if not sign:
        return bytes([_NUM_POS]) + biased.to_bytes(4, "big") + pairs + b"\x00"
    # Negative: a larger magnitude or larger digits mean a smaller number, so every byte is inverted and the
    # terminator sorts above every digit byte (-0.12 > -0.123).
    return bytes([_NUM_NEG]) + (0xFFFFFFFF - biased).to_bytes(4, "big") + bytes(0xFF - b for b in pairs) + b"\xff"


def _encode_float(text: str) -> bytes:
    number = float(text)
    if math.isnan(number):
        return b"\xff" * 8  # above +Infinity, as PostgreSQL orders NaN
    if number == 0.0:
        number = 0.0  # -0 = 0
    (bits,) = struct.unpack(">Q", struct.pack(">d", number))
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
    return bits.to_bytes(8, "big")


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar, any astronomical year (H. Hinnant)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _parse_date_time(text: str, want_time: bool, want_zone: bool) -> int | None:
    """Microseconds (or days for a date) from 2000-01-01; None for an infinity (handled by the caller)."""
    match = _DATE_TIME.match(text)
    if match is None or (match.group(4) is None) == want_time or (match.group(8) is not None and not want_zone):
        raise ValueError(f"{text!r} is not PostgreSQL's ISO text for this date/time type")
    year = int(match.group(1))
    if match.group(9):
        year = 1 - year  # 1 BC is astronomical year 0
    days = _days_from_civil(year, int(match.group(2)), int(match.group(3))) - _EPOCH_DAYS
    if not want_time:
        return days
    micros = ((days * 24 + int(match.group(4))) * 60 + int(match.group(5))) * 60 + int(match.group(6))
    micros = micros * 1_000_000 + int((match.group(7) or "0").ljust(6, "0"))
    zone = match.group(8)
    if zone:
        sign = -1 if zone[0] == "-" else 1
        fields = zone[1:].replace(":", "")
        seconds = int(fields[0:2]) * 3600 + int(fields[2:4] or 0) * 60 + int(fields[4:6] or 0)
        micros -= sign * seconds * 1_000_000  # local time minus its offset is UTC
    return micros


def _encode_temporal(text: str, want_time: bool, want_zone: bool) -> bytes:
    if text == "infinity":
        value = _INT64_MAX
    elif text == "-infinity":
        value = _INT64_MIN
    else:
        value = _parse_date_time(text, want_time, want_zone)
    return _encode_int(value, 8)


def _encode_date(text: str) -> bytes:
    return _encode_temporal(text, want_time=False, want_zone=False)


def _encode_timestamp(text: str) -> bytes:
    return _encode_temporal(text, want_time=True, want_zone=False)


def _encode_timestamptz(text: str) -> bytes:
    return _encode_temporal(text, want_time=True, want_zone=True)


def _encode_time(text: str) -> bytes:
    match = _TIME.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not PostgreSQL's text for a time")
    seconds = (int(match.group(1)) * 60 + int(match.group(2))) * 60 + int(match.group(3))
    return _encode_int(seconds * 1_000_000 + int((match.group(4) or "0").ljust(6, "0")), 8)
