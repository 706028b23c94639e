"""Check PostgreSQL's prerequisites for logical decoding before registering the connector, and describe the table.

Debezium reports these problems too, but only as a Java stack trace in a failed task; checked here they
come with the fix. The table's catalog description is read in the same connection (see catalog.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from cdc_pipeline.errors import ConfigError, SourceError, SourceUnreachableError
from cdc_pipeline.formatting import folded
from cdc_pipeline.source.collation import collated_key, icu_version
from cdc_pipeline.source.catalog import CatalogColumn, TableDescription, read_description

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

    def connect(self, **kwargs) -> psycopg.Connection:
        try:
            return psycopg.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                   dbname=self.dbname, connect_timeout=10, **kwargs)
        except psycopg.OperationalError as exc:
            raise SourceUnreachableError(
                f"cannot connect to PostgreSQL at {self.describe()}: {connection_failure(exc)}. Is it running "
                "(locally: ./stack status)? Check the Airflow connection cdc_postgres."
            ) from exc


def connection_failure(exc: Exception) -> str:
    """The reason of a failed connection, without what the caller says already: libpq's first line repeats the
    address ('connection to server at "h", port p failed: Connection refused') and its next lines are its own
    hint ('Is the server running on that host ...?')."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    reason = first.rsplit("failed: ", 1)[-1] if "failed: " in first else first
    return folded(reason).rstrip(".") or first


@dataclass
class SourceReport:
    wal_level: str
    description: TableDescription
    slot_exists: bool
    slot_active: bool | None = None
    slot_retained_wal_bytes: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def key_columns(self) -> list[str]:
        return list(self.description.key_columns)

    @property
    def key_types(self) -> dict[str, str]:
        return self.description.key_types


def check_source(params: SourceParams, schema: str, table: str, slot_name: str) -> SourceReport:
    return check_sources(params, [(schema, table)], slot_name)[0]


def check_sources(params: SourceParams, tables: list[tuple[str, str]], slot_name: str,
                  publication: str | None = None) -> list[SourceReport]:
    """``check_source`` for each ``(schema, table)`` of one connector, over one connection; and the connector's
    ``publication``, when it exists already, publishes every kind of change."""
    with params.connect(autocommit=True) as conn:
        check_type_registry(conn)
        reports = [_check(conn, params, schema, table, slot_name) for schema, table in tables]
        if publication:
            check_publication(conn, publication)
        return reports


# Debezium 3.6 reads every type of the database when its task starts and takes the labels of each type of category
# E (enum) from pg_enum: a domain over an enum, or an enum without labels, has none there and the task fails with
# a NullPointerException (TypeRegistry.createTypeBuilderFromResultSet), whatever tables the connector captures.
_LABELLESS_ENUMS_SQL = """
SELECT t.oid::regtype::text, t.typtype
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typcategory = 'E' AND n.nspname <> 'pg_toast'
  AND NOT EXISTS (SELECT 1 FROM pg_enum e WHERE e.enumtypid = t.oid)
ORDER BY 1
"""


def check_type_registry(conn) -> None:
    """Refuse, naming them, the types that stop Debezium's task from starting in this database."""
    found = conn.execute(_LABELLESS_ENUMS_SQL).fetchall()
    if found:
        named = ", ".join(f"{name} ({'a domain over an enum' if kind == 'd' else 'an enum without labels'})"
                          for name, kind in found)
        raise SourceError(
            f"the source database has {named}: Debezium 3.6's task fails to start in a database holding one (it "
            "reads the labels of every enum-like type, and these have none), whatever tables it captures, so "
            "nothing is registered. Drop it, or replace a domain over an enum by the enum itself (or by a domain "
            "over text with a CHECK), then register again.")


# The relations Debezium's table.include.list can match: tables, partitioned tables and partitions (registration
# then refuses the ones it cannot capture exactly, naming why). System schemas are never captured.
_TABLE_NAMES_SQL = """
SELECT n.nspname || '.' || c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
ORDER BY 1
"""


def expand_table_patterns(params: SourceParams, spec):
    """The connector spec with the tables its ``table.include.list`` patterns match in the source's catalog now."""
    with params.connect(autocommit=True) as conn:
        names = [row[0] for row in conn.execute(_TABLE_NAMES_SQL)]
    expanded = spec.with_matching_tables(names)
    if not expanded.tables:
        raise ConfigError(f"{spec.path}: table.include.list ({', '.join(spec.patterns)}) matches no table in database "
                          f"{params.dbname} on {params.describe()}: check the patterns (each is a regular expression "
                          "matched against the whole schema.table, e.g. public\\.orders_.*)")
    return expanded


