"""The table as of an instant, byte for byte as destiny.csv renders it, built from the change log.

Built with the state store itself, in a scratch pipeline folder inside the pipeline folder: an empty state of
the live lineage's table description (or a hard-linked copy of the change log's base), then the lineage's
events committed at or before the instant applied in position order, in chunks, so memory stays bounded by a
chunk and the largest merge. The result is the scratch state's destiny.csv, copied to the output atomically.
Nothing of the live pipeline is written: no lock, no offsets, no buffer, no state.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa

from cdc_pipeline.backfill.base import base_generation, link_generation
from cdc_pipeline.backfill.coverage import PUBLICATION_MARGIN
from cdc_pipeline.backfill.limits import check_as_of, show, to_millis
from cdc_pipeline.backfill.output import publish, scratch_folder
from cdc_pipeline.backfill.view import LogView, effective_millis, open_view
from cdc_pipeline.changelog import EPOCH
from cdc_pipeline.errors import AsOfError, StateError
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.state import StateStore

log = logging.getLogger(__name__)

CHUNK_EVENTS = 100_000   # events per apply: each apply rewrites the scratch destiny.csv once
ATTEMPTS = 3             # a fold of retention may delete files being read: start again on a fresh view


@dataclass(frozen=True)
class AsOfResult:
    path: Path
    at: str
    rows: int
    events: int          # change log events applied on top of the start (empty state or base)
    size: int
    written: bool        # False: the output already held these bytes
    epoch: int
    earliest: str
    covered_until: str
    seconds: float

    def line(self) -> str:
        state = "written" if self.written else "unchanged (same bytes)"
        return (f"{self.path}: the table as of {self.at}, {self.rows} rows, {self.size} bytes, {state}; "
                f"{self.events} change log events applied (answerable from {self.earliest} to {self.covered_until})")


def write_as_of(layout: PipelineLayout, at: datetime, out: Path, *, margin: timedelta = PUBLICATION_MARGIN,
                chunk_events: int = CHUNK_EVENTS) -> AsOfResult:
    """Write the table as of ``at`` to ``out`` (destiny.csv's form); raise AsOfError when it cannot be exact."""
    began = time.monotonic()
    for attempt in range(1, ATTEMPTS + 1):
        view = open_view(layout)
        covered = check_as_of(view, at, margin=margin)
        try:
            with scratch_folder(layout) as scratch, publish(Path(out)) as (handle, outcome):
                rows, events = _build(view, to_millis(at), PipelineLayout(scratch), handle, chunk_events)
            break
        except (FileNotFoundError, StateError) as exc:
            if attempt == ATTEMPTS:
                raise AsOfError(f"{layout.name}: the change log changed under the as-of snapshot {ATTEMPTS} times "
                                f"(retention folding days into its base?): {exc}. Ask again.") from exc
            log.warning("as-of %s: the change log changed while being read (%s); starting again", show(at), exc)
    return AsOfResult(Path(out), show(at), rows, events, outcome.size, outcome.written, view.epoch,
                      show(view.earliest_ms), show(covered.covered), round(time.monotonic() - began, 3))


def _build(view: LogView, at_ms: int, scratch: PipelineLayout, handle, chunk_events: int) -> tuple[int, int]:
    store = StateStore(scratch)
    if view.base is not None:
        link_generation(base_generation(view.layout, view.base), scratch)
        start = store.live()
    else:
        start = store.create(view.description, lineage="live", epoch=view.epoch)
    last_day = show(at_ms)[:10]
    floor = view.base.instant_ms if view.base is not None else -(1 << 62)
    pending: list[pa.Table] = []
    waiting = applied = 0
    for generation, table in view.log.stream(view.files_through(last_day)):
        millis = effective_millis(view.snapshot, generation, table)
        keep = (millis <= at_ms) & (millis > floor)  # events at or before the base's instant are in the base
        if not keep.any():
            continue
        part = table.filter(pa.array(keep))
        part = part.drop_columns([EPOCH]) if EPOCH in part.column_names else part
        taken = 0
        while taken < part.num_rows:  # slices keep each partition's events contiguous and in order
            piece = part.slice(taken, chunk_events - waiting)
            pending.append(piece)
            waiting += piece.num_rows
            taken += piece.num_rows
            if waiting >= chunk_events:
                applied += _apply(store, pending)
                pending, waiting = [], 0
    applied += _apply(store, pending)
    final = store.live()
    if final.description != start.description:
        raise StateError(f"the scratch state of {view.layout.name} changed its table description; not written")
    with open(final.destiny_path, "rb") as source:
        while block := source.read(1 << 22):
            handle.write(block)
    return final.rows, applied


def _apply(store: StateStore, tables: list[pa.Table]) -> int:
    if not tables:
        return 0
    batch = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
    store.apply(batch)
    return batch.num_rows
