"""The change events committed in [from, to), in buffer.csv's form, in position order, from the change log.

Header: ``operacion``, the table's columns, ``timestamp`` (source commit time), then the provenance columns
(``_topic``, ``_partition``, ``_offset``, ``_lsn``, ``_incarnation``, ``_txid``); values in PostgreSQL's COPY
text (NULL empty and unquoted, '' quoted). Each row is the table row after the event (unchanged-TOAST values
resolved), a delete carries what its event carried, a TRUNCATE only its position. A window that holds the
live lineage's snapshot instant starts with the snapshot's reads (op ``r``): the table as it was then.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa

from cdc_pipeline.backfill.coverage import PUBLICATION_MARGIN
from cdc_pipeline.backfill.limits import check_window, show, to_millis
from cdc_pipeline.backfill.output import publish
from cdc_pipeline.backfill.view import LogView, effective_millis, open_view
from cdc_pipeline.buffer.batch_buffer import OPERATION, PROVENANCE, TIMESTAMP
from cdc_pipeline.pgtext.copy_csv import format_row
from cdc_pipeline.errors import AsOfError
from cdc_pipeline.layout import PipelineLayout

ATTEMPTS = 3


@dataclass(frozen=True)
class ChangesResult:
    path: Path
    start: str
    end: str
    events: int
    size: int
    written: bool
    seconds: float

    def line(self) -> str:
        state = "written" if self.written else "unchanged (same bytes)"
        return f"{self.path}: {self.events} changes committed in [{self.start}, {self.end}), {self.size} bytes, {state}"


def write_changes(layout: PipelineLayout, start: datetime, end: datetime, out: Path, *,
                  margin: timedelta = PUBLICATION_MARGIN) -> ChangesResult:
    began = time.monotonic()
    for attempt in range(1, ATTEMPTS + 1):
        view = open_view(layout)
        check_window(view, start, end, margin=margin)
        try:
            with publish(Path(out)) as (handle, outcome):
                events = _write(view, to_millis(start), to_millis(end), handle)
            break
        except FileNotFoundError as exc:
            if attempt == ATTEMPTS:
                raise AsOfError(f"{layout.name}: the change log changed under the window {ATTEMPTS} times (retention "
                                f"folding days into its base?): {exc}. Ask again.") from exc
    return ChangesResult(Path(out), show(start), show(end), events, outcome.size, outcome.written,
                         round(time.monotonic() - began, 3))


def changes_header(view: LogView) -> list[str]:
    return [OPERATION, *view.description.column_names, TIMESTAMP, *PROVENANCE]


def _write(view: LogView, start_ms: int, end_ms: int, handle) -> int:
    header = changes_header(view)
    handle.write(format_row(header).encode("utf-8"))
    first_day, last_day = show(start_ms)[:10], show(end_ms - 1)[:10]
    snapshot = view.snapshot
    with_snapshot = snapshot.reads and start_ms <= snapshot.instant_ms < end_ms
    files = [f for f in view.files if first_day <= f.day <= last_day
             or (with_snapshot and f.generation <= snapshot.generation)]
    written = 0
    for generation, table in view.log.stream(files):
        millis = effective_millis(view.snapshot, generation, table)
        inside = (millis >= start_ms) & (millis < end_ms)
        if not inside.any():
            continue
        part = table.filter(pa.array(inside)) if not inside.all() else table
        columns = [_texts(part[name]) if name in part.column_names else [None] * part.num_rows for name in header]
        handle.write("".join(format_row(row) for row in zip(*columns)).encode("utf-8"))
        written += part.num_rows
    return written


def _texts(column: pa.ChunkedArray) -> list[str | None]:
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column.to_pylist()
    return column.cast(pa.string()).to_pylist()

