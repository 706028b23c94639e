"""A generation's manifest: what its files hold, checked when it is opened.

``manifest.json`` is written last, atomically, and read-only: a generation folder without one is a leftover
of an interrupted write. It records the format version, the columns, key columns and key types, the caller's
TableDescription, the row and tombstone counts, destiny.csv's size, the sort keys' width, the merged offset
ranges per (incarnation, partition), the last applied TRUNCATE, the lineage's epoch and when it was written.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cdc_pipeline.atomic import READ_ONLY_MODE, atomic_writer
from cdc_pipeline.errors import StateError
from cdc_pipeline.source.catalog import TableDescription

FORMAT_VERSION = 1
# Merged offset ranges kept per (incarnation, partition); older ones are dropped (the replay shortcut uses them,
# and a batch outside them takes the full, always-correct path; consume's state/history check reads the newest).
MAX_RANGES = 64
_GEN_ID = re.compile(r"^(lineage-\d{4,})/gen-(\d{6,})$")

# A generation's files (state/<lineage>/gen-<n>/): one name each, for the writer and the readers.
DESTINY_FILE = "destiny.csv"
KEYS_FILE = "keys.npy"
ROWS_FILE = "rows.npy"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class GenerationInfo:
    """One complete generation, as its manifest describes it."""

    id: str
    path: Path
    description: TableDescription
    rows: int
    tombstones: int
    destiny_bytes: int
    key_width: int
    merged_ranges: dict[tuple[int, int], list[list[int]]] = field(default_factory=dict)
    truncated_at: tuple[int, int, int, int] | None = None  # (incarnation, partition, offset, lsn) of the last TRUNCATE
    epoch: int = 0  # the caller's number for the lineage (e.g. which rebuild it came from), kept by every merge
    created_at: str = ""

    @property
    def lineage(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def number(self) -> int:
        return int(self.id.rsplit("-", 1)[1])

    @property
    def keys(self) -> int:
        return self.rows + self.tombstones

    @property
    def columns(self) -> tuple[str, ...]:
        return self.description.column_names

    @property
    def key_columns(self) -> tuple[str, ...]:
        return self.description.key_columns

    @property
    def destiny_path(self) -> Path:
        return self.path / DESTINY_FILE

    @property
    def keys_path(self) -> Path:
        return self.path / KEYS_FILE

    @property
    def rows_path(self) -> Path:
        return self.path / ROWS_FILE

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_FILE


def parse_generation_id(generation_id: str) -> tuple[str, int]:
    match = _GEN_ID.match(generation_id)
    if match is None:
        raise StateError(f"{generation_id!r} is not a generation id (expected lineage-NNNN/gen-NNNNNN)")
    return match.group(1), int(match.group(2))


def read_manifest(generation_id: str, path: Path, remedy: str) -> GenerationInfo:
    """The manifest of the generation in ``path``, checked against destiny.csv's size."""
    manifest_path = path / MANIFEST_FILE
    try:
        raw = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise StateError(
            f"generation {generation_id} has no manifest ({manifest_path}): the state folder was changed by "
            f"hand or damaged. {remedy}"
        ) from exc
    except json.JSONDecodeError as exc:
        raise StateError(f"{manifest_path} is not valid JSON ({exc}). {remedy}") from exc
    if raw.get("format") != FORMAT_VERSION:
        raise StateError(
            f"{manifest_path} has format {raw.get('format')!r}; this version reads format {FORMAT_VERSION}. {remedy}"
        )
    info = GenerationInfo(
        id=generation_id,
        path=path,
        description=TableDescription.from_json(raw["description"]),
        rows=int(raw["rows"]),
        tombstones=int(raw["tombstones"]),
        destiny_bytes=int(raw["destiny_bytes"]),
        key_width=int(raw["key_width"]),
        merged_ranges={_range_key(k): v for k, v in raw.get("merged_ranges", {}).items()},
        truncated_at=tuple(raw["truncated_at"]) if raw.get("truncated_at") else None,
        epoch=int(raw.get("epoch", 0)),
        created_at=raw.get("created_at", ""),
    )
    try:
        size = info.destiny_path.stat().st_size
    except FileNotFoundError as exc:
        raise StateError(f"{info.destiny_path} is missing. {remedy}") from exc
    if size != info.destiny_bytes:
        raise StateError(
            f"{info.destiny_path} holds {size} bytes but its manifest says {info.destiny_bytes}: the file was "
            f"changed in place (destiny.csv is a hard link to it). {remedy}"
        )
    return info


def write_manifest(info: GenerationInfo) -> None:
    """Write the manifest atomically, read-only, and make its folder entry durable."""
    description = info.description
    raw: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "generation": info.id,
        "columns": list(description.column_names),
        "key_columns": list(description.key_columns),
        "key_types": description.key_types,
        "description": description.to_json(),
        "rows": info.rows,
        "tombstones": info.tombstones,
        "destiny_bytes": info.destiny_bytes,
        "key_width": info.key_width,
        "merged_ranges": {f"{inc}:{part}": ranges for (inc, part), ranges in sorted(info.merged_ranges.items())},
        "truncated_at": list(info.truncated_at) if info.truncated_at else None,
        "epoch": info.epoch,
        "created_at": info.created_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    with atomic_writer(info.manifest_path) as handle:
        handle.write(json.dumps(raw, indent=1) + "\n")
        os.fchmod(handle.fileno(), READ_ONLY_MODE)  # read-only from the moment it has its name
    # atomic_writer fsync'd the file (its mode with it), renamed it and fsync'd the generation's folder.


def _range_key(text: str) -> tuple[int, int]:
    incarnation, partition = text.split(":")
    return int(incarnation), int(partition)
