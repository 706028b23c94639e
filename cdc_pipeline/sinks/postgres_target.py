"""The PostgreSQL sink's target database: connection, session, the replica table's shape, the bookkeeping table.

The replica table gets the source's column types (``format_type`` from the TableDescription), NOT NULL where
the source has it, and the same primary key; no defaults, indexes or other constraints. A user-defined type
the target database lacks falls back to the closest built-in that keeps PostgreSQL's text: an enum to
``text``, a domain to its base type without type modifier (``bit`` to ``bit varying``). Create the type in the
target database first to keep it.

``<schema>.cdc_sink_applied`` (one row per replica table, in the replica's schema) records the pipeline that
keeps the table and the state generation it holds. It is written in the same transaction as the data, so a
retry after a crash knows whether the transaction committed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg
from psycopg import sql

from cdc_pipeline.errors import ConfigError, SinkError, SinkUnreachableError
from cdc_pipeline.sinks.ledger import AppliedGeneration
from cdc_pipeline.source.catalog import CatalogColumn, TableDescription

BOOKKEEPING_TABLE = "cdc_sink_applied"
LOCK_TIMEOUT = "60s"
_DOMAIN_BASES = {"bit": "bit varying", "bpchar": "bpchar", "varchar": "varchar"}


@dataclass(frozen=True)
class TargetParams:
    """Where the replica lives (an Airflow connection of type postgres: its ``schema`` is the database)."""

    host: str
    port: int
    user: str
    password: str
    dbname: str
    conn_id: str = "cdc_sink_postgres"

    def describe(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.dbname} (connection {self.conn_id})"

    def connect(self, application_name: str) -> psycopg.Connection:
        try:
            return psycopg.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                   dbname=self.dbname, connect_timeout=10, autocommit=True,
                                   application_name=application_name[:63])
        except psycopg.OperationalError as exc:
            raise SinkUnreachableError(
                f"cannot connect to the sink database at {self.describe()}: {' '.join(str(exc).split()).rstrip('.')}. "
                "Is it running, and does the connection point at it? The other sinks and the offsets are "
                "unaffected; this sink catches up when it is back") from exc


@dataclass(frozen=True)
class TargetColumn:
    name: str
    sql_type: str      # what CREATE TABLE says
    shown_type: str    # what format_type() answers for it (the shape check compares these)
    not_null: bool


@dataclass(frozen=True)
class TableShape:
    columns: tuple[tuple[str, str], ...]   # (name, format_type) in column order
    key: tuple[str, ...]

    def describe_difference(self, wanted: TableShape) -> str:
        if self.key != wanted.key:
            return f"primary key ({', '.join(self.key)}) -> ({', '.join(wanted.key)})"
        return f"columns {_columns_text(self.columns)} -> {_columns_text(wanted.columns)}"


def prepare_session(conn: psycopg.Connection, description: TableDescription) -> None:
    """Inside the transaction: the settings the COPY text is read with (the source's, where text depends on them)."""
    conn.execute("SET LOCAL DateStyle = 'ISO, MDY'")
    conn.execute("SET LOCAL TimeZone = 'UTC'")
    conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    style = description.settings.get("IntervalStyle")
    if style:
        conn.execute("SELECT set_config('IntervalStyle', %s, true)", (style,))
    monetary = description.settings.get("lc_monetary")
    if monetary and any(_involves_money(c) for c in description.columns):
        try:
            with conn.transaction():
                conn.execute("SELECT set_config('lc_monetary', %s, true)", (monetary,))
        except psycopg.Error as exc:
            raise SinkError(f"the sink database at {conn.info.host}:{conn.info.port} cannot read money text the "
                            f"way the source prints it: lc_monetary {monetary!r} is refused there "
                            f"({' '.join(str(exc).split())}). Install that locale on the sink's server") from exc


def target_columns(conn: psycopg.Connection, description: TableDescription) -> tuple[TargetColumn, ...]:
    """The replica's columns: the source's types, or a built-in fallback where the target lacks the type."""
    names = [c.format_type for c in description.columns]
    known = dict(conn.execute("SELECT t, to_regtype(t) IS NOT NULL FROM unnest(%s::text[]) t", (names,)).fetchall())
    columns = []
    for column in description.columns:
        if known.get(column.format_type):
            columns.append(TargetColumn(column.name, column.format_type, column.format_type, column.not_null))
            continue
        fallback = _fallback_type(column)
        shown = conn.execute("SELECT %s::regtype::text", (fallback,)).fetchone()[0]
        columns.append(TargetColumn(column.name, fallback, shown, column.not_null))
    return tuple(columns)


def wanted_shape(columns: tuple[TargetColumn, ...], key: tuple[str, ...]) -> TableShape:
    return TableShape(tuple((c.name, c.shown_type) for c in columns), key)


def read_shape(conn: psycopg.Connection, schema: str, table: str) -> TableShape | None:
    """The table's columns and primary key as they are now; None when it does not exist."""
    regclass = conn.execute("SELECT to_regclass(%s)", (_qualified_text(schema, table),)).fetchone()[0]
    if regclass is None:
        return None
    columns = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %s::regclass"
        " AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (_qualified_text(schema, table),)).fetchall()
    key = conn.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
        " WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)",
        (_qualified_text(schema, table),)).fetchall()
    return TableShape(tuple((name, kind) for name, kind in columns), tuple(row[0] for row in key))


