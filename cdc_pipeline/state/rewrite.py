"""The two streaming passes of a merge over the previous generation, chunk by chunk.

1. :func:`look_up` finds the batch's keys in ``keys.npy`` (``np.searchsorted`` per chunk) and reads their
   entries of ``rows.npy``.
2. :func:`rewrite` writes the new generation: the index with the batch's keys updated or inserted, truncated
   keys turned into tombstones and every offset shifted; destiny.csv by copying the unchanged byte ranges of
   the previous file (``copy_file_range``: no parsing, no copy through Python for long ranges) and writing
   only the changed rows.

Memory is one chunk of the index plus the batch, whatever the table's size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cdc_pipeline.atomic import READ_ONLY_MODE
from cdc_pipeline.crashpoints import crashpoint
from cdc_pipeline.state.index_files import ROW_DTYPE, IndexReader, IndexWriter
from cdc_pipeline.state.manifest import DESTINY_FILE, KEYS_FILE, ROWS_FILE
from cdc_pipeline.state.resolve import KeyLookup

CHUNK_ROWS = 1 << 16
_COPY_THROUGH_KERNEL = 1 << 18  # shorter ranges are read and buffered: one syscall per range would cost more
_BUFFER_BYTES = 1 << 22


def look_up(reader: IndexReader | None, keys: np.ndarray, chunk_rows: int = CHUNK_ROWS) -> KeyLookup:
    """Where each of ``keys`` (unique, ascending) is in the generation, and its entry when it is there."""
    count = len(keys)
    lookup = KeyLookup(
        found=np.zeros(count, dtype=bool),
        position=np.zeros(count, dtype=np.int64),
        rows=np.zeros(count, dtype=ROW_DTYPE),
        ends=np.zeros(count, dtype=np.int64),
    )
    if reader is None or reader.count == 0 or count == 0:
        lookup.position[:] = 0 if reader is None else reader.count
        return lookup
    width = max(reader.key_width, keys.dtype.itemsize)
    keys = keys.astype(f"S{width}", copy=False)
    done = 0
    for start, stop in reader.chunks(chunk_rows):
        chunk = reader.keys(start, stop).astype(f"S{width}", copy=False)
        upto = int(np.searchsorted(keys, chunk[-1], side="right"))
        if upto > done:
            local = np.searchsorted(chunk, keys[done:upto], side="left")
            hit = chunk[local] == keys[done:upto]
            lookup.position[done:upto] = start + local
            if hit.any():
                rows, ends = reader.rows_and_ends(start, stop)
                where = np.flatnonzero(hit)
                lookup.found[done + where] = True
                lookup.rows[done + where] = rows[local[where]]
                lookup.ends[done + where] = ends[local[where]]
            done = upto
        if done == count:
            break
    lookup.position[done:] = reader.count
    return lookup


@dataclass
class Changes:
    """What the new generation changes, per distinct batch key (ascending), for :func:`rewrite`."""

    keys: np.ndarray            # S{W}
    found: np.ndarray           # bool: the key has an entry in the previous generation
    position: np.ndarray        # int64: that entry, or where the key is inserted
    rows: np.ndarray            # ROW_DTYPE: the new entry (offset filled in by rewrite)
    lines: list[bytes | None]   # the new row of a key that ends live, else None
    truncate: np.ndarray | None  # ROW_DTYPE scalar: every other key with a lower LSN becomes this tombstone


@dataclass
class Written:
    keys: int
    rows: int
    tombstones: int
    destiny_bytes: int
    truncated: int
    key_width: int


def rewrite(
    reader: IndexReader | None,
    old_destiny: Path | None,
    target: Path,
    header: bytes,
    changes: Changes,
    chunk_rows: int = CHUNK_ROWS,
) -> Written:
    """Write ``target``/destiny.csv, keys.npy and rows.npy: the previous generation with ``changes`` applied."""
    width = max(reader.key_width if reader else 1, changes.keys.dtype.itemsize if len(changes.keys) else 1)
    index = IndexWriter(target / KEYS_FILE, target / ROWS_FILE, width)
    out_fd = os.open(target / DESTINY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, READ_ONLY_MODE)
    in_fd = os.open(old_destiny, os.O_RDONLY) if reader is not None and old_destiny is not None else -1
    try:
        destiny = RangeWriter(out_fd, in_fd)
        destiny.write(header)
        total = reader.count if reader else 0
        bounds = list(reader.chunks(chunk_rows)) if reader and total else [(0, 0)]
        rows_live = tombstones = truncated = 0
        done = 0
        for number, (start, stop) in enumerate(bounds):
            last = number == len(bounds) - 1
            upto = len(changes.keys) if last else int(np.searchsorted(changes.position, stop, side="left"))
            stats = _rewrite_chunk(reader, start, stop, changes, done, upto, destiny, index, width)
            rows_live, tombstones, truncated = rows_live + stats[0], tombstones + stats[1], truncated + stats[2]
            done = upto
            if number == 0:
                crashpoint("merge.mid_state_write")
        size = destiny.finish()
        os.fsync(out_fd)
        index.finish()
    except BaseException:
        index.close()
        raise
    finally:
        os.close(out_fd)
        if in_fd >= 0:
            os.close(in_fd)
    return Written(index.count, rows_live, tombstones, size, truncated, width)


def _rewrite_chunk(reader, start, stop, changes: Changes, first, upto, destiny, index, width):
    """One chunk of the old index [start, stop) with the batch keys first..upto that fall in it."""
    if reader is not None and stop > start:
        keys = reader.keys(start, stop).astype(f"S{width}")
        rows, ends = reader.rows_and_ends(start, stop)
        rows = rows.copy()
    else:
        keys, rows, ends = np.zeros(0, f"S{width}"), np.zeros(0, ROW_DTYPE), np.zeros(0, np.int64)
    old_offsets = rows["offset"].copy()
    old_lengths = ends - old_offsets
    lengths = old_lengths.copy()
    kind = np.zeros(len(rows), dtype=np.int8)  # 0: copy the old bytes, 1: write a new line, 2: write nothing
    line_of = np.full(len(rows), -1, dtype=np.int64)

    selected = np.arange(first, upto)
    found = selected[changes.found[first:upto]]
    new = selected[~changes.found[first:upto]]
    lines = changes.lines

    if len(found):
        local = changes.position[found] - start
        rows[local] = changes.rows[found]
        live = ~changes.rows["deleted"][found]
        kind[local] = np.where(live, 1, 2)
        lengths[local] = [len(lines[k]) if lines[k] is not None else 0 for k in found.tolist()]
        line_of[local] = np.where(live, found, -1)

    truncated = 0
    if changes.truncate is not None and len(rows):
        hit = (rows["lsn"] < changes.truncate["lsn"]) & (kind == 0)
        if hit.any():
            removed = hit & ~rows["deleted"]
            truncated = int(removed.sum())
            rows[hit] = changes.truncate
            kind[removed] = 2
            lengths[hit] = 0

    if len(new):
        at = changes.position[new] - start
        new_live = ~changes.rows["deleted"][new]
        keys = np.insert(keys, at, changes.keys[new].astype(f"S{width}"))
        rows = np.insert(rows, at, changes.rows[new])
        kind = np.insert(kind, at, np.where(new_live, 1, 2).astype(np.int8))
        lengths = np.insert(lengths, at, [len(lines[k]) if lines[k] is not None else 0 for k in new.tolist()])
        line_of = np.insert(line_of, at, np.where(new_live, new, -1))
        old_offsets = np.insert(old_offsets, at, 0)
        old_lengths = np.insert(old_lengths, at, 0)

    base = destiny.position
    if len(rows):
        rows["offset"] = base + np.concatenate(([0], np.cumsum(lengths[:-1])))
    _write_rows(destiny, kind, old_offsets, old_lengths, line_of, lines)
    index.append(keys, rows)
    live = int((~rows["deleted"]).sum())
    return live, len(rows) - live, truncated


def _write_rows(destiny: RangeWriter, kind, old_offsets, old_lengths, line_of, lines) -> None:
    """Copy runs of unchanged rows, write new lines, skip removed rows, in the chunk's key order."""
    copy = kind == 0
    if copy.all():
        if len(kind):
            destiny.copy(int(old_offsets[0]), int(old_offsets[-1] + old_lengths[-1]))
        return
    padded = np.concatenate(([False], copy, [False]))
    run_starts = np.flatnonzero(padded[1:-1] & ~padded[:-2])
    run_ends = np.flatnonzero(padded[1:-1] & ~padded[2:])
    writes = np.flatnonzero(kind == 1)
    actions = np.concatenate((run_starts, writes))
    is_write = np.concatenate((np.zeros(len(run_starts), bool), np.ones(len(writes), bool)))
    order = np.argsort(actions, kind="stable")
    run_end_of = dict(zip(run_starts.tolist(), run_ends.tolist()))
    for at, write in zip(actions[order].tolist(), is_write[order].tolist()):
        if write:
            destiny.write(lines[int(line_of[at])])
        else:
            end = run_end_of[at]
            destiny.copy(int(old_offsets[at]), int(old_offsets[end] + old_lengths[end]))


