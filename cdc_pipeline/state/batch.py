"""A batch of change events (buffer.csv's rows) checked against the state's columns and made into arrays.

Columns: ``operacion`` (c, u, d, r, t), the table's columns (a subset of the state's, the key included),
``timestamp``, ``_topic``, ``_partition``, ``_offset``, ``_lsn``, ``_incarnation`` and ``_txid``. Values are
COPY text (None = NULL). A missing ``_incarnation`` is 0 and a missing ``_txid`` NULL. TRUNCATE ('t') rows
carry no table values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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


@dataclass
class Batch:
    """The events as columns; ``values`` holds only the table columns the batch carries."""

    count: int
    ops: list[str]
    values: dict[str, list[str | None]]
    incarnation: np.ndarray
    partition: np.ndarray
    offset: np.ndarray
    lsn: np.ndarray
    timestamp: list[str | None]
    topic: list[str | None]
    txid: np.ndarray  # int64, with txid_null marking NULL
    txid_null: np.ndarray

    @property
    def is_truncate(self) -> np.ndarray:
        return np.fromiter((op == "t" for op in self.ops), dtype=bool, count=self.count)


def read_batch(batch: pd.DataFrame | pa.Table, description: TableDescription) -> Batch:
    """Check the batch's columns against the state's and turn it into arrays; raise what is wrong."""
    table = _as_arrow(batch)
    names = list(table.column_names)
    if not names:
        return _empty_batch()
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
    count = table.num_rows
    ops = _strings(table, OPERATION, count)
    unknown = sorted({op for op in ops if op not in OPERATIONS}, key=str)
    if unknown:
        raise BatchFileError(f"the batch holds unknown operations {unknown}; expected c, r, u, d or t")
    txid_null = np.ones(count, dtype=bool)
    txid = np.zeros(count, dtype=np.int64)
    if TXID in names:
        raw = table.column(TXID)
        txid_null = raw.is_null().to_numpy(zero_copy_only=False)
        txid = _integers(pc.fill_null(raw.cast(pa.string()), "0"), TXID, np.int64)
    return Batch(
        count=count,
        ops=ops,
        values={c: _strings(table, c, count) for c in columns if c in names},
        incarnation=_integers(table.column(INCARNATION), INCARNATION, np.int32) if INCARNATION in names else np.zeros(count, np.int32),
        partition=_integers(table.column(PARTITION), PARTITION, np.int32),
        offset=_integers(table.column(OFFSET), OFFSET, np.int64),
        lsn=_integers(table.column(LSN), LSN, np.int64),
        timestamp=_strings(table, TIMESTAMP, count),
        topic=_strings(table, TOPIC, count),
        txid=txid,
        txid_null=txid_null,
    )


def is_replay(batch: Batch, merged_ranges: Mapping[tuple[int, int], list[list[int]]]) -> np.ndarray:
    """Per event: inside a merged offset range of its (incarnation, partition), at or below its LSN bound."""
    inside = np.zeros(batch.count, dtype=bool)
    if not merged_ranges:
        return inside
    groups = np.stack([batch.incarnation.astype(np.int64), batch.partition.astype(np.int64)], axis=1)
    for incarnation, partition in np.unique(groups, axis=0) if batch.count else []:
        ranges = merged_ranges.get((int(incarnation), int(partition)))
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
    groups = np.stack([batch.incarnation.astype(np.int64), batch.partition.astype(np.int64)], axis=1)
    for incarnation, partition in np.unique(groups, axis=0):
        mask = (batch.incarnation == incarnation) & (batch.partition == partition)
        span = [int(batch.offset[mask].min()), int(batch.offset[mask].max()) + 1, int(batch.lsn[mask].max())]
        key = (int(incarnation), int(partition))
        result[key] = _coalesce([*result.get(key, []), span])[-limit:]
    return result


def _coalesce(ranges: list[list[int]]) -> list[list[int]]:
    merged: list[list[int]] = []
    for start, end, max_lsn in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            merged[-1][2] = max(merged[-1][2], max_lsn)
        else:
            merged.append([start, end, max_lsn])
    return merged


def _as_arrow(batch: pd.DataFrame | pa.Table) -> pa.Table:
    if isinstance(batch, pa.Table):
        return batch
    if isinstance(batch, pd.DataFrame):
        arrays = {}
        for name in batch.columns:
            values = batch[name].to_numpy(dtype=object)
            try:
                arrays[str(name)] = pa.array(values, type=pa.string(), from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                # Positions may come as numbers from a caller that built the frame itself.
                arrays[str(name)] = pa.array([None if v is None or v != v else str(v) for v in values], type=pa.string())
        return pa.table(arrays) if arrays else pa.table({})
    raise TypeError(f"a batch is a pandas DataFrame or a pyarrow Table, not {type(batch).__name__}")


def _strings(table: pa.Table, name: str, count: int) -> list[str | None]:
    if name not in table.column_names:
        return [None] * count
    return table.column(name).cast(pa.string()).to_pylist()


def _integers(column: pa.ChunkedArray | pa.Array, name: str, dtype: type) -> np.ndarray:
    if column.null_count:
        raise BatchFileError(f"the batch's column {name} holds NULLs; every event has one")
    try:
        return column.cast(pa.string()).cast(pa.int64()).to_numpy(zero_copy_only=False).astype(dtype)
    except (pa.ArrowInvalid, OverflowError) as exc:
        raise BatchFileError(f"the batch's column {name} holds a value that is not an integer: {exc}") from exc


def _empty_batch() -> Batch:
    empty32, empty64 = np.zeros(0, np.int32), np.zeros(0, np.int64)
    return Batch(0, [], {}, empty32, empty32, empty64, empty64, [], [], empty64, np.zeros(0, bool))
