"""buffer.csv: the change events read from Kafka and not yet merged into destiny.csv.

Layout: the prototype's columns first (``operacion``, the table's columns, ``timestamp`` = source commit
time), then provenance (``_topic``, ``_partition``, ``_offset``, ``_lsn``). Values are in PostgreSQL's COPY
text form, so NULL (empty, unquoted) and '' (``""``) stay apart. A sidecar ``buffer.meta.json`` names the
table, its columns and its primary key, which the merge needs and the CSV header cannot say.

A batch is added to what is still unmerged, deduplicated by (topic, partition, offset): a retry that
re-reads the same range, or a merge that failed last run, never loses nor doubles an event.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from cdc_pipeline.atomic import atomic_write_text, atomic_writer
from cdc_pipeline.copy_csv import format_row, read_copy_csv
from cdc_pipeline.errors import BatchFileError, ConfigError

OPERATION = "operacion"
TIMESTAMP = "timestamp"
PROVENANCE = ("_topic", "_partition", "_offset", "_lsn")
POSITION = ("_lsn", "_partition", "_offset")
RESERVED = (OPERATION, TIMESTAMP, *PROVENANCE)


@dataclass(frozen=True)
class BufferMeta:
    table: str
    columns: tuple[str, ...]
    key_columns: tuple[str, ...]

    def header(self) -> list[str]:
        return [OPERATION, *self.columns, TIMESTAMP, *PROVENANCE]


def combine_meta(old: BufferMeta | None, new: BufferMeta) -> BufferMeta:
    """Columns of both, the old order first: an added source column is appended, as ADD COLUMN does."""
    if old is None:
        return new
    if old.key_columns != new.key_columns:
        raise BatchFileError(
            f"the unmerged buffer has primary key {old.key_columns} but the new events have {new.key_columns}. "
            "Merge or archive the buffer before changing the table's primary key."
        )
    extra = tuple(c for c in new.columns if c not in old.columns)
    return BufferMeta(old.table, old.columns + extra, old.key_columns)


def check_column_names(meta: BufferMeta) -> None:
    clash = [c for c in meta.columns if c in RESERVED]
    if clash:
        raise ConfigError(
            f"table {meta.table} has columns named {clash}, which buffer.csv reserves for {RESERVED}. "
            "Capture a view or a copy of the table with those columns renamed."
        )


class BatchBuffer:
    """The buffer file pair of one pipeline (``buffer.csv`` + ``buffer.meta.json``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / "buffer.csv"
        self.meta_path = self.folder / "buffer.meta.json"
        self.archive_dir = self.folder / "archive"

    def read_meta(self) -> BufferMeta | None:
        if not self.meta_path.exists():
            return None
        raw = json.loads(self.meta_path.read_text(encoding="utf-8"))
        return BufferMeta(raw["table"], tuple(raw["columns"]), tuple(raw["key_columns"]))

    def read(self) -> tuple[BufferMeta | None, pd.DataFrame]:
        """The unmerged events as strings (None for NULL); an empty frame when there are none."""
        meta = self.read_meta()
        if meta is None or not self.path.exists():
            return meta, pd.DataFrame()
        frame = read_copy_csv(self.path)
        header = list(frame.columns)
        columns = tuple(header[1:-1 - len(PROVENANCE)])
        if header[:1] != [OPERATION] or tuple(header[-1 - len(PROVENANCE):]) != (TIMESTAMP, *PROVENANCE) \
                or not set(meta.key_columns) <= set(columns):
            raise BatchFileError(
                f"{self.path} has columns {header}, not operacion, the table's columns (key {list(meta.key_columns)}), "
                f"timestamp, {', '.join(PROVENANCE)}. It was edited by hand or written by another version: restore "
                "it from archive/ or from a backup; its events' offsets are already committed."
            )
        # The columns come from the buffer itself: the meta file is written first and may already name a
        # column that a crash kept out of the buffer.
        return BufferMeta(meta.table, columns, meta.key_columns), frame

    def add(self, meta: BufferMeta, rows: list[dict[str, str | None]]) -> tuple[BufferMeta, int]:
        """Add rows (dicts keyed by buffer column) to the unmerged ones; atomic; answer the new row count."""
        check_column_names(meta)
        old_meta, old = self.read()
        merged_meta = combine_meta(old_meta, meta)
        header = merged_meta.header()
        seen: set[tuple[str, str, str, str]] = set()
        lines: list[str] = []
        for row in [*old.to_dict("records"), *rows]:
            # The LSN too: a broker that lost its data (Tansu keeps memory only) hands out offsets again.
            ident = (row["_topic"], str(row["_partition"]), str(row["_offset"]), str(row["_lsn"]))
            if ident in seen:
                continue
            seen.add(ident)
            lines.append(format_row([_text(row.get(c)) for c in header]))
        # Meta first: a buffer is never on disk with columns its meta does not describe.
        atomic_write_text(self.meta_path, json.dumps(asdict(merged_meta), indent=2) + "\n")
        with atomic_writer(self.path) as handle:
            handle.write(format_row(header))
            handle.writelines(lines)
        return merged_meta, len(lines)

    def archive(self, run_label: str, keep: int) -> Path | None:
        """Move the merged buffer to archive/ (keeping the newest ``keep``) and leave an empty buffer."""
        meta = self.read_meta()
        if meta is None or not self.path.exists():
            return None
        archived = None
        if keep > 0:
            self.archive_dir.mkdir(parents=True, exist_ok=True)
            archived = self.archive_dir / f"buffer-{_safe(run_label)}.csv"
            shutil.copyfile(self.path, archived)
            for old in sorted(self.archive_dir.glob("buffer-*.csv"), key=lambda p: p.stat().st_mtime)[:-keep]:
                old.unlink()
        with atomic_writer(self.path) as handle:
            handle.write(format_row(meta.header()))
        return archived


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _safe(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label)
