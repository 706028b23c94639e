"""The index beside destiny.csv: ``keys.npy`` (sorted sort keys) and ``rows.npy`` (where each row is, and the
position of the last event applied to its key), read and written in chunks so memory never grows with the table.

Both are plain ``.npy`` files (``np.load`` opens them for inspection) with a fixed 256-byte header, so a
writer can stream the entries first and fill in their count at the end, and a reader can seek to entry ``i``
without parsing anything. Entry ``i`` of both files describes the same key; keys are unique and ascending.

``rows.npy`` fields: ``offset`` (the row's first byte in destiny.csv; for a tombstone, the offset the row would
have: that of the next live row), ``deleted`` (a tombstone: the key is kept with its position so that a late,
older event never brings it back), and the last applied event's ``incarnation``, ``partition``,
``kafka_offset`` and ``lsn``. A row's length is the next entry's offset minus its own (the file's size after
the last entry), so a tombstone has length 0 and a live row at least 1 (its newline).
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cdc_pipeline.atomic import READ_ONLY_MODE
from cdc_pipeline.errors import StateError

ROW_DTYPE = np.dtype(
    [
        ("offset", "<i8"),
        ("lsn", "<i8"),
        ("kafka_offset", "<i8"),
        ("incarnation", "<i4"),
        ("partition", "<i4"),
        ("deleted", "?"),
    ]
)
HEADER_BYTES = 256
_MAGIC = b"\x93NUMPY\x01\x00"


def npy_header(dtype: np.dtype, count: int) -> bytes:
    """A version-1.0 .npy header padded to exactly HEADER_BYTES, for a 1-d array of ``count`` entries."""
    text = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (count,)})
    body_length = HEADER_BYTES - len(_MAGIC) - 2
    padded = text.ljust(body_length - 1) + "\n"
    if len(padded) != body_length:
        raise StateError(f"an index header for dtype {dtype} does not fit in {HEADER_BYTES} bytes")
    return _MAGIC + body_length.to_bytes(2, "little") + padded.encode("latin-1")


def read_npy_header(path: Path) -> tuple[np.dtype, int]:
    with open(path, "rb") as handle:
        head = handle.read(HEADER_BYTES)
    if len(head) != HEADER_BYTES or head[: len(_MAGIC)] != _MAGIC:
        raise StateError(f"{path} is not an index file written by this version (bad header)")
    try:
        info = ast.literal_eval(head[len(_MAGIC) + 2 :].decode("latin-1").strip())
        return np.dtype(np.lib.format.descr_to_dtype(info["descr"])), int(info["shape"][0])
    except (ValueError, SyntaxError, KeyError, TypeError) as exc:
        raise StateError(f"{path} has an unreadable index header: {exc}") from exc


class IndexReader:
    """Positional reads of ``keys.npy`` and ``rows.npy`` of one generation; nothing is mapped."""

    def __init__(self, keys_path: Path, rows_path: Path, destiny_bytes: int) -> None:
        self.key_dtype, self.count = read_npy_header(keys_path)
        row_dtype, row_count = read_npy_header(rows_path)
        if row_dtype != ROW_DTYPE or row_count != self.count or self.key_dtype.kind != "S":
            raise StateError(
                f"{keys_path.parent}: keys.npy ({self.key_dtype}, {self.count}) and rows.npy ({row_dtype}, "
                f"{row_count}) do not describe the same keys; the generation is damaged"
            )
        for path, dtype in ((keys_path, self.key_dtype), (rows_path, ROW_DTYPE)):
            expected = HEADER_BYTES + self.count * dtype.itemsize
            if path.stat().st_size != expected:
                raise StateError(f"{path} holds {path.stat().st_size} bytes, its header says {expected}; the generation is damaged")
        self.destiny_bytes = destiny_bytes
        self._keys = os.open(keys_path, os.O_RDONLY)
        self._rows = os.open(rows_path, os.O_RDONLY)

    @property
    def key_width(self) -> int:
        return self.key_dtype.itemsize

    def close(self) -> None:
        for fd in (self._keys, self._rows):
            os.close(fd)

    def __enter__(self) -> IndexReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def keys(self, start: int, stop: int) -> np.ndarray:
        return _pread_array(self._keys, self.key_dtype, start, stop)

    def rows(self, start: int, stop: int) -> np.ndarray:
        return _pread_array(self._rows, ROW_DTYPE, start, stop)

    def rows_and_ends(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Entries [start, stop) of rows.npy, and where each row ends in destiny.csv (the next entry's offset,
        the file's size after the last entry)."""
        extended = self.rows(start, min(stop + 1, self.count))
        ends = extended["offset"][1:].astype(np.int64)
        if stop >= self.count:
            ends = np.append(ends, np.int64(self.destiny_bytes))
        return extended[: stop - start], ends

    def chunks(self, chunk_rows: int) -> Iterator[tuple[int, int]]:
        for start in range(0, self.count, chunk_rows):
            yield start, min(start + chunk_rows, self.count)


def _pread_array(fd: int, dtype: np.dtype, start: int, stop: int) -> np.ndarray:
    count = max(stop - start, 0)
    size = count * dtype.itemsize
    buffer = bytearray(size)
    view = memoryview(buffer)
    done = 0
    while done < size:
        got = os.preadv(fd, [view[done:]], HEADER_BYTES + start * dtype.itemsize + done)
        if got == 0:
            raise StateError(f"index file ended early reading entries {start}..{stop}")
        done += got
    return np.frombuffer(buffer, dtype=dtype, count=count)


class IndexWriter:
    """Appends entries to a new generation's ``keys.npy`` and ``rows.npy``; the counts go into the headers last."""

    def __init__(self, keys_path: Path, rows_path: Path, key_width: int) -> None:
        self.key_dtype = np.dtype(f"S{max(key_width, 1)}")
        self.count = 0
        self._paths = (keys_path, rows_path)
        self._keys = _create_read_only(keys_path)
        self._rows = _create_read_only(rows_path)
        for fd, dtype in ((self._keys, self.key_dtype), (self._rows, ROW_DTYPE)):
            os.write(fd, npy_header(dtype, 0))

    def append(self, keys: np.ndarray, rows: np.ndarray) -> None:
        if len(keys) != len(rows):
            raise ValueError(f"{len(keys)} keys but {len(rows)} rows")
        if len(keys) == 0:
            return
        _write_all(self._keys, np.ascontiguousarray(keys.astype(self.key_dtype, copy=False)).tobytes())
        _write_all(self._rows, np.ascontiguousarray(rows.astype(ROW_DTYPE, copy=False)).tobytes())
        self.count += len(keys)

    def finish(self) -> None:
        """Write the final headers and make both files durable."""
        for fd, dtype in ((self._keys, self.key_dtype), (self._rows, ROW_DTYPE)):
            os.pwrite(fd, npy_header(dtype, self.count), 0)
            os.fsync(fd)
        self.close()

    def close(self) -> None:
        for fd in (self._keys, self._rows):
            try:
                os.close(fd)
            except OSError:
                pass


def _create_read_only(path: Path) -> int:
    """A new file, mode 0444: a generation is never modified once written (the open fd can still write)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, READ_ONLY_MODE)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
