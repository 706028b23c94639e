"""buffer.csv: the change events read from Kafka and not yet merged into destiny.csv.

Layout: the prototype's columns first (``operacion``, the table's columns, ``timestamp`` = source commit
time), then provenance (``_topic``, ``_partition``, ``_offset``, ``_lsn``, ``_incarnation``, ``_txid``).
Values are in PostgreSQL's COPY text form, so NULL (empty, unquoted) and '' (``""``) stay apart. A TRUNCATE
is a row with ``operacion`` ``t`` and every table column NULL. A sidecar ``buffer.meta.json`` names the
table, its columns, its primary key and the state lineage (epoch) the events are meant for, which the
merge needs and the CSV header cannot say.

A batch is added to what is still unmerged, deduplicated by (incarnation, partition, offset): a retry that
reads the same range again, or a merge that failed last run, never loses nor doubles an event.

The consume step hands its batch over as :class:`BufferRows`: each event already rendered as its CSV line
by the decoder (no dict per row, no second formatting pass), which matters at hundreds of thousands of
events a batch. Rows as dicts keyed by buffer column are accepted too.
"""

from __future__ import annotations

import json
import shutil
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from cdc_pipeline.atomic import atomic_write_text, atomic_writer
from cdc_pipeline.pgtext.copy_csv import format_row, frame_of, read_copy_csv_table
from cdc_pipeline.errors import BatchFileError, ConfigError
from cdc_pipeline.layout import PipelineLayout

OPERATION = "operacion"
TIMESTAMP = "timestamp"
PROVENANCE = ("_topic", "_partition", "_offset", "_lsn", "_incarnation", "_txid")
RESERVED = (OPERATION, TIMESTAMP, *PROVENANCE)
OPERATION_TRUNCATE = "t"
# What identifies one Kafka record across topic incarnations (offsets restart at 0 in a new one).
RECORD_IDENTITY = ("_incarnation", "_partition", "_offset")


@dataclass(frozen=True)
class BufferMeta:
    table: str
    columns: tuple[str, ...]
    key_columns: tuple[str, ...]
    epoch: int = 0

    def header(self) -> list[str]:
        return [OPERATION, *self.columns, TIMESTAMP, *PROVENANCE]


class BufferRows:
    """One batch's events as buffer.csv lines, in reading order, and what identifies each (its partition and
    offset; the incarnation is the batch's). A TRUNCATE's line is completed (every table column NULL) only
    when the buffer's columns are known: :meth:`lines`."""

    def __init__(self, incarnation: str) -> None:
        self.incarnation = incarnation
        self._lines: list[str | None] = []
        self._partitions = array("i")
        self._offsets = array("q")
        self._truncates: dict[int, str] = {}  # index -> the line's part after the table's fields
        self.column_layouts: set[tuple[str, ...]] = set()  # the columns the lines were rendered for

    def append(self, line: str, partition: int, offset: int) -> None:
        """A whole line: ``op,<fields>,timestamp,_topic,...\n``."""
        self._lines.append(line)
        self._partitions.append(partition)
        self._offsets.append(offset)

    def append_truncate(self, tail: str, partition: int, offset: int) -> None:
        """A TRUNCATE: ``tail`` is its line after the table's fields (``timestamp,_topic,...\n``)."""
        self._truncates[len(self._lines)] = tail
        self.append(None, partition, offset)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._lines)

    def identities(self) -> Iterator[tuple[str, str, str]]:
        incarnation = self.incarnation
        for partition, offset in zip(self._partitions, self._offsets):
            yield incarnation, str(partition), str(offset)

    def lines(self, columns: tuple[str, ...]) -> Iterator[str]:
        stray = [list(layout) for layout in self.column_layouts if layout != columns]
        if stray:
            raise BatchFileError(
                f"rows rendered for columns {stray[0]} cannot go into a buffer of columns {list(columns)}: the batch "
                "mixes row schemas, which the consume step must stop before writing (a bug: please report it)")
        nulls = "," * (len(columns) - 1)
        truncates = self._truncates
        for index, line in enumerate(self._lines):
            yield f"{OPERATION_TRUNCATE},{nulls},{truncates[index]}" if line is None else line


def check_column_names(meta: BufferMeta) -> None:
    clash = [c for c in meta.columns if c in RESERVED]
    if clash:
        raise ConfigError(
            f"table {meta.table} has columns named {clash}, which buffer.csv reserves for {RESERVED}. "
            "Capture a view or a copy of the table with those columns renamed."
        )


