"""destiny.parquet: the live generation as a typed Parquet file beside destiny.csv, replaced atomically.

Rendered whole from the live generation (a Parquet file cannot be patched in place): destiny.csv is read in
Arrow batches (``StateStore.row_batches``), each column converted from COPY text to its Arrow type
(:mod:`cdc_pipeline.sinks.arrow_convert`), written through :func:`cdc_pipeline.atomic.atomic_writer` (a
temporary file beside it, fsync'd, then renamed over ``destiny.parquet``): a reader sees the old file or the new
one. Rows are in destiny.csv's order (the primary key's). Memory is bounded by one batch (16 MB of CSV); the cost
is measured in docs/sinks.md.

The file's key-value metadata says what it holds: ``cdc.table``, ``cdc.key_columns``, ``cdc.generation``,
``cdc.epoch``, ``cdc.generation_created_at``, ``cdc.rendered_at``, ``cdc.text_settings`` (the source's
IntervalStyle and lc_monetary, which the text columns of interval and money depend on) and
``cdc.null_values`` (values written as null because their Arrow type cannot hold them, per column).
Each field's metadata carries its PostgreSQL type (``pg_type``).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from cdc_pipeline.atomic import SHARED_FILE_MODE, atomic_writer
from cdc_pipeline.errors import SinkError, StateError
from cdc_pipeline.history.statuses import SinkStatus
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.sinks.arrow_convert import NullNotes, convert_batch
from cdc_pipeline.sinks.arrow_types import arrow_columns, arrow_schema
from cdc_pipeline.sinks.ledger import AppliedGeneration, LedgerEntry, SinkLedger
from cdc_pipeline.sinks.outcome import SinkOutcome
from cdc_pipeline.state import GenerationInfo, StateStore

COMPRESSION = "zstd"


def render_parquet(store: StateStore, live: GenerationInfo, ledger: SinkLedger, layout: PipelineLayout) -> SinkOutcome:
    path = layout.sink_file("parquet")
    try:
        held = ledger.read().applied
    except StateError as exc:
        held, reason = None, str(exc)
    else:
        reason = "first render" if held is None else f"the live generation changed ({held.generation} -> {live.id})"
    if held is not None and held.names(live) and file_generation(path) == (live.id, live.epoch):
        return SinkOutcome(SinkStatus.UNCHANGED, f"{path.name} already holds generation {live.id}", live.id, live.epoch,
                           rows=live.rows, detail={"path": str(path)})
    if held is not None and held.names(live):
        reason = f"{path.name} is missing or holds another generation"
    notes = NullNotes()
    rows = write_parquet(store, live, path, notes)
    ledger.write(LedgerEntry(applied=AppliedGeneration.of(live, at=_now())))
    return SinkOutcome(SinkStatus.FULL, reason, live.id, live.epoch, rows=rows, notes=notes.lines(),
                       detail={"path": str(path), "bytes": path.stat().st_size})


def write_parquet(store: StateStore, live: GenerationInfo, path: Path, notes: NullNotes) -> int:
    """Write the generation to ``path`` atomically; answer its row count."""
    description = live.description
    columns = arrow_columns(description)
    schema = arrow_schema(description, metadata={
        "cdc.table": description.qualified_table,
        "cdc.key_columns": json.dumps(list(description.key_columns)),
        "cdc.generation": live.id,
        "cdc.epoch": str(live.epoch),
        "cdc.generation_created_at": live.created_at,
        "cdc.rendered_at": _now(),
        "cdc.text_settings": json.dumps({k: v for k, v in description.settings.items() if k != "server_version_num"}),
    })
    rows = 0
    with atomic_writer(path, "wb") as handle:
        with pq.ParquetWriter(handle, schema, compression=COMPRESSION) as writer:
            for batch in store.row_batches(live):
                writer.write_batch(convert_batch(batch, columns, schema, notes))
                rows += batch.num_rows
            writer.add_key_value_metadata({"cdc.null_values": json.dumps(notes.as_dict())})
        if rows != live.rows:
            raise SinkError(f"generation {live.id} read back {rows} rows but its manifest says {live.rows}: the "
                            "state is damaged; rebuild it with python -m cdc_pipeline resnapshot")
        os.fchmod(handle.fileno(), SHARED_FILE_MODE)  # mkstemp makes it 0600
    return rows


def file_generation(path: Path) -> tuple[str, int] | None:
    """(generation, epoch) a destiny.parquet says it holds; None when it is missing or not ours."""
    try:
        metadata = pq.read_metadata(path).metadata or {}
    except (OSError, ValueError):
        return None
    generation, epoch = metadata.get(b"cdc.generation"), metadata.get(b"cdc.epoch")
    if generation is None or epoch is None:
        return None
    return generation.decode(), int(epoch)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
