"""A batch of change events (buffer.csv's rows) checked against the state's columns and made into arrays.

Columns: ``operacion`` (c, u, d, r, t), the table's columns (a subset of the state's, the key included),
``timestamp``, ``_topic``, ``_partition``, ``_offset``, ``_lsn``, ``_incarnation`` and ``_txid``. Values are
COPY text (None = NULL). A missing ``_incarnation`` is 0 and a missing ``_txid`` NULL. TRUNCATE ('t') rows
carry no table values.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cdc_pipeline.errors import BatchFileError, StateError
from cdc_pipeline.source.catalog import TableDescription

OPERATION = "operacion"
TIMESTAMP = "timestamp"
TOPIC = "_topic"
PARTITION = "_partition"
OFFSET = "_offset"
LSN = "_lsn"
INCARNATION = "_incarnation"
TXID = "_txid"
EVENT_COLUMNS = (OPERATION, TIMESTAMP, TOPIC, PARTITION, OFFSET, LSN, INCARNATION, TXID)
OPERATIONS = frozenset({"c", "u", "d", "r", "t"})


class Batch:
    """The events: positions as arrays at once; operations and values converted on first use, so that a
    replayed batch costs only its positions."""

    def __init__(self, source: pd.DataFrame | pa.Table | None, names: list[str], count: int,
                 description: TableDescription | None) -> None:
        self._source = source
        self.names = names
        self.count = count
        self.columns = tuple(c for c in description.column_names if c in names) if description else ()
        self.incarnation = _integers(self._column(INCARNATION), INCARNATION, np.int32) if INCARNATION in names else np.zeros(count, np.int32)
        self.partition = _integers(self._column(PARTITION), PARTITION, np.int32) if count else np.zeros(0, np.int32)
        self.offset = _integers(self._column(OFFSET), OFFSET, np.int64) if count else np.zeros(0, np.int64)
        self.lsn = _integers(self._column(LSN), LSN, np.int64) if count else np.zeros(0, np.int64)

    @cached_property
    def ops(self) -> list[str]:
        ops = self._strings(OPERATION)
        unknown = sorted({op for op in ops if op not in OPERATIONS}, key=str)
        if unknown:
            raise BatchFileError(f"the batch holds unknown operations {unknown}; expected c, r, u, d or t")
        return ops

    @cached_property
    def values(self) -> dict[str, list[str | None]]:
        """The table columns the batch carries, each a list of COPY text (None for NULL)."""
        return {c: self._strings(c) for c in self.columns}

    @cached_property
    def timestamp(self) -> list[str | None]:
        return self._strings(TIMESTAMP)

    @cached_property
    def topic(self) -> list[str | None]:
        return self._strings(TOPIC)

    @cached_property
    def txid(self) -> tuple[np.ndarray, np.ndarray]:
        """(txids, NULL mask)."""
        if TXID not in self.names:
            return np.zeros(self.count, np.int64), np.ones(self.count, bool)
        raw = self._column(TXID)
        return _integers(pc.fill_null(raw, "0"), TXID, np.int64), raw.is_null().to_numpy(zero_copy_only=False)

    def _strings(self, name: str) -> list[str | None]:
        if name not in self.names:
            return [None] * self.count
        return self._column(name).to_pylist()

    def _column(self, name: str) -> pa.Array:
        if isinstance(self._source, pa.Table):
            return pa.concat_arrays([c.cast(pa.string()) for c in self._source.column(name).chunks]) \
                if self._source.column(name).num_chunks else pa.array([], pa.string())
        values = self._source[name].to_numpy(dtype=object)
        try:
            return pa.array(values, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # Positions may come as numbers from a caller that built the frame itself.
            return pa.array([None if v is None or v != v else str(v) for v in values], type=pa.string())


def read_batch(batch: pd.DataFrame | pa.Table, description: TableDescription) -> Batch:
    """Check the batch's columns against the state's; raise what is wrong."""
    if isinstance(batch, pd.DataFrame):
        names = [str(c) for c in batch.columns]
        count = len(batch) if names else 0
    elif isinstance(batch, pa.Table):
        names, count = list(batch.column_names), batch.num_rows
    else:
        raise TypeError(f"a batch is a pandas DataFrame or a pyarrow Table, not {type(batch).__name__}")
    if not names:
        return Batch(None, [], 0, None)
    columns = description.column_names
    extra = [n for n in names if n not in columns and n not in EVENT_COLUMNS]
    if extra:
        raise StateError(
            f"the batch carries columns {extra} that the state of {description.qualified_table} does not have "
            f"(its columns: {list(columns)}). The table's schema changed: rebuild the state for the new schema "
            "before merging these events."
        )
    required = [OPERATION, PARTITION, OFFSET, LSN, *description.key_columns]
    missing = [n for n in required if n not in names]
    if missing:
        raise BatchFileError(f"the batch lacks columns {missing}; it was not written by this pipeline (columns: {names})")
    return Batch(batch, names, count, description)


def is_replay(batch: Batch, merged_ranges: Mapping[tuple[int, int], list[list[int]]]) -> np.ndarray:
    """Per event: inside a merged offset range of its (incarnation, partition), at or below its LSN bound."""
    inside = np.zeros(batch.count, dtype=bool)
    if not merged_ranges:
        return inside
    for incarnation, partition in _groups(batch):
        ranges = merged_ranges.get((incarnation, partition))
        if not ranges:
            continue
        mask = (batch.incarnation == incarnation) & (batch.partition == partition)
        offsets, lsns = batch.offset[mask], batch.lsn[mask]
        hit = np.zeros(len(offsets), dtype=bool)
        for start, end, max_lsn in ranges:
            hit |= (offsets >= start) & (offsets < end) & (lsns <= max_lsn)
        inside[mask] = hit
    return inside


def merge_ranges(
    merged_ranges: Mapping[tuple[int, int], list[list[int]]], batch: Batch, limit: int
) -> dict[tuple[int, int], list[list[int]]]:
    """The merged ranges plus this batch's [first, last + 1) offsets per (incarnation, partition).

    A batch's events of one partition come from one contiguous read of Kafka, so the span between its first
    and last offset was consumed whole (the offsets in between held tombstones or undecodable messages).
    """
    result = {key: [list(r) for r in ranges] for key, ranges in merged_ranges.items()}
    if batch.count == 0:
        return result
    for incarnation, partition in _groups(batch):
        mask = (batch.incarnation == incarnation) & (batch.partition == partition)
        span = [int(batch.offset[mask].min()), int(batch.offset[mask].max()) + 1, int(batch.lsn[mask].max())]
        key = (incarnation, partition)
        result[key] = _coalesce([*result.get(key, []), span])[-limit:]
    return result


def _groups(batch: Batch) -> list[tuple[int, int]]:
    """The distinct (incarnation, partition) pairs of the batch."""
    combined = (batch.incarnation.astype(np.int64) << 32) | (batch.partition.astype(np.int64) & 0xFFFFFFFF)
    return [(int(v >> 32), int(np.int32(v & 0xFFFFFFFF))) for v in np.unique(combined)]


def _coalesce(ranges: list[list[int]]) -> list[list[int]]:
    merged: list[list[int]] = []
    for start, end, max_lsn in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            merged[-1][2] = max(merged[-1][2], max_lsn)
        else:
            merged.append([start, end, max_lsn])
    return merged


def _integers(column: pa.Array, name: str, dtype: type) -> np.ndarray:
    if column.null_count:
        raise BatchFileError(f"the batch's column {name} holds NULLs; every event has one")
    try:
        return column.cast(pa.int64()).to_numpy(zero_copy_only=False).astype(dtype)
    except (pa.ArrowInvalid, OverflowError) as exc:
        raise BatchFileError(f"the batch's column {name} holds a value that is not an integer: {exc}") from exc
