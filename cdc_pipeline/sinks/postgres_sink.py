"""The PostgreSQL sink: a replica table in another database, kept in step with the live generation.

Everything happens in one transaction on the target, the bookkeeping row included, so a render commits
whole or not at all and a retry knows which:

- **incremental** (the replica holds a generation of the same lineage that is still kept): the net change per
  key, ``StateStore.diff(held, live)``, is copied (COPY ... CSV, so PostgreSQL parses its own text) into a
  temporary staging table, then ``DELETE`` of every changed key and ``INSERT`` of the new rows;
- **full** (first render, a new lineage or epoch after a rebuild or reset, a sink too far behind, or a
  replica that does not hold what the bookkeeping says): ``TRUNCATE`` + ``COPY`` of the live destiny.csv;
- **new shape** (the table's columns differ from the state's: a schema change): the table is built aside
  (``<table>__cdc_new``), loaded, and swapped in by ``DROP`` + ``RENAME`` in the same transaction.

After an incremental apply the replica's row count is compared with the state's; a difference (the table was
changed by hand) is repaired by a full render in the same transaction.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator

import psycopg
from psycopg import sql

from cdc_pipeline.connector_spec import SinkSpec
from cdc_pipeline.pgtext.copy_csv import format_row
from cdc_pipeline.errors import ConfigError, SinkError, SinkUnreachableError, StateError
from cdc_pipeline.history.statuses import SinkStatus
from cdc_pipeline.sinks.ledger import AppliedGeneration, LedgerEntry, SinkLedger, catch_up_base
from cdc_pipeline.sinks.outcome import SinkOutcome
from cdc_pipeline.sinks.postgres_target import (
    TargetColumn, TargetParams, claim_bookkeeping, create_table, prepare_session, read_shape,
    record_bookkeeping, refuse_foreign_table, target_columns, wanted_shape,
)
from cdc_pipeline.state import GenerationInfo, StateStore

log = logging.getLogger(__name__)

COPY_CHUNK_BYTES = 1 << 20
_DELETED = "cdc_deleted"


def render_postgres(store: StateStore, live: GenerationInfo, ledger: SinkLedger, target: TargetParams,
                    sink: SinkSpec, pipeline: str) -> SinkOutcome:
    schema, table = sink.table.split(".", 1)
    try:
        held = ledger.read().applied
    except StateError as exc:
        log.warning("sink %s: %s", sink.name, exc)
        held = None
    with contextlib.closing(target.connect(f"cdc sink {pipeline}")) as conn:
        try:
            with conn.transaction():
                outcome, committed = _render_in_transaction(conn, store, live, ledger, held, schema, table, sink,
                                                            pipeline)
        except psycopg.OperationalError as exc:
            raise SinkUnreachableError(f"the sink database at {target.describe()} failed mid-render "
                                       f"({' '.join(str(exc).split())}); nothing was committed, the retry renders "
                                       "again") from exc
        except psycopg.errors.DependentObjectsStillExist as exc:
            raise SinkError(f"{sink.table} has a new shape and must be replaced, but other objects depend on it "
                            f"({' '.join(str(exc).split())}). Drop them (e.g. views) and let the sink retry; "
                            "re-create them afterwards") from exc
    ledger.write(LedgerEntry(applied=committed))
    return outcome


def _render_in_transaction(conn, store: StateStore, live: GenerationInfo, ledger: SinkLedger,
                           held: AppliedGeneration | None, schema: str, table: str, sink: SinkSpec,
                           pipeline: str) -> tuple[SinkOutcome, AppliedGeneration]:
    description = live.description
    prepare_session(conn, description)
    book = claim_bookkeeping(conn, schema, sink.table, pipeline, description.qualified_table)
    if book.pipeline != pipeline:
        raise refuse_foreign_table(sink.table, pipeline, book.pipeline)
    columns = target_columns(conn, description)
    wanted = wanted_shape(columns, description.key_columns)
    shape = read_shape(conn, schema, table)
    recorded = book.applied
    if held is not None and (recorded is None or recorded.generation != held.generation):
        log.info("sink %s: the target's bookkeeping (%s) is the truth, not the ledger file (%s)", sink.name,
                 recorded.generation if recorded else None, held.generation)
    applied = AppliedGeneration.of(live)
    loader = _Loader(conn, store, live, schema, table, columns)

    if shape == wanted and recorded is not None and recorded.names(live):
        return SinkOutcome(SinkStatus.UNCHANGED, f"{sink.table} already holds generation {live.id}", live.id, live.epoch,
                           rows=live.rows), recorded
    if shape is None:
        loader.create_and_load()
        outcome = SinkOutcome(SinkStatus.FULL, f"created {sink.table}", live.id, live.epoch, rows=live.rows)
    elif shape != wanted:
        if recorded is None:
            raise ConfigError(f"the sink table {sink.table} exists with other columns than {description.qualified_table} "
                              f"({shape.describe_difference(wanted)}) and this pipeline did not create it. Drop it or "
                              "give the sink another \"table\"; the sink creates it with the source's types")
        loader.swap_in_new_shape()
        outcome = SinkOutcome(SinkStatus.FULL, f"new shape, table replaced: {shape.describe_difference(wanted)}", live.id,
                              live.epoch, rows=live.rows)
    elif recorded is None:
        if conn.execute(sql.SQL("SELECT EXISTS (SELECT FROM {})").format(sql.Identifier(schema, table))).fetchone()[0]:
            raise ConfigError(f"the sink table {sink.table} already holds rows and this pipeline did not fill it "
                              f"(no row in {schema}.cdc_sink_applied): empty or drop it, or give the sink another "
                              "\"table\". The sink never overwrites a table it does not keep")
        loader.truncate_and_load()
        outcome = SinkOutcome(SinkStatus.FULL, f"first render into the existing empty table {sink.table}", live.id,
                              live.epoch, rows=live.rows)
    else:
        base, why = catch_up_base(store.folder, recorded, live)
        if base is None:
            loader.truncate_and_load()
            outcome = SinkOutcome(SinkStatus.FULL, why, live.id, live.epoch, rows=live.rows)
        else:
            upserted, deleted = loader.apply_diff(store.diff(base, live))
            outcome = SinkOutcome(SinkStatus.INCREMENTAL, why, live.id, live.epoch, rows=live.rows, upserted=upserted,
                                  deleted=deleted)
            count = loader.count()
            if count != live.rows:
                loader.truncate_and_load()
                outcome = SinkOutcome(
                    SinkStatus.FULL, f"after applying the changes {sink.table} held {count} rows, the state {live.rows}: the "
                    "table was changed outside the pipeline, so it was rendered in full", live.id, live.epoch,
                    rows=live.rows)
    record_bookkeeping(conn, schema, sink.table, applied, wanted)
    # Written before the commit: if the process dies between the commit and the ledger's update, the merge still
    # keeps both generations, whichever the target ends up holding.
    ledger.write(LedgerEntry(applied=held, pending=applied))
    return outcome, applied


class _Loader:
    """The statements that load one generation into the replica (inside the caller's transaction)."""

    def __init__(self, conn, store: StateStore, live: GenerationInfo, schema: str, table: str,
                 columns: tuple[TargetColumn, ...]) -> None:
        self.conn, self.store, self.live = conn, store, live
        self.schema, self.table, self.columns = schema, table, columns
        self.name = sql.Identifier(schema, table)
        self.key = live.description.key_columns
        self.comment = (f"Replica of {live.description.qualified_table}, kept by the CDC pipeline; do not write to it "
                        "(its sink replaces changed rows)")

    def create_and_load(self) -> None:
        create_table(self.conn, self.schema, self.table, self.columns, self.key,
                     constraint=f"{self.table[:58]}_pkey", comment=self.comment)
        self._copy_generation(self.name)

    def truncate_and_load(self) -> None:
        self.conn.execute(sql.SQL("TRUNCATE {}").format(self.name))
        self._copy_generation(self.name)

    def swap_in_new_shape(self) -> None:
        aside = f"{self.table[:50]}__cdc_new"
        self.conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(self.schema, aside)))
        create_table(self.conn, self.schema, aside, self.columns, self.key, constraint=f"{aside}_pkey",
                     comment=self.comment)
        self._copy_generation(sql.Identifier(self.schema, aside))
        self.conn.execute(sql.SQL("DROP TABLE {}").format(self.name))
        self.conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(self.schema, aside),
                                                                        sql.Identifier(self.table)))
        self.conn.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(
            sql.Identifier(self.schema, f"{aside}_pkey"), sql.Identifier(f"{self.table[:58]}_pkey")))

    def apply_diff(self, changes: Iterable[tuple[tuple, tuple | None]]) -> tuple[int, int]:
        """Stage every changed key (its new row, or its key and a deleted flag), then DELETE + INSERT."""
        stage = sql.Identifier("cdc_sink_stage")
        self.conn.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT * FROM {} WITH NO DATA").format(
            stage, self.name))
        self.conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} boolean NOT NULL").format(stage, sql.Identifier(_DELETED)))
        width = len(self.columns)
        key_at = [i for i, c in enumerate(self.columns) if c.name in self.key]
        counts = {"upserted": 0, "deleted": 0}

        def lines() -> Iterator[str]:
            for key, row in changes:
                if row is None:
                    values: list[str | None] = [None] * width
                    for position, value in zip(key_at, key):
                        values[position] = value
                    counts["deleted"] += 1
                    yield format_row([*values, "t"])
                else:
                    counts["upserted"] += 1
                    yield format_row([*row, "f"])

        self._copy_lines(stage, lines())
        if counts["upserted"] + counts["deleted"] == 0:
            return 0, 0
        matches = sql.SQL(" AND ").join(sql.SQL("t.{0} = s.{0}").format(sql.Identifier(k)) for k in self.key)
        names = sql.SQL(", ").join(sql.Identifier(c.name) for c in self.columns)
        self.conn.execute(sql.SQL("DELETE FROM {} t USING {} s WHERE {}").format(self.name, stage, matches))
        self.conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} WHERE NOT {}").format(
            self.name, names, names, stage, sql.Identifier(_DELETED)))
        return counts["upserted"], counts["deleted"]

    def count(self) -> int:
        return self.conn.execute(sql.SQL("SELECT count(*) FROM {}").format(self.name)).fetchone()[0]

    def _copy_generation(self, target: sql.Composable) -> None:
        """destiny.csv as it is (it is COPY's own CSV); HEADER MATCH checks its columns against the table's."""
        header = "MATCH" if self.conn.info.server_version >= 150000 else "true"
        statement = sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv, HEADER {})").format(target, sql.SQL(header))
        with self.conn.cursor() as cursor:
            with cursor.copy(statement) as copy, open(self.live.destiny_path, "rb") as source:
                while chunk := source.read(COPY_CHUNK_BYTES):
                    copy.write(chunk)
            loaded = cursor.rowcount
        if loaded != self.live.rows:
            raise SinkError(f"COPY loaded {loaded} rows from generation {self.live.id}, whose manifest says "
                            f"{self.live.rows}: the state is damaged; rebuild it with python -m cdc_pipeline resnapshot")

    def _copy_lines(self, target: sql.Composable, lines: Iterable[str]) -> None:
        statement = sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv)").format(target)
        with self.conn.cursor() as cursor, cursor.copy(statement) as copy:
            chunk: list[str] = []
            size = 0
            for line in lines:
                chunk.append(line)
                size += len(line)
                if size >= COPY_CHUNK_BYTES:
                    copy.write("".join(chunk).encode("utf-8"))
                    chunk, size = [], 0
            if chunk:
                copy.write("".join(chunk).encode("utf-8"))
