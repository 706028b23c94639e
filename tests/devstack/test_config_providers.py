"""The Connect worker resolves ${env:CDC_CAPTURE_PASSWORD}: the password works and never shows in the stored config.

These tests use a dedicated user with a pg_hba.conf line of its own on top, so that the password it must give
over TCP (scram-sha-256) is the one the worker holds whatever the rest of pg_hba.conf says, whose password is the stack's CDC_CAPTURE_PASSWORD (the one the worker holds).
"""

import json

import httpx
import psycopg
import pytest
from psycopg import sql

from cdc_pipeline.waiting import wait_until
from devstack.airflow import CONNECT_PASSWORD_REFERENCE

pytestmark = pytest.mark.stack

USER = "cdc_scram_probe"
TABLE = "public.cdc_scram_probe"
CONNECTOR = "cdc-scram-probe"
WRONG = "cdc-scram-probe-wrong"


def connector_config(settings, password: str, slot: str) -> dict[str, str]:
    return {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "tasks.max": "1",
        "plugin.name": "pgoutput",
        "database.hostname": "127.0.0.1",
        "database.port": str(settings.pg_port),
        "database.user": USER,
        "database.password": password,
        "database.dbname": settings.pg_db,
        "topic.prefix": slot,
        "table.include.list": TABLE,
        "slot.name": slot,
        "publication.name": slot,
        "publication.autocreate.mode": "filtered",
    }


@pytest.fixture(scope="module")
def password_user(stack_services):
    """A user that must give CDC_CAPTURE_PASSWORD over TCP (scram-sha-256 in pg_hba.conf); removed afterwards."""
    s = stack_services.settings
    with psycopg.connect(s.pg_conninfo, autocommit=True) as conn:
        hba_file = conn.execute("SHOW hba_file").fetchone()[0]
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN REPLICATION PASSWORD {}").format(
            sql.Identifier(USER), sql.Literal(s.capture_password)))
        conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(sql.Identifier(s.pg_db), sql.Identifier(USER)))
        conn.execute(f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, note text)")
        conn.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.SQL(TABLE), sql.Identifier(USER)))
        original = open(hba_file).read()
        rules = "".join(f"host {db} {USER} 127.0.0.1/32 scram-sha-256\n" for db in ("all", "replication"))
        with open(hba_file, "w") as handle:  # first matching line wins: ours go on top
            handle.write(rules + original)
        conn.execute("SELECT pg_reload_conf()")
    try:
        yield s
    finally:
        for name in (CONNECTOR, WRONG):
            httpx.delete(f"{s.connect_url}/connectors/{name}", timeout=30)
        with psycopg.connect(s.pg_conninfo, autocommit=True) as conn:
            def slots_released():
                return conn.execute("SELECT count(*) FROM pg_replication_slots WHERE slot_name IN (%s, %s) AND active",
                                    (CONNECTOR.replace("-", "_"), WRONG.replace("-", "_"))).fetchone()[0] == 0
            wait_until(slots_released, what="the probe connectors' replication slots to be released", timeout=60)
            conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                         "WHERE slot_name IN (%s, %s)", (CONNECTOR.replace("-", "_"), WRONG.replace("-", "_")))
            for name in (CONNECTOR, WRONG):
                conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(name.replace("-", "_"))))
            conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
            conn.execute(sql.SQL("REVOKE CREATE ON DATABASE {} FROM {}").format(sql.Identifier(s.pg_db),
                                                                                sql.Identifier(USER)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(USER)))
            with open(hba_file, "w") as handle:
                handle.write(original)
            conn.execute("SELECT pg_reload_conf()")


def connector_state(settings, name: str) -> dict:
    response = httpx.get(f"{settings.connect_url}/connectors/{name}/status", timeout=10)
    response.raise_for_status()
    return response.json()


def is_running(status: dict) -> bool:
    return status["connector"]["state"] == "RUNNING" and bool(status["tasks"]) and all(
        t["state"] == "RUNNING" for t in status["tasks"])


def test_the_probe_user_really_needs_the_password(password_user):
    s = password_user
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host="127.0.0.1", port=s.pg_port, dbname=s.pg_db, user=USER, password="not-it",
                        connect_timeout=5).close()
    with psycopg.connect(host="127.0.0.1", port=s.pg_port, dbname=s.pg_db, user=USER, password=s.capture_password,
                         connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == USER


def test_a_connector_with_the_env_reference_runs_and_its_stored_config_holds_no_password(password_user):
    s = password_user
    config = connector_config(s, CONNECT_PASSWORD_REFERENCE, CONNECTOR.replace("-", "_"))
    response = httpx.put(f"{s.connect_url}/connectors/{CONNECTOR}/config", json=config, timeout=60)
    assert response.status_code in (200, 201), response.text

    def running_or_failed():
        status = connector_state(s, CONNECTOR)
        states = [status["connector"]["state"], *(t["state"] for t in status["tasks"])]
        if "FAILED" in states:
            pytest.fail(f"the connector failed: {status}")
        return status if is_running(status) else None

    wait_until(running_or_failed, what=f"connector {CONNECTOR} to be RUNNING", timeout=90, interval=1,
               log_path=stack_log(password_user))
    stored = httpx.get(f"{s.connect_url}/connectors/{CONNECTOR}/config", timeout=10)
    assert stored.json()["database.password"] == "${env:CDC_CAPTURE_PASSWORD}"
    assert s.capture_password not in stored.text
    listing = httpx.get(f"{s.connect_url}/connectors", params={"expand": "info"}, timeout=10).json()
    assert s.capture_password not in json.dumps(listing[CONNECTOR])  # other tests' connectors are not ours to judge


def test_a_wrong_password_is_refused_so_the_reference_is_what_authenticates(password_user):
    s = password_user
    config = connector_config(s, "not-the-password", WRONG.replace("-", "_"))
    response = httpx.put(f"{s.connect_url}/connectors/{WRONG}/config", json=config, timeout=60)
    if response.status_code in (400, 500):
        # Debezium's config validation connects first and refuses. Kafka Connect 4.3 answers 400 with the reason,
        # or 500 (a NullPointerException in AbstractHerder.maybeAddConfigErrors on Debezium's answer) with the reason
        # in its log: either way nothing is created.
        assert httpx.get(f"{s.connect_url}/connectors/{WRONG}/config", timeout=10).status_code == 404
        where = response.text if response.status_code == 400 else stack_log(s).read_text()
        assert f'password authentication failed for user "{USER}"' in where
        return

    def failed():
        status = connector_state(s, WRONG)
        return any(t["state"] == "FAILED" for t in status["tasks"]) or status["connector"]["state"] == "FAILED"

    wait_until(failed, what=f"connector {WRONG} to fail", timeout=90, interval=1)


def stack_log(settings):
    return settings.logs_dir / "connect.log"