PUBLISHED = {"pubinsert": "insert", "pubupdate": "update", "pubdelete": "delete", "pubtruncate": "truncate"}


def check_publication(conn, publication: str) -> None:
    """A publication made before the connector (by hand, or by a migration) that leaves out deletes, updates or
    truncates would keep those changes from ever arriving while every run succeeds."""
    row = conn.execute(f"SELECT {', '.join(PUBLISHED)} FROM pg_publication WHERE pubname = %s",
                       (publication,)).fetchone()
    if row is None:
        return  # Debezium creates it, publishing everything
    missing = [kind for kind, published in zip(PUBLISHED.values(), row) if not published]
    if missing:
        raise SourceError(
            f"publication {publication!r} does not publish {', '.join(missing)}: those changes would never reach "
            f"destiny.csv. Run ALTER PUBLICATION {publication} SET (publish = 'insert, update, delete, truncate'); "
            "or set publication.name in the connector file to a publication Debezium may create.")


_KINDS = {"v": "a view", "m": "a materialized view", "f": "a foreign table"}
_RELATION_SQL = """
SELECT c.relkind, c.relispartition, c.relpersistence,
       (SELECT p.relname FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = c.oid LIMIT 1)
FROM pg_class c WHERE c.oid = %s::regclass
"""
_GENERATED_SQL = """
SELECT attname FROM pg_attribute
WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated <> '' ORDER BY attnum
"""


def kind_problems(schema: str, kind: str, is_partition: bool, persistence: str, parent: str | None) -> list[str]:
    """Why a relation of this kind cannot be captured exactly ([] for a plain, logged table)."""
    if kind in _KINDS:
        return [f"{_KINDS[kind]}, not a table: logical decoding publishes tables only"]
    if kind == "p":
        return ["a partitioned table: not captured exactly yet (capture its partitions as tables, or wait for "
                "capture through the partition root)"]
    if is_partition:
        return [f"a partition of {schema}.{parent} (partitioned tables are not captured exactly yet)"]
    if persistence == "u":
        return ["UNLOGGED: its changes are not written to the WAL, so nothing would be captured"]
    return []


def generated_problems(conn, regclass: str) -> list[str]:
    """Stored generated columns: snapshot rows carry them, but pgoutput does not publish them in changes (before
    PostgreSQL 18, and Debezium does not ask for them after), so streamed rows would lose their values."""
    return [f"column {name} is GENERATED ALWAYS ... STORED: changes arrive without it, so destiny.csv would "
            "differ from COPY (make it a plain column kept by a trigger, or leave the table out)"
            for (name,) in conn.execute(_GENERATED_SQL, (regclass,)).fetchall()]


def relation_problems(conn, schema: str, table: str) -> list[str]:
    """Everything about the relation itself (its kind, its generated columns) that keeps it from being captured
    exactly."""
    regclass = f'"{schema}"."{table}"'
    kind, is_partition, persistence, parent = conn.execute(_RELATION_SQL, (regclass,)).fetchone()
    return kind_problems(schema, kind, is_partition, persistence, parent) or generated_problems(conn, regclass)


