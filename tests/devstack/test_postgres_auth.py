"""The local PostgreSQL asks for the password over TCP (scram-sha-256); only its own socket, open to its owner
only, is trusted, and the launcher sets the password through it."""

from __future__ import annotations

import stat

import psycopg
import pytest

pytestmark = pytest.mark.stack


def connect(s, **overrides):
    params = dict(host="127.0.0.1", port=s.pg_port, dbname=s.pg_db, user=s.pg_user, password=s.pg_password,
                  connect_timeout=3)
    return psycopg.connect(**{**params, **overrides})


def test_tcp_connections_need_the_password_and_it_is_stored_as_scram(stack_services):
    s = stack_services.settings
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(s, password="not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password"):
        connect(s, password="")
    with connect(s) as conn:
        stored = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (s.pg_user,)).fetchone()[0]
        methods = {row[0] for row in conn.execute("SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host'")}
    assert stored.startswith("SCRAM-SHA-256$") and methods == {"scram-sha-256"}
    # A replication connection (what Debezium opens) asks too.
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(s, password="not-the-password", replication="database")


def test_the_trusted_socket_is_open_to_its_owner_only(stack_services):
    s = stack_services.settings
    sockets = list(s.pg_socket_dir.glob(".s.PGSQL.*"))
    assert sockets and all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in sockets if p.is_socket())