def create_table(conn: psycopg.Connection, schema: str, table: str, columns: tuple[TargetColumn, ...],
                 key: tuple[str, ...], *, constraint: str, comment: str) -> None:
    definitions = [sql.SQL("{} {}{}").format(sql.Identifier(c.name), sql.SQL(c.sql_type),
                                              sql.SQL(" NOT NULL" if c.not_null else "")) for c in columns]
    definitions.append(sql.SQL("CONSTRAINT {} PRIMARY KEY ({})").format(
        sql.Identifier(constraint), sql.SQL(", ").join(map(sql.Identifier, key))))
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(schema, table), sql.SQL(", ").join(definitions)))
    conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(sql.Identifier(schema, table), sql.Literal(comment)))


# --- the bookkeeping table -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bookkeeping:
    """The replica's row in ``cdc_sink_applied``: which pipeline keeps it and what it holds."""

    pipeline: str
    applied: AppliedGeneration | None


def claim_bookkeeping(conn: psycopg.Connection, schema: str, target: str, pipeline: str, source: str) -> Bookkeeping:
    """Create the bookkeeping table if missing, make sure the replica has a row, and lock it until the commit
    (two renders of the same replica never interleave)."""
    table = sql.Identifier(schema, BOOKKEEPING_TABLE)
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    conn.execute(sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} (target_table text PRIMARY KEY, pipeline text NOT NULL, source_table text,"
        " generation text, epoch integer, generation_created_at text, columns jsonb, rows bigint,"
        " applied_at timestamptz)").format(table))
    conn.execute(sql.SQL("INSERT INTO {} (target_table, pipeline, source_table) VALUES (%s, %s, %s)"
                         " ON CONFLICT (target_table) DO NOTHING").format(table), (target, pipeline, source))
    row = conn.execute(sql.SQL("SELECT pipeline, generation, epoch, generation_created_at, rows, applied_at FROM {}"
                               " WHERE target_table = %s FOR UPDATE").format(table), (target,)).fetchone()
    owner, generation, epoch, created_at, rows, applied_at = row
    applied = None
    if generation is not None:
        applied = AppliedGeneration(generation, int(epoch), created_at or "", rows,
                                    applied_at.isoformat() if applied_at else None)
    return Bookkeeping(owner, applied)


def record_bookkeeping(conn: psycopg.Connection, schema: str, target: str, applied: AppliedGeneration,
                       shape: TableShape) -> None:
    conn.execute(sql.SQL("UPDATE {} SET generation = %s, epoch = %s, generation_created_at = %s, columns = %s,"
                         " rows = %s, applied_at = now() WHERE target_table = %s").format(
        sql.Identifier(schema, BOOKKEEPING_TABLE)),
        (applied.generation, applied.epoch, applied.created_at, json.dumps([list(c) for c in shape.columns]),
         applied.rows, target))


def refuse_foreign_table(target: str, pipeline: str, owner: str) -> ConfigError:
    return ConfigError(f"the sink table {target} is kept by pipeline {owner!r} ({BOOKKEEPING_TABLE} says so), not "
                       f"by {pipeline!r}: two pipelines would overwrite each other. Give this sink another \"table\"")


# --- helpers -----------------------------------------------------------------------------------------------

def _fallback_type(column: CatalogColumn) -> str:
    if column.type_kind == "d" and column.base_type_name and column.type_category != "A":
        return _DOMAIN_BASES.get(column.base_type_name, column.base_type_name)
    return "text"


def _involves_money(column: CatalogColumn) -> bool:
    return "money" in (column.format_type, column.base_type_name, column.element_type_name, column.type_name)


def _qualified_text(schema: str, table: str) -> str:
    return sql.Identifier(schema, table).as_string(None)


def _columns_text(columns: tuple[tuple[str, str], ...]) -> str:
    return "(" + ", ".join(f"{name} {kind}" for name, kind in columns) + ")"
