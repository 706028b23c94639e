"""Check PostgreSQL's prerequisites for logical decoding before registering the connector.

Debezium reports these problems too, but only as a Java stack trace in a failed task; checked here they
come with the fix. The primary key's column types are also read here: the merge orders destiny.csv by
the key the way PostgreSQL does, which needs the key's types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from cdc_pipeline.errors import SourceError

# Collations whose order is the code-point order destiny.csv uses for text keys.
BYTE_ORDER_COLLATIONS = frozenset({"C", "POSIX", "C.UTF-8", "C.utf8", "ucs_basic", "pg_c_utf8"})


@dataclass(frozen=True)
class SourceParams:
    host: str
    port: int
    user: str
    password: str
    dbname: str

    def describe(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.dbname}"


@dataclass
class SourceReport:
    wal_level: str
    key_columns: list[str]
    key_types: dict[str, str]
    slot_exists: bool
    slot_active: bool | None = None
    slot_retained_wal_bytes: int | None = None
    notes: list[str] = field(default_factory=list)


def check_source(params: SourceParams, schema: str, table: str, slot_name: str) -> SourceReport:
    try:
        conn = psycopg.connect(
            host=params.host, port=params.port, user=params.user, password=params.password,
            dbname=params.dbname, connect_timeout=10, autocommit=True,
        )
    except psycopg.OperationalError as exc:
        raise SourceError(
            f"cannot connect to PostgreSQL at {params.describe()}: {' '.join(str(exc).split()).rstrip('.')}. Is it running "
            "(locally: ./stack status)? Check the 'cdc_postgres' Airflow connection."
        ) from exc
    with conn:
        wal_level = conn.execute("SHOW wal_level").fetchone()[0]
        if wal_level != "logical":
            raise SourceError(
                f"PostgreSQL at {params.describe()} has wal_level={wal_level}; logical decoding needs "
                "wal_level=logical. Run ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL."
            )
        key_types, collations = _primary_key(conn, schema, table)
        report = SourceReport(wal_level=wal_level, key_columns=list(key_types), key_types=key_types, slot_exists=False)
        linguistic = {c: coll for c, coll in collations.items() if coll and coll not in BYTE_ORDER_COLLATIONS}
        if linguistic:
            report.notes.append(
                f"key columns {linguistic} use a linguistic collation: destiny.csv orders text keys by code point "
                "(the C collation), so its row order can differ from ORDER BY on this database; the rows are the same"
            )
        row = conn.execute(
            "SELECT plugin, active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint"
            " FROM pg_replication_slots WHERE slot_name = %s",
            (slot_name,),
        ).fetchone()
        if row is None:
            used, limit = conn.execute(
                "SELECT (SELECT count(*) FROM pg_replication_slots), current_setting('max_replication_slots')::int"
            ).fetchone()
            if used >= limit:
                raise SourceError(
                    f"replication slot {slot_name!r} does not exist and all {limit} slots are in use; "
                    "drop an unused slot (SELECT pg_drop_replication_slot(name)) or raise max_replication_slots."
                )
            report.notes.append(f"slot {slot_name} does not exist yet: the connector creates it and takes a snapshot")
        else:
            plugin, active, retained = row
            if plugin != "pgoutput":
                raise SourceError(
                    f"replication slot {slot_name!r} exists with plugin {plugin!r}, but the connector uses pgoutput. "
                    "Drop the slot or set slot.name to another name in the connector file."
                )
            report.slot_exists, report.slot_active, report.slot_retained_wal_bytes = True, active, retained
        return report


def _primary_key(conn: psycopg.Connection, schema: str, table: str) -> tuple[dict[str, str], dict[str, str | None]]:
    exists = conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{table}"',)).fetchone()[0]
    if exists is None:
        raise SourceError(
            f"table {schema}.{table} does not exist in the source database. Create it, or fix "
            "table.include.list in the connector file."
        )
    rows = conn.execute(
        """
        SELECT a.attname, format_type(a.atttypid, NULL),
               CASE WHEN a.attcollation = 0 THEN NULL
                    WHEN co.collname = 'default' THEN (SELECT datcollate FROM pg_database WHERE datname = current_database())
                    ELSE co.collname END
        FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        LEFT JOIN pg_collation co ON co.oid = a.attcollation
        WHERE i.indrelid = to_regclass(%s) AND i.indisprimary
        ORDER BY array_position(i.indkey::int2[], a.attnum)
        """,
        (f'"{schema}"."{table}"',),
    ).fetchall()
    if not rows:
        raise SourceError(
            f"table {schema}.{table} has no primary key; the merge keeps one row per key, so it needs one. "
            "Add a primary key (ALTER TABLE ... ADD PRIMARY KEY (...))."
        )
    return {name: type_name for name, type_name, _ in rows}, {name: coll for name, _, coll in rows}