class BatchBuffer:
    """The buffer file pair of one pipeline (``buffer.csv`` + ``buffer.meta.json``)."""

    def __init__(self, layout: PipelineLayout) -> None:
        self.layout = layout
        self.path = layout.buffer
        self.meta_path = layout.buffer_meta

    def read_meta(self) -> BufferMeta | None:
        if not self.meta_path.exists():
            return None
        raw = json.loads(self.meta_path.read_text(encoding="utf-8"))
        return BufferMeta(raw["table"], tuple(raw["columns"]), tuple(raw["key_columns"]), int(raw.get("epoch", 0)))

    def read(self) -> tuple[BufferMeta | None, pd.DataFrame]:
        """The unmerged events as strings (None for NULL); an empty frame when there are none."""
        meta, table = self.read_table()
        return meta, frame_of(table)

    def read_table(self) -> tuple[BufferMeta | None, pa.Table]:
        """:meth:`read` as an Arrow table of string columns (null for NULL), what the merge applies."""
        meta = self.read_meta()
        if meta is None or not self.path.exists():
            return meta, pa.table({})
        frame = read_copy_csv_table(self.path)
        header = list(frame.column_names)
        tail = len(PROVENANCE) + 1
        if header[:1] != [OPERATION] or tuple(header[-tail:]) != (TIMESTAMP, *PROVENANCE) \
                or tuple(header[1:-tail]) != meta.columns:
            raise BatchFileError(
                f"{self.path} has columns {header}, not {meta.header()}. It was edited by hand or written by another "
                "version: restore it from archive/ or from a backup; its events' offsets are already committed."
            )
        return meta, frame

    def add(self, meta: BufferMeta, rows: BufferRows | list[dict[str, str | None]]) -> int:
        """Add a batch (BufferRows, or dicts keyed by buffer column) to the unmerged rows, atomically; answer the
        new row count.

        Unmerged rows of another table layout or another state lineage cannot be merged with these: the
        caller discards them first (a schema change or a rebuild supersedes them).
        """
        check_column_names(meta)
        header_line = format_row(meta.header())
        kept_body, seen = self._unmerged(meta, header_line)
        if isinstance(rows, BufferRows):
            lines: Iterable[str] = rows.lines(meta.columns)
            identities: Iterable[tuple[str, str, str]] = rows.identities()
        else:
            lines, identities = _from_dicts(meta, rows)
        if seen:
            lines = (line for line, ident in zip(lines, identities) if ident not in seen)
        # Meta first: a buffer is never on disk with columns its meta does not describe.
        atomic_write_text(self.meta_path, json.dumps(asdict(meta), indent=2) + "\n")
        count = len(seen)
        with atomic_writer(self.path) as handle:
            handle.write(header_line)
            handle.write(kept_body)
            chunk: list[str] = []
            for line in lines:
                chunk.append(line)
                if len(chunk) == 4096:
                    handle.write("".join(chunk))
                    count += len(chunk)
                    chunk.clear()
            handle.write("".join(chunk))
            count += len(chunk)
        return count

    def _unmerged(self, meta: BufferMeta, header_line: str) -> tuple[str, set[tuple[str, str, str]]]:
        """The unmerged rows' lines (after the header) and their identities; refuses another layout."""
        old_meta, old = self.read()
        if old_meta is None or not len(old):
            return "", set()
        if (old_meta.columns, old_meta.key_columns, old_meta.epoch) != (meta.columns, meta.key_columns, meta.epoch):
            raise BatchFileError(
                f"{self.path} holds unmerged events of columns {list(old_meta.columns)} (epoch {old_meta.epoch}); the new "
                f"ones have {list(meta.columns)} (epoch {meta.epoch}). Merge or discard the buffer first."
            )
        seen: set[tuple[str, str, str]] = set()
        body: list[str] = []
        for row in old.to_dict("records"):
            ident = tuple(str(row.get(c)) for c in RECORD_IDENTITY)
            if ident not in seen:
                seen.add(ident)
                body.append(format_row([_text(row.get(c)) for c in meta.header()]))
        return "".join(body), seen

    def has_rows(self) -> bool:
        """Does buffer.csv hold an event past its header? (Cheap: two lines are read.)"""
        try:
            with open(self.path, "rb") as handle:
                handle.readline()
                return bool(handle.readline())
        except FileNotFoundError:
            return False

    def clear(self, *, archive_as: str | None, keep: int = 50) -> Path | None:
        """Empty the buffer (header only), first copying it to ``archive/buffer-<label>.csv`` when asked
        (keeping the newest ``keep``). Used after a merge, and to set aside events a rebuild supersedes."""
        meta = self.read_meta()
        if meta is None or not self.path.exists():
            return None
        archived = None
        if archive_as and keep > 0:
            archive_dir = self.layout.archive_dir
            archive_dir.mkdir(parents=True, exist_ok=True)
            archived = archive_dir / f"buffer-{_safe(archive_as)}.csv"
            shutil.copyfile(self.path, archived)
            for old in sorted(archive_dir.glob("buffer-*.csv"), key=lambda p: p.stat().st_mtime)[:-keep]:
                old.unlink()
        with atomic_writer(self.path) as handle:
            handle.write(format_row(meta.header()))
        return archived


def _from_dicts(meta: BufferMeta, rows: list[dict[str, str | None]]) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Lines and identities of rows given as dicts, each row once."""
    header = meta.header()
    lines: list[str] = []
    identities: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str, str]] = set()
    for row in rows:
        ident = tuple(str(row.get(c)) for c in RECORD_IDENTITY)
        if ident in seen:
            continue
        seen.add(ident)
        identities.append(ident)
        lines.append(format_row([_text(row.get(c)) for c in header]))
    return lines, identities


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _safe(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label)
