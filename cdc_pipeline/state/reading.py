"""Reading a generation back: one row by its index entry, all rows in key order, and the net change per key
between two generations (what a sink that holds the old one must apply to reach the new one)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cdc_pipeline.errors import StateError
from cdc_pipeline.state.manifest import GenerationInfo
from cdc_pipeline.state.index_files import IndexReader

Row = tuple[str | None, ...]
_CHUNK_ROWS = 1 << 16


def parse_row(line: str) -> list[str | None]:
    """One COPY CSV row (without its final newline): an unquoted empty field is NULL, ``""`` the empty string."""
    fields: list[str | None] = []
    i, end = 0, len(line)
    while True:
        if i < end and line[i] == '"':
            parts = []
            j = i + 1
            while True:
                close = line.index('"', j)
                parts.append(line[j:close])
                if close + 1 < end and line[close + 1] == '"':
                    parts.append('"')
                    j = close + 2
                    continue
                i = close + 1
                break
            fields.append("".join(parts))
        else:
            comma = line.find(",", i)
            comma = end if comma < 0 else comma
            fields.append(line[i:comma] or None)
            i = comma
        if i >= end:
            return fields
        i += 1  # the comma
        if i == end:
            fields.append(None)
            return fields


def read_row(fd: int, offset: int, end: int) -> list[str | None]:
    """The row stored at [offset, end) of an open destiny.csv."""
    data = os.pread(fd, end - offset, offset)
    if len(data) != end - offset or not data.endswith(b"\n"):
        raise StateError(f"destiny.csv does not hold a whole row at bytes {offset}..{end}: the file does not match its index")
    return parse_row(data[:-1].decode("utf-8"))


def row_batches(info: GenerationInfo, block_bytes: int = 1 << 24) -> Iterator[pa.RecordBatch]:
    """The generation's rows in key order as Arrow batches of strings (NULL stays null, '' stays '')."""
    if info.rows == 0:
        return
    names = list(info.columns)
    read = pacsv.ReadOptions(block_size=block_bytes)
    parse = pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False)
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names}, strings_can_be_null=True,
        quoted_strings_can_be_null=False, null_values=[""],
    )
    with pacsv.open_csv(info.destiny_path, read_options=read, parse_options=parse, convert_options=convert) as reader:
        if reader.schema.names != names:
            raise StateError(f"{info.destiny_path} has the header {reader.schema.names}, its manifest says {names}")
        yield from reader


def rows_with_value(info: GenerationInfo, value: str) -> int:
    """How many rows of the generation hold ``value`` exactly in some column (e.g. Debezium's unchanged-TOAST
    placeholder)."""
    count = 0
    for batch in row_batches(info):
        hits = pa.array([False] * batch.num_rows)
        for column in batch.columns:
            hits = pc.or_(hits, pc.fill_null(pc.equal(column, value), False))
        count += pc.sum(hits.cast(pa.int64())).as_py() or 0
    return count


def rows(info: GenerationInfo) -> Iterator[Row]:
    """The generation's rows in key order, each a tuple of COPY text (None for NULL)."""
    for batch in row_batches(info):
        columns = [column.to_pylist() for column in batch.columns]
        yield from zip(*columns)


def diff(old: GenerationInfo | None, new: GenerationInfo) -> Iterator[tuple[Row, Row | None]]:
    """(key values, new row or None when deleted) for every key whose row differs from ``old`` to ``new``,
    in key order. ``old`` None is an empty table. Keys whose last applied position is the same in both are
    skipped without reading their rows; the others are compared byte for byte."""
    key_at = [new.columns.index(k) for k in new.key_columns]
    if old is not None and old.key_columns != new.key_columns:
        raise StateError(f"generations {old.id} and {new.id} have different primary keys; a diff needs the same key")
    with _Side(old) as before, _Side(new) as after:
        while not (before.exhausted and after.exhausted):
            before.fill()
            after.fill()
            # Everything up to the smaller of the two chunks' last keys can be compared now.
            bound = min(k for k in (before.last_key(), after.last_key()) if k is not None)
            old_part = before.take_upto(bound)
            new_part = after.take_upto(bound)
            yield from _diff_part(old_part, new_part, before, after, key_at)


