"""Order-preserving, prefix-free byte encodings of one primary-key component, per PostgreSQL type.

Each function takes the value's COPY text and answers bytes whose memcmp order (shorter first) is PostgreSQL's
ORDER BY for that type; :mod:`cdc_pipeline.state.sort_keys` says which encoding each type gets and why
prefix-free matters.
"""

from __future__ import annotations

import math
import re
import struct
import uuid as uuid_module
from collections.abc import Callable
from decimal import Decimal

from cdc_pipeline.source.collation import collated_key
from cdc_pipeline.pgtext.datetimes import days_from_civil

_TYPMOD = re.compile(r"\([^)]*\)")
INTEGER_WIDTH = {"smallint": 2, "integer": 4, "bigint": 8, "oid": 4}
TEXT_TYPES = frozenset({"text", "character varying", "name", "citext"})
CHAR_TYPES = frozenset({"character", "bpchar"})
_DATE_TIME = re.compile(
    r"^(\d+)-(\d\d)-(\d\d)(?: (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?([+-]\d\d(?::?\d\d){0,2})?)?( BC)?$"
)
_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?$")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_EPOCH_DAYS = 10957  # 2000-01-01 in days from 1970-01-01 (PostgreSQL's epoch: its timestamps fit int64 from it)


def normalize_type(format_type: str) -> str:
    """``'numeric(12,3)'`` -> ``'numeric'``, ``'timestamp(3) with time zone'`` -> ``'timestamp with time zone'``."""
    return _TYPMOD.sub("", format_type).strip()


class EnumOrder(str):
    """An enum type's name carrying its labels in their declared order (``pg_enum.enumsortorder``): a key of that
    type orders by its label's position, as PostgreSQL's ORDER BY does."""

    labels: tuple[str, ...]

    def __new__(cls, type_name: str, labels) -> EnumOrder:
        order = super().__new__(cls, type_name)
        order.labels = tuple(labels)
        return order


class CollatedOrder(str):
    """A text type's name carrying the ICU locale of its deterministic collation: a key of that type orders as
    PostgreSQL's ORDER BY does under that collation (ICU's order, ties broken by the bytes)."""

    locale: str

    def __new__(cls, type_name: str, locale: str) -> CollatedOrder:
        order = super().__new__(cls, type_name)
        order.locale = locale
        return order


def _collated_encoder(order: CollatedOrder) -> Callable[[str], bytes]:
    """ICU's order then the bytes (cdc_pipeline.source.collation); bpchar compares without its trailing blanks."""
    key = collated_key(order.locale)
    if normalize_type(order) in CHAR_TYPES:
        return lambda text: key(text.rstrip(" "))
    return key


def _enum_encoder(order: EnumOrder) -> Callable[[str], bytes]:
    positions = {label: position for position, label in enumerate(order.labels)}

    def encode(text: str) -> bytes:
        position = positions.get(text)
        if position is None:
            raise ValueError(f"{text!r} is not a label of enum {order} as it was when this state was built (the type "
                             "changed: ALTER TYPE ... ADD VALUE; the next register_connector sees it and rebuilds)")
        return position.to_bytes(4, "big")

    return encode


def component_encoder(format_type: str) -> Callable[[str], bytes]:
    """The encoding of one key component of this type (text order for a type without one of its own)."""
    if isinstance(format_type, EnumOrder):
        return _enum_encoder(format_type)
    if isinstance(format_type, CollatedOrder):
        return _collated_encoder(format_type)
    base = normalize_type(format_type)
    if base in INTEGER_WIDTH:
        width = INTEGER_WIDTH[base]
        return (lambda text: _encode_unsigned(int(text), width)) if base == "oid" else (lambda text: _encode_int(int(text), width))
    return _ENCODERS.get(base) or (encode_char if base in CHAR_TYPES else encode_text if base in TEXT_TYPES else encode_fallback_text)


def _encode_int(number: int, width: int) -> bytes:
    bias = 1 << (8 * width - 1)
    if not -bias <= number < bias:
        raise ValueError(f"{number} does not fit in {8 * width} bits")
    return (number + bias).to_bytes(width, "big")


def _encode_unsigned(number: int, width: int) -> bytes:
    return number.to_bytes(width, "big")


def encode_text(text: str) -> bytes:
    if "\x00" in text:
        raise ValueError("text holds a NUL character, which PostgreSQL text never does")
    return text.encode("utf-8") + b"\x00"


def encode_fallback_text(text: str) -> bytes:
    return encode_text(text)


def encode_char(text: str) -> bytes:
    return encode_text(text.rstrip(" "))


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


def _parse_date_time(text: str, want_time: bool, want_zone: bool) -> int | None:
    """Microseconds (or days for a date) from 2000-01-01; None for an infinity (handled by the caller)."""
    match = _DATE_TIME.match(text)
    if match is None or (match.group(4) is None) == want_time or (match.group(8) is not None and not want_zone):
        raise ValueError(f"{text!r} is not PostgreSQL's ISO text for this date/time type")
    year = int(match.group(1))
    if match.group(9):
        year = 1 - year  # 1 BC is astronomical year 0
    days = days_from_civil(year, int(match.group(2)), int(match.group(3))) - _EPOCH_DAYS
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


_ENCODERS: dict[str, Callable[[str], bytes]] = {
    "numeric": _encode_numeric,
    "real": _encode_float,
    "double precision": _encode_float,
    "date": _encode_date,
    "timestamp without time zone": _encode_timestamp,
    "timestamp with time zone": _encode_timestamptz,
    "time without time zone": _encode_time,
    "boolean": _encode_bool,
    "uuid": _encode_uuid,
    "bytea": _encode_bytea,
}
