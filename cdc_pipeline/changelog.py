"""The change log: every merged event, kept in order as Parquet, partitioned by source commit date.

``changelog/date=YYYY-MM-DD/e<epoch>-<generation>.parquet`` holds the events one merge applied whose
source commit fell on that day: ``operacion``, every column in its COPY text (TOAST placeholders already
resolved), ``timestamp`` (source commit time), and the source position (``_topic``, ``_partition``,
``_offset``, ``_lsn``, ``_incarnation``, ``_txid``) plus ``_epoch``, the state lineage they were merged into.

It is written by the merge before the new state generation goes live, so nothing the state holds is
missing from it; a merge that crashed after writing and is retried may write its events again under
another file name, so readers deduplicate by (epoch, incarnation, partition, offset). It is what
``as-of``, ``changes``, backfill runs and ``verify`` read, and what survives when Kafka forgets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cdc_pipeline.atomic import atomic_writer
from cdc_pipeline.batch_buffer import TIMESTAMP
from cdc_pipeline.layout import PipelineLayout

EPOCH = "_epoch"
IDENTITY = (EPOCH, "_incarnation", "_partition", "_offset")
_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


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

    def files(self, *, epoch: int | None = None, first_day: str | None = None, last_day: str | None = None) -> Iterator[Path]:
        """Part files in date order (within a day, in the order they were written)."""
        for day in self.days():
            if (first_day and day < first_day) or (last_day and day > last_day):
                continue
            parts = sorted(self.root.joinpath(f"date={day}").glob("e*.parquet"), key=lambda p: p.stat().st_mtime_ns)
            for path in parts:
                if epoch is None or path.name.startswith(f"e{epoch:04d}-"):
                    yield path

    def read(self, *, epoch: int, first_day: str | None = None, last_day: str | None = None) -> pa.Table | None:
        """The epoch's events in the given days, deduplicated, in position order; None when there are none."""
        tables = [pq.read_table(path) for path in self.files(epoch=epoch, first_day=first_day, last_day=last_day)]
        if not tables:
            return None
        table = pa.concat_tables(tables, promote_options="default")
        order = pc.sort_indices(table, sort_keys=[("_incarnation", "ascending"), ("_lsn", "ascending"),
                                                  ("_partition", "ascending"), ("_offset", "ascending")])
        table = table.take(order)
        return _dedup(table)


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
