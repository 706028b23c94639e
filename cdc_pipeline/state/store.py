"""StateStore: the keyed state of one pipeline, merged in bounded memory, committed by moving one pointer."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa

from cdc_pipeline.pgtext.copy_csv import format_row
from cdc_pipeline.crashpoints import crashpoint
from cdc_pipeline.errors import BatchFileError, StateError
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.source.catalog import TableDescription
from cdc_pipeline.state.batch import Batch, is_replay, merge_ranges, read_batch
from cdc_pipeline.state.generations import LIVE, REBUILD, GenerationFolder
from cdc_pipeline.state.manifest import MAX_RANGES, GenerationInfo, write_manifest
from cdc_pipeline.state.index_files import ROW_DTYPE, IndexReader
from cdc_pipeline.state.reading import Row, diff, read_row, row_batches, rows, rows_with_value
from cdc_pipeline.state.applied_events import applied_table
from cdc_pipeline.state.resolve import DELETED, INSERTED, TRUNCATED, UPDATED, latest_truncate, resolve, truncate_position
from cdc_pipeline.state.rewrite import CHUNK_ROWS, Changes, look_up, rewrite
from cdc_pipeline.state.sort_keys import KeyEncoder, key_orders, unordered_key_types

log = logging.getLogger(__name__)

_ROLES = {"live": LIVE, "rebuild": REBUILD}


@dataclass
class MergeResult:
    """What one :meth:`StateStore.apply` did. ``applied`` is for the change log (see :func:`applied_table`)."""

    events: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    truncated: int = 0       # live rows removed by TRUNCATE events
    stale: int = 0           # already applied, or older than the key's last applied event
    unavailable_values: int = 0  # unchanged-TOAST placeholders with no earlier value to keep
    destiny_rows: int = 0
    generation: str | None = None  # the lineage's generation after the merge
    written: bool = False    # a new generation was committed
    replay: bool = False     # every event was inside the merged offset ranges: nothing was read
    applied: pa.Table | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, object]:
        summary = asdict(replace(self, applied=None))
        summary.pop("applied")
        summary["applied_events"] = self.applied.num_rows if self.applied is not None else 0
        return summary


class StateStore:
    """The state of one pipeline folder (``layout.state_dir``). See the package docstring for the protocol."""

    def __init__(self, layout: PipelineLayout, *, chunk_rows: int = CHUNK_ROWS) -> None:
        self.layout = layout
        self.folder = GenerationFolder(layout)
        self.chunk_rows = chunk_rows
        self.notes: list[str] = []
        self._opened = False

    # --- reading the pointers --------------------------------------------------------------------------

    def live(self) -> GenerationInfo | None:
        self._open()
        return self._current(LIVE)

    def rebuild(self) -> GenerationInfo | None:
        self._open()
        return self._current(REBUILD)

    def generation(self, generation_id: str) -> GenerationInfo:
        return self.folder.load(generation_id)

    # --- creating, promoting, discarding ---------------------------------------------------------------

    def create(self, description: TableDescription, lineage: str = "live", *, epoch: int = 0) -> GenerationInfo:
        """An empty state for ``description`` in a new lineage. ``"live"`` also links destiny.csv to it and
        refuses when a live state with keys exists (replace one through a rebuild); ``"rebuild"`` replaces a
        rebuild in progress. ``epoch`` is the caller's number for the lineage, kept in every later generation.
        Idempotent: an empty state of the same description and epoch is answered as it is."""
        self._open()
        role = self._role(lineage)
        if not description.key_columns:
            raise StateError(f"{description.qualified_table} has no primary key; the state is keyed by it")
        current = self._current(role)
        if current is not None and current.keys == 0 and current.description == description and current.epoch == epoch:
            return current
        if role == LIVE and current is not None:
            raise StateError(
                f"a live state already exists ({current.id}, {current.rows} rows); build a replacement with "
                "create(..., lineage='rebuild') and promote_rebuild()"
            )
        self.notes.extend(unordered_key_types(key_orders(description)))
        lineage_name = self.folder.new_lineage()
        generation_id, path = self.folder.new_generation_path(lineage_name)
        header = format_row(list(description.column_names)).encode("utf-8")
        rewrite(None, None, path, header, _no_changes(), self.chunk_rows)
        info = GenerationInfo(generation_id, path, description, rows=0, tombstones=0,
                              destiny_bytes=len(header), key_width=1, epoch=epoch)
        write_manifest(info)
        self.folder.set_pointer(role, generation_id)
        if role == LIVE:
            self._relink(info)
        if current is not None and current.lineage != lineage_name and current.lineage != self._lineage_of(LIVE):
            self.folder.remove_lineage(current.lineage, keep=set())  # the rebuild this one replaces
        self.folder.remove_leftovers(keep=set(), include_orphans=role == LIVE)
        return self.folder.load(generation_id)

    def promote_rebuild(self, *, retain: Iterable[str] = frozenset()) -> GenerationInfo:
        """The rebuild becomes live in one step (one rename of LIVE); destiny.csv is relinked to it."""
        self._open()
        rebuilt = self._current(REBUILD)
        if rebuilt is None:
            raise StateError("there is no rebuild in progress to promote (state/REBUILD is missing)")
        crashpoint("rebuild.before_swap")
        self.folder.set_pointer(LIVE, rebuilt.id)
        self.folder.clear_pointer(REBUILD)
        self._relink(rebuilt)
        self.folder.remove_old(keep=set(retain))
        return rebuilt

    def discard_rebuild(self) -> None:
        self._open()
        rebuilding = self.folder.pointer(REBUILD)
        if rebuilding is None:
            return
        self.folder.clear_pointer(REBUILD)
        live = self.folder.pointer(LIVE)
        if live is None or live.split("/")[0] != rebuilding.split("/")[0]:
            self.folder.remove_lineage(rebuilding.split("/")[0], keep=set())

    # --- merging ---------------------------------------------------------------------------------------

    def apply(self, batch: pd.DataFrame | pa.Table, *, lineage: str = "live", retain: Iterable[str] = frozenset(),
              before_commit: Callable[[pa.Table, str], None] | None = None) -> MergeResult:
        """Merge a batch of change events (buffer.csv's rows) into the lineage's state. Safe to run twice.

        ``before_commit(applied events, new generation id)`` runs once the new generation is written and before it
        becomes current: the change log is written there, so the state never holds an event the log lacks.
        """
        self._open()
        role = self._role(lineage)
        current = self._current(role)
        if current is None:
            raise StateError(f"there is no {lineage} state to merge into; create one first (StateStore.create)")
        events = read_batch(batch, current.description)
        result = MergeResult(events=events.count, destiny_rows=current.rows, generation=current.id)
        columns = current.columns
        if events.count == 0:
            result.applied = applied_table(events, columns, np.zeros(0, np.int64), {})
            return result
        replayed = is_replay(events, current.merged_ranges)
        if replayed.all():
            result.stale, result.replay = events.count, True
            result.applied = applied_table(events, columns, np.zeros(0, np.int64), {})
            if role == LIVE:
                self.folder.remove_old(keep=set(retain))  # a retry after a crash past the commit
            return result

        keep = set(retain)
        self.folder.remove_leftovers(keep=keep, include_orphans=role == LIVE)
        truncate, codes, distinct = _distinct_keys(events, current)
        with contextlib.closing(IndexReader(current.keys_path, current.rows_path, current.destiny_bytes)) as reader, \
                _opened_fd(current.destiny_path) as old_fd:
            lookup = look_up(reader, distinct, self.chunk_rows)

            def old_row(k: int) -> list[str | None]:
                return read_row(old_fd, int(lookup.rows["offset"][k]), int(lookup.ends[k]))

            resolution = resolve(events, columns, codes, lookup, truncate & replayed, old_row,
                                 truncate_position(current.truncated_at))
            result.stale = resolution.stale
            result.applied = applied_table(events, columns, resolution.applied, resolution.applied_values)
            if not resolution.anything_to_write:
                return result  # every event stale: nothing is written
            changed = np.flatnonzero(resolution.changed)
            changes = Changes(
                keys=distinct[changed], found=lookup.found[changed], position=lookup.position[changed],
                rows=resolution.final[changed], lines=[resolution.lines[k] for k in changed.tolist()],
                truncate=resolution.truncate_position,
            )
            generation_id, path = self.folder.new_generation_path(current.lineage)
            header = format_row(list(columns)).encode("utf-8")
            written = rewrite(reader, current.destiny_path, path, header, changes, self.chunk_rows)

        info = GenerationInfo(
            generation_id, path, current.description, rows=written.rows, tombstones=written.tombstones,
            destiny_bytes=written.destiny_bytes, key_width=written.key_width,
            merged_ranges=merge_ranges(current.merged_ranges, events, MAX_RANGES),
            truncated_at=latest_truncate(current.truncated_at, resolution.truncate_position),
            epoch=current.epoch,
        )
        if before_commit is not None:
            before_commit(result.applied, generation_id)
        self._commit(role, info, keep)
        outcome = resolution.outcome
        result.inserted = int((outcome == INSERTED).sum())
        result.updated = int((outcome == UPDATED).sum())
        result.deleted = int((outcome == DELETED).sum())
        result.truncated = int((outcome == TRUNCATED).sum()) + written.truncated
        result.unavailable_values = resolution.unavailable_values
        result.destiny_rows = written.rows
        result.generation = generation_id
        result.written = True
        return result

    def _commit(self, role: str, info: GenerationInfo, keep: set[str]) -> None:
        """The manifest, then the pointer (the commit itself), then the public link and the cleanup."""
        write_manifest(info)
        crashpoint("merge.before_live_switch")
        self.folder.set_pointer(role, info.id)
        crashpoint("merge.after_live_switch")
        if role == LIVE:
            self._relink(info)
            self.folder.remove_old(keep=keep)
        else:
            self.folder.remove_lineage(info.lineage, keep={info.id, *keep})

    # --- reading generations ---------------------------------------------------------------------------

    def rows(self, generation: GenerationInfo | str) -> Iterator[Row]:
        """Every row of a generation in key order (tuples of COPY text, None for NULL)."""
        return rows(self._info(generation))

    def rows_with_value(self, generation: GenerationInfo | str, value: str) -> int:
        """How many rows of a generation hold ``value`` exactly in some column."""
        return rows_with_value(self._info(generation), value)

    def row_batches(self, generation: GenerationInfo | str) -> Iterator[pa.RecordBatch]:
        """The same rows as Arrow record batches of strings (the fast path for a Parquet sink)."""
        return row_batches(self._info(generation))

    def diff(self, old_generation: GenerationInfo | str | None, new_generation: GenerationInfo | str) -> Iterator[tuple[Row, Row | None]]:
        """(key values, row values or None for deleted) per key whose row changed between the generations."""
        old = None if old_generation is None else self._info(old_generation)
        return diff(old, self._info(new_generation))

    # --- helpers ---------------------------------------------------------------------------------------

    def _open(self) -> None:
        """Repair what a crash between moving LIVE and relinking destiny.csv left (idempotent)."""
        if self._opened:
            return
        live_id = self.folder.pointer(LIVE)
        if live_id is not None and self.folder.pointer(REBUILD) == live_id:
            self.folder.clear_pointer(REBUILD)  # a promotion stopped after moving LIVE
        if live_id is not None:
            info = self.folder.load(live_id)
            self.notes.extend(unordered_key_types(key_orders(info.description)))
            self._relink(info, repair=True)
        self._opened = True

    def _relink(self, info: GenerationInfo, repair: bool = False) -> None:
        note = self.folder.relink_destiny(info, repair)
        if note:
            log.warning("%s", note)
            self.notes.append(note)

    def _lineage_of(self, role: str) -> str | None:
        generation_id = self.folder.pointer(role)
        return None if generation_id is None else generation_id.split("/", 1)[0]

    def _current(self, role: str) -> GenerationInfo | None:
        generation_id = self.folder.pointer(role)
        return None if generation_id is None else self.folder.load(generation_id)

    def _info(self, generation: GenerationInfo | str) -> GenerationInfo:
        return generation if isinstance(generation, GenerationInfo) else self.folder.load(generation)

    @staticmethod
    def _role(lineage: str) -> str:
        if lineage not in _ROLES:
            raise ValueError(f"lineage must be one of {sorted(_ROLES)}. Got {lineage!r}")
        return _ROLES[lineage]


def _distinct_keys(events: Batch, current: GenerationInfo) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(is-truncate per event, each event's index into the distinct keys or -1, the distinct sort keys ascending)."""
    truncate = np.fromiter((op == "t" for op in events.ops), dtype=bool, count=events.count)
    codes = np.full(events.count, -1, dtype=np.int64)
    rows_at = np.flatnonzero(~truncate)
    key_lists = [events.values[k] for k in current.key_columns]
    key_values = [[values[i] for values in key_lists] for i in rows_at.tolist()]
    if any(v is None for row in key_values for v in row):
        raise BatchFileError(f"an event of the batch has a NULL primary-key value ({list(current.key_columns)})")
    if not key_values:
        return truncate, codes, np.zeros(0, "S1")
    encoded = KeyEncoder(tuple(key_orders(current.description).values())).encode_rows(key_values)
    width = max(len(b) for b in encoded)
    distinct, inverse = np.unique(np.array(encoded, dtype=f"S{width}"), return_inverse=True)
    codes[rows_at] = inverse.reshape(-1)
    return truncate, codes, distinct


@contextlib.contextmanager
def _opened_fd(path) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY)
    try:
        yield fd
    finally:
        os.close(fd)


def _no_changes() -> Changes:
    return Changes(keys=np.zeros(0, "S1"), found=np.zeros(0, bool), position=np.zeros(0, np.int64),
                   rows=np.zeros(0, ROW_DTYPE), lines=[], truncate=None)
