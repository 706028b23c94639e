"""Helpers for the sink tests on the real PostgreSQL: a source database, a state kept in step with a source table
without Debezium (its COPY rows as change events), the sink database, and a per-type comparison of
destiny.parquet with values PostgreSQL computes itself."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql

from cdc_pipeline.pgtext.copy_csv import read_copy_csv
from cdc_pipeline.sinks import retained_generations
from cdc_pipeline.sinks.arrow_types import ArrowColumn, arrow_columns
from cdc_pipeline.sinks.postgres_target import TargetParams
from cdc_pipeline.source.catalog import TableDescription, read_description
from cdc_pipeline.state import StateStore
from tests.stack.peek import copy_table

_POSITIONS = itertools.count(1)


class Database:
    """One database of the test cluster."""

    def __init__(self, settings, dbname: str) -> None:
        self.settings, self.dbname = settings, dbname

    def connect(self, **kwargs) -> psycopg.Connection:
        s = self.settings
        return psycopg.connect(host=s.pg_host, port=s.pg_port, user=s.pg_user, password=s.pg_password,
                               dbname=self.dbname, connect_timeout=5, **kwargs)

    def sql(self, statement, params=None):
        with self.connect(autocommit=True) as conn:
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else None

    def copy_csv(self, table: str, order_by: str) -> bytes:
        with self.connect() as conn:
            return copy_table(conn, table, order_by)

    def describe(self, table: str) -> TableDescription:
        schema, name = table.split(".")
        with self.connect(autocommit=True) as conn:
            return read_description(conn, schema, name)

    def target(self, conn_id: str = "cdc_sink_postgres") -> TargetParams:
        s = self.settings
        return TargetParams(s.pg_host, s.pg_port, s.pg_user, s.pg_password, self.dbname, conn_id)


def recreate_database(settings, dbname: str) -> Database:
    admin = Database(settings, "postgres")
    admin.sql(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
    admin.sql(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return Database(settings, dbname)


class SourceMirror:
    """Keeps a pipeline's state equal to a source table by merging the difference of its COPY rows as events."""

    def __init__(self, pipe, source: Database, table: str, tmp: Path) -> None:
        self.pipe, self.source, self.table, self.tmp = pipe, source, table, tmp
        self.description = source.describe(table)
        self.store = StateStore(pipe.layout)
        self.rows: dict[tuple, tuple] | None = None

    def sync(self):
        """Merge what changed at the source since the last sync (the first one as snapshot reads)."""
        if self.store.live() is None:
            self.store.create(self.description)
        key = list(self.description.key_columns)
        now = self._read()
        events = []
        for k, row in now.items():
            if self.rows is None:
                events.append(("r", row))
            elif k not in self.rows:
                events.append(("c", row))
            elif self.rows[k] != row:
                events.append(("u", row))
        for k in set(self.rows or {}) - set(now):
            events.append(("d", tuple(dict(zip(key, k)).get(c) for c in self.description.column_names)))
        self.rows = now
        frame = pd.DataFrame([self._event(op, row) for op, row in events], dtype=object)
        return self.store.apply(frame, retain=retained_generations(self.pipe)) if len(frame) else None

    def _read(self) -> dict[tuple, tuple]:
        path = self.tmp / "source.csv"
        path.write_bytes(self.source.copy_csv(self.table, ", ".join(self.description.key_columns)))
        frame = read_copy_csv(path)
        key_at = [list(frame.columns).index(k) for k in self.description.key_columns]
        rows = [tuple(None if v is None else v for v in row) for row in frame.itertuples(index=False)]
        return {tuple(row[i] for i in key_at): row for row in rows}

    def _event(self, op: str, row: tuple) -> dict:
        position = next(_POSITIONS)
        record = {"operacion": op, **dict(zip(self.description.column_names, row))}
        record.update({"timestamp": "2026-11-24 00:00:00+00", "_topic": "t", "_partition": "0",
                       "_offset": str(position), "_lsn": str(position)})
        return record


