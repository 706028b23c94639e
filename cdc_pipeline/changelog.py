"""The change log: every merged event, kept in order as Parquet, partitioned by source commit date.

``changelog/date=YYYY-MM-DD/e<epoch>-<generation>.parquet`` holds the events one merge applied whose
source commit fell on that day: ``operacion``, every column in its COPY text (TOAST placeholders already
resolved), ``timestamp`` (source commit time), and the source position (``_topic``, ``_partition``,
``_offset``, ``_lsn``, ``_incarnation``, ``_txid``) plus ``_epoch``, the state lineage they were merged into.
``changelog/base-e<epoch>/`` is the state of the days retention removed (cdc_pipeline.backfill.retention).

It is written by the merge before the new state generation goes live, so nothing the state holds is
missing from it; a merge that crashed after writing and is retried may write its events again, so readers
deduplicate by (epoch, incarnation, partition, offset). Every file is written atomically, so a reader that
runs beside a merge sees whole files or none. It is what ``as-of``, ``changes``, backfill runs and ``verify``
read, and what survives when Kafka forgets.

Position order, the order :meth:`ChangeLog.stream` answers: merges in the order they happened (their
generation number), and within a merge each partition's events in offset order (Debezium's emission order,
the order the state folds a key's events in), partitions interleaved by LSN.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cdc_pipeline.atomic import atomic_writer, fsync_dir
from cdc_pipeline.buffer.batch_buffer import TIMESTAMP
from cdc_pipeline.layout import PipelineLayout

EPOCH = "_epoch"
IDENTITY = (EPOCH, "_incarnation", "_partition", "_offset")
_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_PART_FILE = re.compile(r"^e(\d{4,})-lineage-(\d{4,})-gen-(\d{6,})\.parquet$")


@dataclass(frozen=True)
class LogFile:
    """One part file: the events of one merge (``generation``) committed on one ``day``."""

    path: Path
    day: str
    epoch: int
    generation: int

    @property
    def order(self) -> tuple[int, str]:
        return self.generation, self.day


class ChangeLog:
    def __init__(self, layout: PipelineLayout) -> None:
        self.layout = layout
        self.root = layout.changelog_dir

    def append(self, applied: pa.Table, *, epoch: int, generation: str) -> list[Path]:
        """Write one merge's applied events, one file per commit date, atomically; answer the files."""
        if applied.num_rows == 0:
            return []
        table = applied.append_column(EPOCH, pa.array([epoch] * applied.num_rows, pa.int32()))
        dates = pc.utf8_slice_codeunits(table[TIMESTAMP], 0, 10)
        written = []
        name = f"e{epoch:04d}-{generation.replace('/', '-')}.parquet"
        for day in sorted(set(dates.to_pylist())):
            part = table.filter(pc.equal(dates, day))
            path = self.root / f"date={day}" / name
            with atomic_writer(path, "wb") as handle:
                pq.write_table(part, handle, compression="zstd")
            written.append(path)
        return written

    def days(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(m.group(1) for p in self.root.iterdir() if (m := _DATE_DIR.match(p.name)))

    def log_files(self, *, epoch: int | None = None, first_day: str | None = None,
                  last_day: str | None = None) -> list[LogFile]:
        """Part files in position order (by merge, then day)."""
        found = []
        for day in self.days():
            if (first_day and day < first_day) or (last_day and day > last_day):
                continue
            with contextlib.suppress(FileNotFoundError):  # a day pruned while listing
                for path in self.root.joinpath(f"date={day}").iterdir():
                    match = _PART_FILE.match(path.name)
                    if match and (epoch is None or int(match.group(1)) == epoch):
                        found.append(LogFile(path, day, int(match.group(1)), int(match.group(3))))
        return sorted(found, key=lambda f: f.order)

    def files(self, *, epoch: int | None = None, first_day: str | None = None, last_day: str | None = None) -> Iterator[Path]:
        """Part files in date order (within a day, in merge order)."""
        for item in sorted(self.log_files(epoch=epoch, first_day=first_day, last_day=last_day),
                           key=lambda f: (f.day, f.generation)):
            yield item.path

    def read(self, *, epoch: int, first_day: str | None = None, last_day: str | None = None) -> pa.Table | None:
        """The epoch's events in the given days, deduplicated, in (incarnation, LSN, partition, offset) order;
        None when there are none. Holds them all in memory: :meth:`stream` is the bounded reader."""
        tables = [pq.read_table(path) for path in self.files(epoch=epoch, first_day=first_day, last_day=last_day)]
        if not tables:
            return None
        table = pa.concat_tables(tables, promote_options="default")
        order = pc.sort_indices(table, sort_keys=[("_incarnation", "ascending"), ("_lsn", "ascending"),
                                                  ("_partition", "ascending"), ("_offset", "ascending")])
        table = table.take(order)
        return _dedup(table)

    def stream(self, files: Iterable[LogFile], columns: list[str] | None = None) -> Iterator[tuple[int, pa.Table]]:
        """(generation, its events) in position order, deduplicated, one merge at a time, so memory is bounded
        by the largest merge (which the merge itself held). ``files`` come from :meth:`log_files`."""
        deduplicate = Deduplicator()
        for generation, group in _by_generation(files):
            tables = [pq.read_table(f.path, columns=columns) for f in group]
            table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
            if table.num_rows == 0:
                continue
            table = table.take(position_order(table))
            yield generation, deduplicate(table)

    def remove(self, files: Iterable[LogFile]) -> int:
        """Delete part files (retention), then the day folders they leave empty; answer how many went."""
        removed = 0
        folders = set()
        for item in files:
            with contextlib.suppress(FileNotFoundError):
                item.path.unlink()
                removed += 1
            folders.add(item.path.parent)
        for folder in folders:
            with contextlib.suppress(OSError):
                fsync_dir(folder)
                if not any(folder.iterdir()):
                    folder.rmdir()
        if folders and self.root.is_dir():
            fsync_dir(self.root)
        return removed


def position_order(table: pa.Table) -> np.ndarray:
    """Indices that put one merge's events in position order: each (incarnation, partition) in offset order,
    partitions interleaved by the running maximum of their LSN (so no partition's own order is broken)."""
    inc = table["_incarnation"].to_numpy().astype(np.int64)
    part = table["_partition"].to_numpy().astype(np.int64)
    offset = table["_offset"].to_numpy().astype(np.int64)
    lsn = table["_lsn"].to_numpy().astype(np.int64)
    by_partition = np.lexsort((offset, part, inc))
    running = lsn[by_partition].copy()
    group = inc[by_partition] * (1 << 32) + part[by_partition]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    for begin, end in zip(starts, np.r_[starts[1:], len(group)]):
        np.maximum.accumulate(running[begin:end], out=running[begin:end])
    key = np.empty(len(table), np.int64)
    key[by_partition] = running
    return np.lexsort((offset, part, key, inc))


def event_millis(table: pa.Table) -> np.ndarray:
    """Each event's source commit time (``timestamp``, PostgreSQL's timestamptz text in UTC) in epoch ms."""
    column = table[TIMESTAMP]
    parsed = pc.cast(column, pa.timestamp("ms", "UTC")) if column.type != pa.timestamp("ms", "UTC") else column
    return pc.cast(parsed, pa.int64()).to_numpy(zero_copy_only=False)


class Deduplicator:
    """Drops events already seen, by the highest offset seen per (incarnation, partition): in position order a
    partition's offsets only grow, so an offset at or below it is a copy a retried merge wrote again."""

    def __init__(self) -> None:
        self.highest: dict[tuple[int, int], int] = {}

    def __call__(self, table: pa.Table) -> pa.Table:
        inc = table["_incarnation"].to_numpy().astype(np.int64)
        part = table["_partition"].to_numpy().astype(np.int64)
        offset = table["_offset"].to_numpy().astype(np.int64)
        keep = np.ones(len(offset), bool)
        groups = inc * (1 << 32) + part
        for code in np.unique(groups).tolist():
            rows = np.flatnonzero(groups == code)  # ascending: the table is in position order
            key = (code >> 32, code & 0xFFFFFFFF)
            ordered = offset[rows]
            floor = self.highest.get(key, -1)
            seen_before = np.maximum.accumulate(np.r_[floor, ordered[:-1]])
            keep[rows] = ordered > seen_before
            self.highest[key] = max(floor, int(ordered.max()))
        return table if keep.all() else table.filter(pa.array(keep))


def _by_generation(files: Iterable[LogFile]) -> Iterator[tuple[int, list[LogFile]]]:
    group: list[LogFile] = []
    for item in sorted(files, key=lambda f: f.order):
        if group and item.generation != group[0].generation:
            yield group[0].generation, group
            group = []
        group.append(item)
    if group:
        yield group[0].generation, group


def _dedup(table: pa.Table) -> pa.Table:
    """Keep the first of events with the same identity (a retried merge may have written them twice)."""
    if table.num_rows < 2:
        return table
    keys = [table[c].to_pylist() for c in IDENTITY]
    seen: set[tuple] = set()
    keep = []
    for index, ident in enumerate(zip(*keys)):
        if ident not in seen:
            seen.add(ident)
            keep.append(index)
    return table if len(keep) == table.num_rows else table.take(pa.array(keep))
