"""The connector's publication: exactly its tables, every kind of change, kept by registration.

Debezium runs with ``publication.autocreate.mode=disabled``, so its role needs no ownership: LOGIN, REPLICATION and
SELECT (docs/source-privileges.md). Adding a table to a publication is for the table's owner (PostgreSQL checks
ownership of every table named), so registration creates or alters the publication through the administrator's
connection when it has one (``cdc_postgres_admin``), else through the pipeline's own; a role that may not gets an
error naming the one statement to run as the tables' owner.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import psycopg
from psycopg import sql

from cdc_pipeline.errors import SourceError
from cdc_pipeline.source.checks import SourceParams

log = logging.getLogger(__name__)

PUBLISH = "insert, update, delete, truncate"


def publication_statement(name: str, tables: Sequence[str], *, exists: bool) -> sql.Composed:
    """CREATE PUBLICATION (or ALTER ... SET TABLE) naming exactly ``tables`` ('schema.table')."""
    names = sql.SQL(", ").join(sql.Identifier(*table.split(".", 1)) for table in tables)
    if exists:
        return sql.SQL("ALTER PUBLICATION {} SET TABLE {}").format(sql.Identifier(name), names)
    return sql.SQL("CREATE PUBLICATION {} FOR TABLE {} WITH (publish = {})").format(
        sql.Identifier(name), names, sql.Literal(PUBLISH))


def ensure_publication(params: SourceParams, name: str, tables: Sequence[str]) -> str:
    """Make publication ``name`` publish exactly ``tables``; answer 'unchanged', 'created' or 'altered'.

    A publication FOR ALL TABLES (made by a superuser) is left as it is: it publishes every table already.
    """
    with params.connect(autocommit=True) as conn:
        row = conn.execute("SELECT puballtables FROM pg_publication WHERE pubname = %s", (name,)).fetchone()
        if row is not None and row[0]:
            return "unchanged"
        members = {f"{schema}.{table}" for schema, table in conn.execute(
            "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s", (name,))}
        if row is not None and members == set(tables):
            return "unchanged"
        statement = publication_statement(name, tables, exists=row is not None)
        try:
            conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise SourceError(
                f"publication {name} must publish {', '.join(tables)}"
                f"{'' if row is None else ' (it publishes ' + (', '.join(sorted(members)) or 'none') + ')'}, and "
                f"{params.user} may not {'alter' if row is not None else 'create'} it: {exc.diag.message_primary}. "
                f"Run as the tables' owner (or a superuser): {statement.as_string(conn)}; or give the pipeline the "
                "'cdc_postgres_admin' Airflow connection (a role owning the tables), which registration then uses "
                "for this. See docs/source-privileges.md.") from exc
    log.info("publication %s %s: %s", name, "altered" if row is not None else "created", ", ".join(tables))
    return "altered" if row is not None else "created"
