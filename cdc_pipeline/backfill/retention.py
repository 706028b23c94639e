"""Change log retention: days older than ``changelog_retention_days`` are folded into a base, then deleted.

A day is kept ``changelog_retention_days`` full days after it ends (with 30, on 2026-12-31 the days from
2026-12-01 on are kept). The live lineage's events of the days that go are first applied, with their real
positions, to the base state (cdc_pipeline.backfill.base), whose record then names the new base and its
instant; only then are the day files deleted, so a crash anywhere leaves a base and files that agree (a fold
done twice is a no-op: the state store skips events it already holds). As-of snapshots then start from the
base, and the earliest instant they answer becomes the base's. Older lineages (before a rebuild or reset)
lose their days without a base, and their bases go.

Chunks never span an event of a kept day that sits between folded events of its partition (possible only
around midnight): the state store takes a batch's offset span per partition as read whole, and that event must
still apply later.

The merge task calls :func:`prune_once_a_day` after every merge; it works at most once a UTC day.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa

from cdc_pipeline.backfill.base import BaseRecord, base_layout, read_base, remove_bases, write_base
from cdc_pipeline.backfill.limits import to_millis
from cdc_pipeline.backfill.output import remove_abandoned
from cdc_pipeline.backfill.view import live_generation, snapshot_info
from cdc_pipeline.changelog import EPOCH, ChangeLog, event_millis
from cdc_pipeline.errors import CdcError
from cdc_pipeline.history import RunRef
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.pipeline import Pipeline
from cdc_pipeline.state import StateStore
from cdc_pipeline.state.generations import LIVE, GenerationFolder

log = logging.getLogger(__name__)

PRUNED_ON_SETTING = "changelog_pruned_on"
CHUNK_EVENTS = 200_000


@dataclass(frozen=True)
class PruneResult:
    cutoff: str                 # days before it were removed
    folded_events: int          # live-lineage events folded into the base
    removed_files: int
    base: BaseRecord | None

    def line(self) -> str:
        if not self.removed_files:
            return f"change log retention: nothing before {self.cutoff}"
        base = f"; base now as of the end of {self.base.through_day}" if self.base else ""
        return (f"change log retention: removed {self.removed_files} files of days before {self.cutoff}, "
                f"{self.folded_events} events folded into the base{base}")


def prune_once_a_day(pipe: Pipeline, run: RunRef | None = None, *, today: date | None = None) -> str | None:
    """Prune if this UTC day has not been pruned yet; answer the line for the task log. Never fails the merge
    that calls it: a failure is logged and noted on the run, and the next run tries again."""
    today = today or datetime.now(UTC).date()
    runs = pipe.history.runs
    if runs.get_setting(PRUNED_ON_SETTING) == today.isoformat():
        return None
    try:
        result = prune_changelog(pipe.layout, pipe.spec.settings.changelog_retention_days, today=today)
    except (CdcError, OSError) as exc:
        note = f"change log retention failed (the next run tries again): {exc}"
        log.warning("merge: %s", note)
        if run is not None:
            runs.add_note(run.run_id, note[:500])
        return note
    runs.set_setting(PRUNED_ON_SETTING, today.isoformat())
    line = result.line()
    log.info("merge: %s", line)
    return line


def prune_changelog(layout: PipelineLayout, retention_days: int, *, today: date,
                    chunk_events: int = CHUNK_EVENTS) -> PruneResult:
    cutoff = today - timedelta(days=retention_days)
    cutoff_day = cutoff.isoformat()
    remove_abandoned(layout)
    changelog = ChangeLog(layout)
    if not changelog.root.is_dir() or GenerationFolder(layout).pointer(LIVE) is None:
        return PruneResult(cutoff_day, 0, 0, None)  # nothing merged yet
    epoch = live_generation(layout).epoch
    every = changelog.log_files()
    removed = changelog.remove([f for f in every if f.epoch < epoch and f.day < cutoff_day])
    remove_bases(layout, below_epoch=epoch)
    mine = [f for f in every if f.epoch == epoch]
    going = [f for f in mine if f.day < cutoff_day]
    record = read_base(layout, epoch)
    # Days at or before the base's last day are in it already (a fold that died before deleting them).
    unfolded = [f for f in going if record is None or f.day > record.through_day]
    folded = 0
    if unfolded:
        record, folded = _fold(layout, changelog, epoch, mine, unfolded, cutoff, chunk_events)
        write_base(layout, record)  # the commit: from here on readers use the new base and skip the days it holds
    removed += changelog.remove(going)
    return PruneResult(cutoff_day, folded, removed, record)


def _fold(layout, changelog: ChangeLog, epoch: int, mine, going, cutoff: date,
          chunk_events: int) -> tuple[BaseRecord, int]:
    previous = read_base(layout, epoch)
    target = base_layout(layout, epoch)
    live = live_generation(layout)
    if previous is None:
        snapshot = snapshot_info(changelog, mine)
        if target.folder.exists():  # a first fold that died before its record: start it again
            shutil.rmtree(target.folder)
        store = StateStore(target)
        store.create(live.description, lineage="live", epoch=epoch)
        keep: frozenset[str] = frozenset()
        folded_before = 0
    else:
        store = StateStore(target)
        keep = frozenset({previous.generation})
        folded_before = previous.events
    last_generation = max(f.generation for f in going)
    # Kept-day files of the merges that also wrote a going day: their events may sit between folded ones.
    between = [f for f in mine if f.day >= cutoff.isoformat() and f.generation <= last_generation]
    cutoff_ms = to_millis(datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC))
    pending: list[pa.Table] = []
    waiting = folded = 0
    for _, table in changelog.stream([*going, *between]):
        old = event_millis(table) < cutoff_ms
        for start, end, goes in _runs(old):
            if not goes:
                folded += _apply(store, pending, keep)  # a kept event: the chunk ends before it
                pending, waiting = [], 0
                continue
            part = table.slice(start, end - start)
            pending.append(part.drop_columns([EPOCH]) if EPOCH in part.column_names else part)
            waiting += end - start
            if waiting >= chunk_events:
                folded += _apply(store, pending, keep)
                pending, waiting = [], 0
    folded += _apply(store, pending, keep)
    base = store.live()
    if previous is None:
        snapshot_ms = snapshot.instant_ms if snapshot else cutoff_ms - 1
        snapshot_generation = snapshot.generation if snapshot else -1
    else:
        snapshot_ms, snapshot_generation = previous.snapshot_ms, previous.snapshot_generation
    through = cutoff - timedelta(days=1)
    log.info("change log of %s: %s events of the days before %s folded into %s", layout.name, folded, cutoff, base.id)
    record = BaseRecord(epoch=epoch, generation=base.id, through_day=through.isoformat(), instant_ms=cutoff_ms - 1,
                        snapshot_ms=snapshot_ms, snapshot_generation=snapshot_generation,
                        events=folded_before + folded)
    return record, folded


def _runs(flags: np.ndarray) -> list[tuple[int, int, bool]]:
    """Maximal runs of equal flags: (start, end, flag)."""
    if len(flags) == 0:
        return []
    edges = np.flatnonzero(flags[1:] != flags[:-1]) + 1
    starts = np.r_[0, edges]
    ends = np.r_[edges, len(flags)]
    return [(int(a), int(b), bool(flags[a])) for a, b in zip(starts, ends)]


def _apply(store: StateStore, tables: list[pa.Table], keep: frozenset[str]) -> int:
    if not tables:
        return 0
    batch = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
    store.apply(batch, retain=keep)
    return batch.num_rows
