"""Change log retention: days older than ``changelog_retention_days`` are folded into a base, then deleted.

A day is kept ``changelog_retention_days`` full days after it ends (with 30, on 2026-12-31 the days from
2026-12-01 on are kept). The live lineage's events of the days that go are first applied, with their real
positions, to the base state (cdc_pipeline.backfill.base), whose record then names the new base and its
instant; only then are the day files deleted, so a crash anywhere leaves a base and files that agree (a fold
done twice is a no-op: the state store skips events it already holds). As-of snapshots then start from the
base, and the earliest instant they answer becomes the base's. Older lineages (before a rebuild or reset)
lose their days without a base, and their bases go.

:func:`fold_before` does the folding for any instant (the day pruning calls it with midnight; the stack test
with an instant between two workload phases, since real events all fall on one day). Its chunks never span an
event that stays and sits between folded events of its partition (a commit time inverted by a millisecond
around the cut): the state store takes a batch's offset span per partition as read whole, and that event must
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
from cdc_pipeline.backfill.limits import show, to_millis
from cdc_pipeline.backfill.output import remove_abandoned
from cdc_pipeline.backfill.view import SnapshotInfo, effective_millis, live_generation, snapshot_info
from cdc_pipeline.changelog import EPOCH, ChangeLog
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
    record, folded = fold_before(layout, datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC),
                                 chunk_events=chunk_events)
    if record is not None and record.through_day >= (cutoff - timedelta(days=1)).isoformat():
        removed += changelog.remove([f for f in every if f.epoch == epoch and f.day < cutoff_day])
    return PruneResult(cutoff_day, folded, removed, record)


def fold_before(layout: PipelineLayout, before: datetime, *,
                chunk_events: int = CHUNK_EVENTS) -> tuple[BaseRecord | None, int]:
    """Fold the live lineage's events committed before ``before`` into its base (which then stands for the table
    as of ``before`` - 1 ms); answer the base record and how many events were folded now. Deletes nothing.
    Nothing is folded while the lineage's snapshot instant is not before ``before``: no exact base exists then."""
    changelog = ChangeLog(layout)
    live = live_generation(layout)
    epoch = live.epoch
    cutoff_ms = to_millis(before)
    previous = read_base(layout, epoch)
    if previous is not None and previous.instant_ms >= cutoff_ms - 1:
        return previous, 0
    mine = changelog.log_files(epoch=epoch)
    last_day = show(cutoff_ms - 1)[:10]
    candidates = [f for f in mine if (previous is None or f.day > previous.through_day) and f.day <= last_day]
    snapshot = _snapshot(previous) if previous else snapshot_info(changelog, mine)
    if not candidates or snapshot is None or snapshot.instant_ms >= cutoff_ms:
        return previous, 0
    store, keep = _base_store(layout, live, previous)
    last_generation = max(f.generation for f in candidates)
    # Later days' files of the merges that also wrote a folded day: their events may sit between folded ones.
    between = [f for f in mine if f.day > last_day and f.generation <= last_generation]
    already = previous.instant_ms if previous else None
    pending: list[pa.Table] = []
    waiting = folded = 0
    for generation, table in changelog.stream([*candidates, *between]):
        millis = effective_millis(snapshot, generation, table)
        for start, end, goes in _runs(millis < cutoff_ms):
            if not goes:
                _apply(store, pending, keep)  # an event that stays: the chunk ends before it
                pending, waiting = [], 0
                continue
            part = table.slice(start, end - start)
            pending.append(part.drop_columns([EPOCH]) if EPOCH in part.column_names else part)
            waiting += end - start
            folded += int((millis[start:end] > already).sum()) if already is not None else end - start
            if waiting >= chunk_events:
                _apply(store, pending, keep)
                pending, waiting = [], 0
    _apply(store, pending, keep)
    through = datetime.fromisoformat(show(cutoff_ms)[:10]).date() - timedelta(days=1)
    record = BaseRecord(epoch=epoch, generation=store.live().id, through_day=through.isoformat(),
                        instant_ms=cutoff_ms - 1, snapshot_ms=snapshot.instant_ms,
                        snapshot_generation=snapshot.generation, events=(previous.events if previous else 0) + folded)
    write_base(layout, record)  # the commit: from here on readers start from this base
    log.info("change log of %s: %s events committed before %s folded into its base (%s)", layout.name, folded,
             show(cutoff_ms), record.generation)
    return record, folded


def _snapshot(record: BaseRecord) -> SnapshotInfo:
    return SnapshotInfo(record.snapshot_ms, record.snapshot_generation, record.snapshot_generation >= 0)


def _base_store(layout: PipelineLayout, live, previous: BaseRecord | None) -> tuple[StateStore, frozenset[str]]:
    target = base_layout(layout, live.epoch)
    if previous is not None:
        return StateStore(target), frozenset({previous.generation})  # the recorded base survives this fold
    if target.folder.exists():  # a first fold that died before its record: start it again
        shutil.rmtree(target.folder)
    store = StateStore(target)
    store.create(live.description, lineage="live", epoch=live.epoch)
    return store, frozenset()


def _runs(flags: np.ndarray) -> list[tuple[int, int, bool]]:
    """Maximal runs of equal flags: (start, end, flag)."""
    if len(flags) == 0:
        return []
    edges = np.flatnonzero(flags[1:] != flags[:-1]) + 1
    starts = np.r_[0, edges]
    ends = np.r_[edges, len(flags)]
    return [(int(a), int(b), bool(flags[a])) for a, b in zip(starts, ends)]


def _apply(store: StateStore, tables: list[pa.Table], keep: frozenset[str]) -> None:
    if tables:
        store.apply(tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default"), retain=keep)