def check_privileges(conn, params: SourceParams, schema: str, table: str) -> None:
    """What the pipeline's role and Debezium's need, and nothing more, is asked: REPLICATION (the slot, the WAL),
    USAGE on the schema and SELECT on the table (Debezium's snapshot, verify). Named here, with the grant to run,
    rather than as Debezium's task failure. A schema or table that does not exist is left to the next check."""
    role = sql.Identifier(params.user).as_string(conn)
    missing = []
    if not conn.execute("SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
        missing.append(f"ALTER ROLE {role} REPLICATION;")
    schema_exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    if schema_exists and not conn.execute("SELECT has_schema_privilege(%s, 'USAGE')", (schema,)).fetchone()[0]:
        missing.append(f"GRANT USAGE ON SCHEMA {sql.Identifier(schema).as_string(conn)} TO {role};")
    elif schema_exists:
        relation = conn.execute("SELECT to_regclass(%s)::oid", (f'"{schema}"."{table}"',)).fetchone()[0]
        if relation is not None and not conn.execute("SELECT has_table_privilege(%s::oid, 'SELECT')",
                                                     (relation,)).fetchone()[0]:
            missing.append(f"GRANT SELECT ON {sql.Identifier(schema, table).as_string(conn)} TO {role};")
    if missing:
        raise SourceError(f"the role {params.user} lacks what capturing {schema}.{table} needs (the replication "
                          f"slot and the WAL, reading the table). Run as an administrator: {' '.join(missing)} "
                          "(docs/source-privileges.md lists every grant).")


def linguistic_key_columns(description: TableDescription) -> dict[str, str]:
    """Key columns (with their collation) whose collation orders neither by code point nor by ICU's collator, the
    two orders destiny.csv reproduces (libc locales such as en_US.UTF-8, nondeterministic ICU collations)."""
    return {c.name: c.collation for c in description.columns
            if c.name in description.key_columns and c.collation and c.collation not in BYTE_ORDER_COLLATIONS
            and not c.icu_locale}


# Strings whose order differs between locales and ICU versions: case, accents (precomposed and combining),
# ligatures, digits, punctuation, letters some languages sort apart (å, æ, ø, ö, ß, ı, ch), other scripts.
_ICU_PROBE_LETTERS = ("a", "A", "b", "z", "Z", "ä", "Ä", "å", "æ", "ø", "ö", "é", "e\u0301", "E", "ß", "s", "i",
                      "ı", "I", "İ", "-", " ", "_", "1", "2", "9", "c", "h", "ch", "ﬁ", "Ω", "ω", "日", "🙂", "'")
ICU_PROBE = tuple(sorted({a + b for a in _ICU_PROBE_LETTERS for b in _ICU_PROBE_LETTERS} | set(_ICU_PROBE_LETTERS)))


def check_icu_agreement(conn, column: CatalogColumn) -> None:
    """destiny.csv orders a key under an ICU collation with the pipeline's ICU (PyICU): refuse when PostgreSQL's
    ICU orders a set of probe strings otherwise (another ICU version, a tailoring the pipeline's ICU lacks)."""
    query = sql.SQL("SELECT t FROM unnest(%s::text[]) AS t ORDER BY t COLLATE {}").format(
        sql.SQL(column.icu_collation))  # format('%I.%I') from the catalog: quoted already
    source = [row[0] for row in conn.execute(query, (list(ICU_PROBE),)).fetchall()]
    ours = sorted(ICU_PROBE, key=collated_key(column.icu_locale))
    if source != ours:
        at = next(i for i, (a, b) in enumerate(zip(source, ours)) if a != b)
        raise SourceError(
            f"key column {column.name} uses the ICU collation {column.icu_collation} ({column.icu_locale!r}, version "
            f"{column.collation_version}), which PostgreSQL's ICU orders otherwise than the pipeline's (ICU "
            f"{icu_version()}): at probe position {at} PostgreSQL puts {source[at]!r}, the pipeline {ours[at]!r}. "
            "destiny.csv could not be in ORDER BY's order. Run the pipeline with the ICU version PostgreSQL "
            "links (PyICU built against it), or give the key a byte-order collation (ALTER TABLE ... ALTER "
            "COLUMN ... TYPE text COLLATE \"C\").")


def _check(conn, params: SourceParams, schema: str, table: str, slot_name: str) -> SourceReport:
    wal_level = conn.execute("SHOW wal_level").fetchone()[0]
    if wal_level != "logical":
        raise SourceError(
            f"PostgreSQL at {params.describe()} has wal_level={wal_level}; logical decoding needs "
            "wal_level=logical. Run ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL."
        )
    check_privileges(conn, params, schema, table)
    exists = conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{table}"',)).fetchone()[0]
    if exists is None:
        raise SourceError(f"table {schema}.{table} does not exist in the source database. Create it, or fix "
                          "table.include.list in the connector file.")
    problems = relation_problems(conn, schema, table)
    if problems:
        raise SourceError(f"{schema}.{table} cannot be captured exactly: {'; '.join(problems)}. Leave it out of "
                          "table.include.list (python -m cdc_pipeline init lists what can be captured).")
    description = read_description(conn, schema, table)
    if not description.key_columns:
        raise SourceError(
            f"table {schema}.{table} has no primary key; the merge keeps one row per key, so it needs one. "
            "Add a primary key (ALTER TABLE ... ADD PRIMARY KEY (...))."
        )
    for column in description.columns:
        if column.icu_locale and column.name in description.key_columns:
            check_icu_agreement(conn, column)
    report = SourceReport(wal_level=wal_level, description=description, slot_exists=False)
    linguistic = linguistic_key_columns(description)
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
