"""COPY text -> typed Arrow arrays, a column at a time (pyarrow compute kernels; Python only for rare forms).

Every converter takes a string array as destiny.csv holds it (null for NULL, '' for the empty string) and
answers the column's Arrow array (:mod:`cdc_pipeline.sinks.arrow_types`). Values are checked against the
exact form PostgreSQL prints: anything else raises :class:`SinkError` naming the column and the value, so a
value is never silently different. A value the Arrow type cannot hold becomes null and is counted in
:class:`NullNotes` (the Parquet file's metadata and the sink's result say so):

- numeric(p,s) ``NaN`` (decimal has no NaN);
- date, timestamp, timestamptz ``infinity`` / ``-infinity``, and timestamps past int64 microseconds;
- time ``24:00:00`` (Arrow's time64 stops before midnight).

BC dates and years past 9999 are exact: date32 and timestamp[us] count days and microseconds from 1970 on
the proleptic Gregorian calendar, as PostgreSQL does (astronomical years: 1 BC is year 0).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdc_pipeline.errors import SinkError
from cdc_pipeline.pgtext.datetimes import days_from_civil
from cdc_pipeline.sinks.arrow_types import ArrowColumn
from cdc_pipeline.sinks.pg_arrays import parse_array

_US_PER_DAY = 86_400_000_000
_INT64 = (-(1 << 63), (1 << 63) - 1)
_REGULAR_DATE = r"^\d{4}-\d\d-\d\d$"
_REGULAR_TIMESTAMP = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?$"
_REGULAR_TIMESTAMPTZ = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?[+-]\d\d(:\d\d)?$"
_TIME = r"^\d\d:\d\d:\d\d(\.\d{1,6})?$"
_MONEY = r"^-?\$\d{1,3}(,\d{3})*\.\d\d$"
_BYTEA = r"^\\x([0-9a-fA-F]{2})*$"
_DATE_TEXT = re.compile(r"^(\d+)-(\d\d)-(\d\d)( BC)?$")
_TIMESTAMP_TEXT = re.compile(r"^(\d+)-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?"
                             r"(?:([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?)?( BC)?$")
_NUMERIC_SPECIALS = pa.array(["NaN", "Infinity", "-Infinity"])
_HEX = np.full(256, 0, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF", start=10):
    _HEX[_c] = _i


class NullNotes:
    """Values written as null because the Arrow type cannot hold them: (column, what) -> count."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def add(self, column: str, what: str, count: int) -> None:
        if count:
            self.counts[(column, what)] += count

    def as_dict(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        for (column, what), count in sorted(self.counts.items()):
            result.setdefault(column, {})[what] = count
        return result

    def lines(self) -> list[str]:
        return [f"{column}: {count} {what} written as null" for (column, what), count in sorted(self.counts.items())]


def convert_batch(batch: pa.RecordBatch, columns: tuple[ArrowColumn, ...], schema: pa.Schema,
                  notes: NullNotes) -> pa.RecordBatch:
    """One batch of destiny.csv (all strings) as the Parquet schema's types."""
    arrays = [convert(column, batch.column(i), notes) for i, column in enumerate(columns)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def convert(column: ArrowColumn, values: pa.Array, notes: NullNotes) -> pa.Array:
    if values.type != pa.string():
        values = values.cast(pa.string())
    return _CONVERTERS[column.kind](column, values, notes)


# --- one converter per kind ------------------------------------------------------------------------------

def _string(column: ArrowColumn, values: pa.Array, notes: NullNotes) -> pa.Array:
    return values


def _number(column: ArrowColumn, values: pa.Array, notes: NullNotes) -> pa.Array:
    # Arrow parses PostgreSQL's float text exactly (shortest round-trip digits; NaN, Infinity, -Infinity).
    try:
        return pc.cast(values, column.arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise _unexpected(column, values, f"a {column.pg_type} value", exc) from exc


def _bool(column: ArrowColumn, values: pa.Array, notes: NullNotes) -> pa.Array:
    _check(column, values, pc.is_in(values, value_set=pa.array(["t", "f"])), "t or f")
    return pc.equal(values, "t")


def _decimal(column: ArrowColumn, values: pa.Array, notes: NullNotes) -> pa.Array:
    special = pc.fill_null(pc.is_in(values, value_set=_NUMERIC_SPECIALS), False)
    count = pc.sum(special).as_py() or 0
    if count:
        notes.add(column.name, "NaN/Infinity (a decimal has none)", count)
        values = pc.if_else(special, pa.scalar(None, pa.string()), values)
    try:
        return pc.cast(values, column.arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise _unexpected(column, values, f"a {column.pg_type} value", exc) from exc


def _money(column: ArrowColumn, values: pa.Array, notes: NullNotes) -> pa.Array:
    # lc_monetary C, POSIX or en_US (the ones the pipeline accepts) print -$1,234.56.
    _check(column, values, pc.match_substring_regex(values, _MONEY), "money text like -$1,234.56")
    return pc.cast(pc.replace_substring_regex(values, r"[$,]", ""), column.arrow_type)


def _date(column: ArrowColumn, values: pa.Array, notes: NullNotes) -> pa.Array:
    return _temporal(column, values, notes, _REGULAR_DATE, pa.int32(), _date_value)


def _timestamp(column: ArrowColumn, values: pa.Array, notes: NullNotes) -> pa.Array:
    pattern = _REGULAR_TIMESTAMPTZ if column.kind == "timestamptz" else _REGULAR_TIMESTAMP
    return _temporal(column, values, notes, pattern, pa.int64(), _timestamp_value)


def _time(column: ArrowColumn, values: pa.Array, notes: NullNotes) -> pa.Array:
    _check(column, values, pc.match_substring_regex(values, _TIME), "time text like 12:30:00.5")

    def part(start: int, stop: int) -> pa.Array:
        return pc.cast(pc.utf8_slice_codeunits(values, start, stop), pa.int64())

    fraction = pc.utf8_rpad(pc.utf8_slice_codeunits(values, 9, 15), 6, "0")
    seconds = pc.add(pc.multiply(pc.add(pc.multiply(part(0, 2), 60), part(3, 5)), 60), part(6, 8))
    micros = pc.add(pc.multiply(seconds, 1_000_000), pc.cast(fraction, pa.int64()))
    midnight = pc.fill_null(pc.greater_equal(micros, _US_PER_DAY), False)
    count = pc.sum(midnight).as_py() or 0
    if count:
        notes.add(column.name, "24:00:00 (time64 ends before midnight)", count)
        micros = pc.if_else(midnight, pa.scalar(None, pa.int64()), micros)
    return micros.cast(pa.time64("us"))


def _binary(column: ArrowColumn, values: pa.Array, notes: NullNotes) -> pa.Array:
    """PostgreSQL's hex form (\\x00ff) decoded with a lookup table over the whole column's bytes."""
    _check(column, values, pc.match_substring_regex(values, _BYTEA), "bytea hex text like \\x00ff")
    valid = values.is_valid()
    hexes = pc.utf8_slice_codeunits(pc.fill_null(values, "\\x"), 2)
    hexes = pa.concat_arrays([hexes])  # own buffers, offset 0
    _, offsets_buffer, data_buffer = hexes.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[: len(hexes) + 1]
    first, last = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(data_buffer, dtype=np.uint8)[first:last] if data_buffer is not None else np.zeros(0, np.uint8)
    nibbles = _HEX[data]
    decoded = (nibbles[0::2] << 4) | nibbles[1::2]
    new_offsets = ((offsets - first) // 2).astype(np.int32)
    binary = pa.Array.from_buffers(pa.binary(), len(hexes), [None, pa.py_buffer(new_offsets),
                                                              pa.py_buffer(decoded.tobytes())])
    return pc.if_else(valid, binary, pa.scalar(None, pa.binary()))


def _list(column: ArrowColumn, values: pa.Array, notes: NullNotes) -> pa.Array:
    """A one-dimensional array's text parsed into elements, which go through the element's own converter."""
    offsets = [0]
    flat: list[str | None] = []
    for text in values.to_pylist():
        if text is not None:
            try:
                flat.extend(parse_array(text))
            except ValueError as exc:
                raise SinkError(f"column {column.name} ({column.pg_type}): {exc}; value {_shorten(text)}") from exc
        offsets.append(len(flat))
    element_column = column.element
    elements = convert(element_column, pa.array(flat, pa.string()), notes)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), elements, type=column.arrow_type,
                                    mask=values.is_null())


# --- dates and timestamps ----------------------------------------------------------------------------------

def _temporal(column: ArrowColumn, values: pa.Array, notes: NullNotes, regular_pattern: str,
              storage: pa.DataType, parse_one: Callable[[str], int | str]) -> pa.Array:
    """Regular values (four-digit years, AD) through Arrow's own parser; the rest (BC, years past 9999,
    infinity) one by one in Python."""
    regular = pc.fill_null(pc.match_substring_regex(values, regular_pattern), True)
    irregular = np.flatnonzero(~regular.to_numpy(zero_copy_only=False))
    if len(irregular) == 0:
        return _cast(column, values)
    typed = _cast(column, pc.if_else(regular, values, pa.scalar(None, pa.string())))
    numbers = pc.fill_null(typed.cast(storage), 0).to_numpy(zero_copy_only=False).copy()
    valid = typed.is_valid().to_numpy(zero_copy_only=False).copy()
    texts = values.take(pa.array(irregular)).to_pylist()
    for at, text in zip(irregular.tolist(), texts):
        parsed = parse_one(text)
        if isinstance(parsed, str):
            if parsed == "unexpected":
                raise _unexpected(column, pa.array([text]), f"{column.pg_type} text")
            notes.add(column.name, parsed, 1)
            valid[at] = False
        else:
            numbers[at] = parsed
            valid[at] = True
    return pa.array(numbers, type=storage, mask=~valid).cast(column.arrow_type)


def _cast(column: ArrowColumn, values: pa.Array) -> pa.Array:
    try:
        return pc.cast(values, column.arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise _unexpected(column, values, f"{column.pg_type} text", exc) from exc


def _date_value(text: str) -> int | str:
    """Days since 1970-01-01, or why the value has no date32 form."""
    if text in ("infinity", "-infinity"):
        return "infinity/-infinity (date32 has none)"
    match = _DATE_TEXT.match(text)
    if match is None:
        return "unexpected"
    year, month, day, bc = match.groups()
    return days_from_civil(_astronomical(int(year), bc), int(month), int(day))


def _timestamp_value(text: str) -> int | str:
    """Microseconds since 1970-01-01 00:00 UTC, or why the value has no timestamp[us] form."""
    if text in ("infinity", "-infinity"):
        return "infinity/-infinity (a timestamp has none)"
    match = _TIMESTAMP_TEXT.match(text)
    if match is None:
        return "unexpected"
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m, off_s, bc = match.groups()
    days = days_from_civil(_astronomical(int(year), bc), int(month), int(day))
    seconds = days * 86_400 + int(hour) * 3600 + int(minute) * 60 + int(second)
    if sign:
        offset = int(off_h) * 3600 + int(off_m or 0) * 60 + int(off_s or 0)
        seconds -= offset if sign == "+" else -offset
    micros = seconds * 1_000_000 + int((fraction or "").ljust(6, "0"))
    if not _INT64[0] <= micros <= _INT64[1]:
        return "timestamps past int64 microseconds"
    return micros


def _astronomical(year: int, bc: str | None) -> int:
    return 1 - year if bc else year


# --- checks ------------------------------------------------------------------------------------------------

def _check(column: ArrowColumn, values: pa.Array, matches: pa.Array, expected: str) -> None:
    bad = pc.and_(pc.invert(pc.fill_null(matches, True)), values.is_valid())
    if pc.any(bad).as_py():
        raise _unexpected(column, values.filter(bad), expected)


def _unexpected(column: ArrowColumn, values: pa.Array, expected: str, exc: Exception | None = None) -> SinkError:
    sample = next((v for v in values.to_pylist() if v is not None), None)
    detail = f" ({' '.join(str(exc).split())[:200]})" if exc else ""
    return SinkError(
        f"column {column.name} ({column.pg_type}) holds {_shorten(sample)}, which is not {expected}{detail}: "
        "destiny.csv does not hold the text PostgreSQL prints for this type. Check the column's type in "
        "table.json against the source; a re-snapshot rebuilds the state (python -m cdc_pipeline resnapshot)")


def _shorten(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_CONVERTERS = {
    "string": _string, "int": _number, "float": _number, "bool": _bool, "decimal": _decimal, "money": _money,
    "date": _date, "time": _time, "timestamp": _timestamp, "timestamptz": _timestamp, "binary": _binary,
    "list": _list,
}
