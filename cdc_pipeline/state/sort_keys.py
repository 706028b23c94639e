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
enum                                    the label's position in the declared order, 4 bytes big-endian
domain                                  its base type's encoding
uuid                                    its 16 bytes
bytea                                   its bytes, 0x00 escaped as 00 FF, terminated by 00 00
text, varchar, char, anything else      UTF-8 bytes then 00 (text holds no NUL); char(n) without its
                                        trailing blanks (PostgreSQL compares bpchar without them)
text under an ICU collation             ICU's sort key for the collation's locale (NUL-terminated), then the
                                        UTF-8 bytes and 00: PostgreSQL's tie-break of equal strings
======================================  =====================================================================

Any other type orders as its text form (see :func:`unordered_key_types` for the note the caller logs).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import InvalidOperation

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdc_pipeline.errors import BatchFileError
from cdc_pipeline.state.key_components import (
    CHAR_TYPES,
    INTEGER_WIDTH,
    TEXT_TYPES,
    CollatedOrder,
    EnumOrder,
    component_encoder,
    encode_fallback_text,
    normalize_type,
)

__all__ = ["KeyEncoder", "encode_value", "key_orders", "normalize_type", "unordered_key_columns", "unordered_key_types"]


def key_orders(description) -> dict[str, str]:
    """Primary-key column -> what its values order by: its type (format_type), a domain's base type, an enum's
    labels in their declared order (an ``EnumOrder``), or text under an ICU collation (a ``CollatedOrder``), as the
    catalog described them."""
    orders: dict[str, str] = {}
    for name in description.key_columns:
        column = description.column(name)
        order = column.order_type or column.format_type
        if column.enum_labels is not None:
            order = EnumOrder(order, column.enum_labels)
        elif column.icu_locale:
            order = CollatedOrder(order, column.icu_locale)
        orders[name] = order
    return orders

def unordered_key_columns(key_types: dict[str, str]) -> dict[str, str]:
    """Key columns (with their type) whose type has no encoding of its own and orders by its text form."""
    return {column: t for column, t in key_types.items() if component_encoder(t) is encode_fallback_text}


def unordered_key_types(key_types: dict[str, str]) -> list[str]:
    """One note per key column whose type has no encoding of its own and orders by its text form."""
    return [f"key column {column} has type {format_type}, which destiny.csv orders by the bytes of its text form; "
            "PostgreSQL's ORDER BY may order it differently (the rows and their bytes are the same)"
            for column, format_type in unordered_key_columns(key_types).items()]


def encode_value(text: str, format_type: str) -> bytes:
    """The order-preserving, prefix-free encoding of one key component given as COPY text."""
    if text is None:
        raise BatchFileError(f"a primary-key value of type {format_type} is NULL; primary-key columns never are")
    return component_encoder(format_type)(text)


class KeyEncoder:
    """Encodes whole keys (one or more columns) of one table into a fixed-width ``S{W}`` numpy array."""

    def __init__(self, key_types: Sequence[str]) -> None:
        self.key_types = tuple(key_types)
        self._encoders = [component_encoder(t) for t in self.key_types]

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
        if isinstance(format_type, CollatedOrder):
            base = "collated"  # value by value, below: ICU's sort keys
        if base in INTEGER_WIDTH and base != "oid":
            width = INTEGER_WIDTH[base]
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
        if base in TEXT_TYPES or base in CHAR_TYPES:
            array = pa.array(values, type=pa.string())
            if array.null_count:
                raise BatchFileError(f"a primary-key value of type {format_type} is NULL; primary-key columns never are")
            if base in CHAR_TYPES:
                array = pc.utf8_rtrim(array, characters=" ")
            if pc.any(pc.match_substring(array, "\x00")).as_py():
                raise BatchFileError(f"a primary-key value of type {format_type} holds a NUL character")
            return pc.binary_join_element_wise(array.cast(pa.binary()), pa.scalar(b"\x00", pa.binary()), pa.scalar(b"", pa.binary()))
        encode = component_encoder(format_type)
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