class RangeWriter:
    """Sequential output assembled from new bytes and byte ranges of another file."""

    def __init__(self, out_fd: int, in_fd: int) -> None:
        self.out_fd = out_fd
        self.in_fd = in_fd
        self.position = 0
        self._buffer = bytearray()
        self._kernel_copy = True

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.position += len(data)
        if len(self._buffer) >= _BUFFER_BYTES:
            self._flush()

    def copy(self, start: int, end: int) -> None:
        length = end - start
        if length <= 0:
            return
        if length < _COPY_THROUGH_KERNEL:
            self._buffer += os.pread(self.in_fd, length, start)
            self.position += length
            if len(self._buffer) >= _BUFFER_BYTES:
                self._flush()
            return
        self._flush()
        done = 0
        while done < length:
            done += self._copy_some(start + done, length - done)
        self.position += length

    def finish(self) -> int:
        self._flush()
        return self.position

    def _copy_some(self, offset: int, count: int) -> int:
        if self._kernel_copy:
            try:
                copied = os.copy_file_range(self.in_fd, self.out_fd, count, offset)
                if copied > 0:
                    return copied
            except OSError:
                pass
            self._kernel_copy = False  # another file system or an old kernel: copy through user space
        data = os.pread(self.in_fd, min(count, _BUFFER_BYTES), offset)
        if not data:
            raise OSError(f"destiny.csv of the previous generation ended at byte {offset}, before its index said")
        _write_all(self.out_fd, data)
        return len(data)

    def _flush(self) -> None:
        if self._buffer:
            _write_all(self.out_fd, self._buffer)
            self._buffer = bytearray()


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
