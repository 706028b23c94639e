"""What the change log can answer for the live state lineage: its files, its base, its earliest exact instant.

The live lineage (epoch) is the one destiny.csv shows; a rebuild or reset starts another, and only the live
one's events are read. Its earliest exact instant: the lineage starts with the snapshot's reads (op ``r``),
which show the table at the snapshot's consistency point but carry a later source time (Debezium 3.1.1 gives
every read of a table the instant that table's scan started), so the first instant the log answers exactly is
the latest time among those reads: from then on every read counts as committed, and every change after the
consistency point is in the log with its own commit time. Once retention folded days into a base, the
earliest instant is the base's (the last millisecond of its last day) if that is later.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc

from cdc_pipeline.backfill.base import BaseRecord, read_base
from cdc_pipeline.buffer.batch_buffer import OPERATION
from cdc_pipeline.changelog import ChangeLog, LogFile, event_millis
from cdc_pipeline.errors import AsOfError, StateError
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.source.catalog import TableDescription
from cdc_pipeline.state import GenerationInfo
from cdc_pipeline.state.generations import LIVE, GenerationFolder

POSITION_COLUMNS = ["_incarnation", "_partition", "_offset", "_lsn"]


@dataclass(frozen=True)
class SnapshotInfo:
    instant_ms: int          # the earliest exact instant the lineage's own events give
    generation: int          # reads in merges up to this one are the snapshot's: they count from instant_ms on
    reads: bool              # False: the lineage did not start with a snapshot (a reset to a date or a run)


@dataclass(frozen=True)
class LogView:
    layout: PipelineLayout
    epoch: int
    description: TableDescription
    base: BaseRecord | None
    files: tuple[LogFile, ...]      # the lineage's part files not folded into the base, in position order
    snapshot: SnapshotInfo | None   # None: no event yet

    @property
    def log(self) -> ChangeLog:
        return ChangeLog(self.layout)

    @property
    def earliest_ms(self) -> int | None:
        """The first instant an as-of snapshot is exact at."""
        if self.snapshot is None:
            return None
        return max(self.snapshot.instant_ms, self.base.instant_ms) if self.base else self.snapshot.instant_ms

    def files_through(self, last_day: str) -> list[LogFile]:
        return [f for f in self.files if f.day <= last_day]


def live_generation(layout: PipelineLayout, attempts: int = 3) -> GenerationInfo:
    """The live generation's manifest, read without repairing anything (a merge may be switching it right now:
    read again when the generation just read was replaced and removed)."""
    folder = GenerationFolder(layout)
    for attempt in range(attempts):
        generation_id = folder.pointer(LIVE)
        if generation_id is None:
            raise AsOfError(f"{layout.folder} has no state yet (state/LIVE is missing): let the pipeline's DAG run "
                            "until its first merge, then ask again")
        try:
            return folder.load(generation_id)
        except StateError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


def open_view(layout: PipelineLayout, attempts: int = 5) -> LogView:
    """A consistent view: the base record is read before and after listing the files, so a fold that committed in
    between (and may be deleting the days it folded) is never mixed with the files it leaves."""
    live = live_generation(layout)
    log = ChangeLog(layout)
    for _ in range(attempts):
        base = read_base(layout, live.epoch)
        files = [f for f in log.log_files(epoch=live.epoch) if base is None or f.day > base.through_day]
        if read_base(layout, live.epoch) == base:
            break
    else:
        raise AsOfError(f"the change log of {layout.name} changed {attempts} times while being read (retention "
                        "folding days into its base); ask again")
    if base is not None:
        snapshot = SnapshotInfo(base.snapshot_ms, base.snapshot_generation, base.snapshot_generation >= 0)
    else:
        snapshot = snapshot_info(log, files)
    return LogView(layout, live.epoch, live.description, base, tuple(files), snapshot)


def snapshot_info(log: ChangeLog, files: list[LogFile]) -> SnapshotInfo | None:
    """The latest source time among the lineage's first snapshot reads: the merges up to the first one holding a
    change that is not a read. Without reads, the first event's time (the lineage started mid-stream)."""
    latest: int | None = None
    first_event: int | None = None
    generation = None
    for generation, table in log.stream(files, columns=[OPERATION, "timestamp", *POSITION_COLUMNS]):
        if table.num_rows == 0:
            continue
        millis = event_millis(table)
        reads = pc.equal(table[OPERATION], "r").to_numpy(zero_copy_only=False)
        if first_event is None:
            first_event = int(millis[0])
        if reads.any():
            latest = max(latest or 0, int(millis[reads].max()))
        if not reads.all():
            break
    if first_event is None:
        return None
    if latest is None:
        return SnapshotInfo(first_event, -1, False)
    return SnapshotInfo(latest, generation, True)


def effective_millis(snapshot: SnapshotInfo | None, generation: int, table) -> np.ndarray:
    """Commit times, with the snapshot's reads counted at the snapshot instant (they show the table as it was
    then; their own source time is when their table's scan started)."""
    millis = event_millis(table)
    if snapshot is not None and snapshot.reads and generation <= snapshot.generation:
        reads = pc.equal(table[OPERATION], "r").to_numpy(zero_copy_only=False)
        millis = np.where(reads, snapshot.instant_ms, millis)
    return millis