class _Side:
    """One generation's index, read chunk by chunk, with the unconsumed entries of the current chunk."""

    def __init__(self, info: GenerationInfo | None) -> None:
        self.info = info
        self.reader = IndexReader(info.keys_path, info.rows_path, info.destiny_bytes) if info else None
        self.fd = os.open(info.destiny_path, os.O_RDONLY) if info else -1
        self.next_start = 0
        self.keys = np.zeros(0, "S1")
        self.rows = None
        self.ends = np.zeros(0, np.int64)

    def __enter__(self) -> _Side:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.reader:
            self.reader.close()
            os.close(self.fd)

    @property
    def total(self) -> int:
        return self.reader.count if self.reader else 0

    @property
    def exhausted(self) -> bool:
        return self.next_start >= self.total and len(self.keys) == 0

    def fill(self) -> None:
        if len(self.keys) or self.next_start >= self.total:
            return
        stop = min(self.next_start + _CHUNK_ROWS, self.total)
        self.keys = self.reader.keys(self.next_start, stop)
        self.rows, self.ends = self.reader.rows_and_ends(self.next_start, stop)
        self.next_start = stop

    def last_key(self) -> bytes | None:
        """The largest key that can be compared now (None: everything; this side has nothing more)."""
        if len(self.keys) == 0:
            return None
        return self.keys[-1]

    def take_upto(self, bound: bytes | None):
        if len(self.keys) == 0:
            return self.keys, self.rows, self.ends
        cut = len(self.keys) if bound is None else int(np.searchsorted(self.keys, bound, side="right"))
        part = self.keys[:cut], self.rows[:cut], self.ends[:cut]
        self.keys, self.rows, self.ends = self.keys[cut:], self.rows[cut:], self.ends[cut:]
        return part

    def row(self, entry, end) -> list[str | None]:
        return read_row(self.fd, int(entry["offset"]), int(end))


def _diff_part(old_part, new_part, before: _Side, after: _Side, key_at) -> Iterator[tuple[Row, Row | None]]:
    """The keys of one stretch of both indexes: vectorised down to the candidates, whose rows are then read."""
    old_keys, old_rows, old_ends = old_part
    new_keys, new_rows, new_ends = new_part
    width = max(old_keys.dtype.itemsize, new_keys.dtype.itemsize, 1)
    old_keys = old_keys.astype(f"S{width}")
    new_keys = new_keys.astype(f"S{width}")
    union = np.union1d(old_keys, new_keys)
    at_old, in_old = _locate(old_keys, union)
    at_new, in_new = _locate(new_keys, union)
    old_live = in_old & ~old_rows["deleted"][at_old] if len(old_keys) else in_old
    new_live = in_new & ~new_rows["deleted"][at_new] if len(new_keys) else in_new
    candidates = old_live | new_live
    if before.info is not None and before.info.lineage == after.info.lineage and len(old_keys) and len(new_keys):
        # Within a lineage a row's bytes follow from its last applied event: same position, same row.
        same = np.ones(len(union), dtype=bool)
        for field in ("incarnation", "partition", "kafka_offset", "lsn"):
            same &= old_rows[field][at_old] == new_rows[field][at_new]
        candidates &= ~(old_live & new_live & same)
    for i in np.flatnonzero(candidates).tolist():
        if new_live[i]:
            new_values = after.row(new_rows[at_new[i]], new_ends[at_new[i]])
            if old_live[i] and before.row(old_rows[at_old[i]], old_ends[at_old[i]]) == new_values:
                continue
            yield tuple(new_values[c] for c in key_at), tuple(new_values)
        else:
            old_values = before.row(old_rows[at_old[i]], old_ends[at_old[i]])
            yield tuple(old_values[c] for c in key_at), None


def _locate(keys: np.ndarray, union: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``union``: its index in ``keys`` (clipped into range) and whether it is there."""
    if len(keys) == 0:
        return np.zeros(len(union), dtype=np.int64), np.zeros(len(union), dtype=bool)
    at = np.minimum(np.searchsorted(keys, union), len(keys) - 1)
    return at, keys[at] == union