# --- destiny.parquet against PostgreSQL's own values --------------------------------------------------------

def expected_expression(column: ArrowColumn, name: str) -> str:
    """SQL that makes PostgreSQL compute, from the typed value, what the Parquet column must hold (temporal
    types as days or microseconds since 1970, so that years past 9999 and BC compare too)."""
    c = name
    kind = column.kind
    if kind == "list":
        inner = expected_expression(column.element, "x")
        return (f"CASE WHEN {c} IS NULL THEN NULL ELSE coalesce((SELECT array_agg({inner} ORDER BY o) "
                f"FROM unnest({c}) WITH ORDINALITY AS u(x, o)), '{{}}') END")
    if kind == "string":  # the output function's text (inet::text would add the mask PostgreSQL does not print)
        return f"CASE WHEN {c} IS NOT NULL THEN format('%s', {c}) END"
    if kind == "float" and column.arrow_type == pa.float32():
        return f"{c}::float8"
    if kind == "decimal":
        return f"CASE WHEN {c}::numeric IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE {c}::numeric END"
    if kind == "money":
        return f"{c}::numeric"
    if kind == "date":
        return f"CASE WHEN isfinite({c}) THEN {c} - date '1970-01-01' END"
    if kind == "time":
        return f"CASE WHEN {c} < time '24:00' THEN (extract(epoch FROM {c}) * 1000000)::bigint END"
    if kind in ("timestamp", "timestamptz"):
        return f"CASE WHEN isfinite({c}) THEN (extract(epoch FROM {c}) * 1000000)::bigint END"
    return c


def parquet_values(array: pa.ChunkedArray) -> list:
    """The column as Python values, temporal types as their integer counts."""
    kind = array.type.value_type if pa.types.is_list(array.type) else array.type
    target = None
    if pa.types.is_date32(kind):
        target = pa.int32()
    elif pa.types.is_time64(kind) or pa.types.is_timestamp(kind):
        target = pa.int64()
    if target is not None:
        array = array.cast(pa.list_(target) if pa.types.is_list(array.type) else target)
    return array.to_pylist()


def same_value(a, b) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, memoryview):
        a = bytes(a)
    return a == b


def compare_parquet_with_source(path: Path, source: Database, description: TableDescription) -> list[str]:
    """Every value of destiny.parquet against PostgreSQL's, column by column; the differences found."""
    table = pq.read_table(path)
    columns = arrow_columns(description)
    key = ", ".join(description.key_columns)
    expressions = ", ".join(expected_expression(c, sql.Identifier(c.name).as_string(None)) for c in columns)
    rows = source.sql(f"SELECT {expressions} FROM {description.qualified_table} ORDER BY {key}")
    problems = []
    if table.num_rows != len(rows):
        problems.append(f"{table.num_rows} rows in the file, {len(rows)} at the source")
    for i, column in enumerate(columns):
        got = parquet_values(table.column(column.name))
        for n, (mine, theirs) in enumerate(zip(got, (row[i] for row in rows))):
            if not same_value(mine, theirs):
                problems.append(f"{column.name} row {n}: parquet {mine!r} != PostgreSQL {theirs!r}")
                break
    return problems


def retire_connector(settings, name: str, slot: str) -> None:
    """Delete a test's connector from Kafka Connect and drop its replication slot once the connector let go of it:
    the test session's cluster has a fixed number of slots, which every test's connector would otherwise keep."""
    import httpx

    from cdc_pipeline.waiting import wait_until

    admin = Database(settings, settings.pg_db)

    def dropped() -> bool:
        # Deleted again each time: a run still in flight (Airflow) may have registered it once more.
        httpx.delete(f"{settings.connect_url}/connectors/{name}", timeout=30)
        rows = admin.sql("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,))
        if not rows:
            return True
        if not rows[0][0]:
            admin.sql("SELECT pg_drop_replication_slot(%s)", (slot,))
        return False

    wait_until(dropped, what=f"replication slot {slot} to be dropped", timeout=120, interval=2)
