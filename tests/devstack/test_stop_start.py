"""A separate small stack: clean stop, and what survives a stop/start (postgres rows, Connect's connectors and offsets)."""

import json
import os
import shutil
import subprocess
import sys

import httpx
import psycopg
import pytest
from psycopg import sql

from cdc_pipeline.waiting import wait_until
from devstack import process
from devstack.__main__ import connector_lines
from cdc_pipeline.source.checks import SourceParams
from cdc_pipeline.source.publication import ensure_publication
from devstack.airflow import CONNECT_PASSWORD_REFERENCE
from devstack.demo import run_demo
from devstack.ports import port_in_use
from devstack.settings import REPO_ROOT
from devstack.stack import SERVICES, Stack
from devstack.testing import make_test_settings
from tests.devstack.status_output import pipeline_states

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def small_stack():
    stack = Stack(make_test_settings(prefix="cdc-stack-small-"))
    try:
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(stack.settings.stack_home, ignore_errors=True)


def register_clientes(stack: Stack) -> None:
    s = stack.settings
    spec = json.loads((REPO_ROOT / "include" / "connectors" / "clientes.json").read_text())
    config = {**spec["config"], "database.hostname": "127.0.0.1", "database.port": str(s.pg_port),
              "database.user": s.capture_user, "database.password": CONNECT_PASSWORD_REFERENCE, "database.dbname": s.pg_db,
              # What registration does (cdc_pipeline/source/publication.py): the publication is the administrator's.
              "publication.autocreate.mode": "disabled",
              # No heartbeats: with nothing changing, the committed offset then stays the snapshot's last one.
              "heartbeat.interval.ms": "0"}
    ensure_publication(SourceParams(s.pg_host, s.pg_port, s.pg_user, s.pg_password, s.pg_db),
                       config["publication.name"], ["public.clientes"])
    response = httpx.put(f"{s.connect_url}/connectors/{spec['name']}/config", json=config, timeout=30)
    assert response.status_code in (200, 201), response.text
    # The distributed worker keeps the connector across the module's PostgreSQL restarts, and Debezium fails its
    # task when the database goes away: restart what failed, as register_connector does.
    restart = httpx.post(f"{s.connect_url}/connectors/{spec['name']}/restart",
                         params={"includeTasks": "true", "onlyFailed": "true"}, timeout=30)
    assert restart.status_code in (200, 202, 204, 404), restart.text


def committed_lsns(settings) -> list[int]:
    """The LSNs of the clientes connector's committed source offsets (Connect keeps them in its offsets topic)."""
    response = httpx.get(f"{settings.connect_url}/connectors/clientes/offsets", timeout=10)
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return [int(o["offset"]["lsn"]) for o in response.json()["offsets"] if "lsn" in o.get("offset", {})]


def test_stop_then_start_keeps_rows_connectors_and_offsets_and_stops_cleanly(small_stack):
    s = small_stack.settings
    small_stack.start(SERVICES)
    with psycopg.connect(s.pg_conninfo, autocommit=True) as conn:
        (before,) = conn.execute("SELECT pg_current_wal_lsn() - '0/0'").fetchone()
        conn.execute("INSERT INTO public.clientes (nombre, email) VALUES ('Survivor', 's@example.com')")
    register_clientes(small_stack)

    def snapshot_done_and_committed() -> int | None:
        """The LSN of the worker's committed offset once it covers the Survivor row (a snapshot taken after it,
        or, when an earlier test left the connector streaming, its insert)."""
        stored = httpx.get(f"{s.connect_url}/connectors/clientes/offsets", timeout=10).json()["offsets"]
        done = [int(o["offset"]["lsn"]) for o in stored
                if int(o["offset"].get("lsn", -1)) >= before
                and (not o["offset"].get("snapshot") or o["offset"].get("snapshot_completed"))]
        return done[0] if done else None

    saved = wait_until(snapshot_done_and_committed, what="the snapshot's committed source offsets", timeout=60,
                       interval=0.5, log_path=small_stack["connect"].log_path)
    pids = {name: small_stack[name].pid() for name in SERVICES}
    children = {name: process.refs(process.descendants(pid)) for name, pid in pids.items()}

    assert small_stack.stop() == ["connect", "broker", "postgres"]
    for name, pid in pids.items():
        assert not process.is_alive(pid), name
        assert not [c.pid for c in children[name] if c.alive()], f"{name} left children behind"
    for port in (s.pg_port, s.kafka_port, s.kafka_controller_port, s.connect_port):
        assert not port_in_use(port), port

    results = small_stack.start(SERVICES)
    assert not any(r.reused for r in results)
    with psycopg.connect(s.pg_conninfo) as conn:
        assert conn.execute("SELECT count(*) FROM public.clientes WHERE nombre = 'Survivor'").fetchone()[0] == 1
    # The distributed worker read its connectors and their source offsets back from its Kafka topics: the
    # connector exists without being registered again, and its offset is the one committed before the stop.
    assert httpx.get(f"{s.connect_url}/connectors/clientes/config", timeout=10).status_code == 200
    assert max(committed_lsns(s), default=-1) >= saved, (saved, committed_lsns(s))


def test_demo_load_applies_inserts_updates_and_deletes(small_stack):
    small_stack.start(["postgres"])
    lines = []
    # 60, as the README's Quickstart: each kind is then all but certain whatever the tables held before (a delete
    # is 15 % of the changes; none in 60 has a chance of 6 in 100,000).
    summary = run_demo(small_stack.settings, count=60, rate=1000, seed=7, report=lines.append)
    assert summary.total == 60 == len(lines)
    assert summary.inserts and summary.updates and summary.deletes
    assert any("pedido" in line or "producto" in line for line in lines)  # the shop's tables move too
    assert any("id=" in line for line in lines)  # and public.clientes


def test_starting_postgres_again_never_seeds_the_existing_database_again(small_stack):
    s = small_stack.settings
    small_stack.start(["postgres"])
    with psycopg.connect(s.pg_conninfo, autocommit=True) as conn:
        conn.execute("INSERT INTO public.clientes (id, nombre) VALUES (1, 'Ana') ON CONFLICT (id) DO NOTHING")
        conn.execute("DELETE FROM public.clientes WHERE id = 1")  # a demo seed row, deleted by the user
    small_stack.stop(["postgres"])
    assert small_stack.start(["postgres"])[0].reused is False
    with psycopg.connect(s.pg_conninfo) as conn:
        assert conn.execute("SELECT count(*) FROM public.clientes WHERE id = 1").fetchone()[0] == 0
        databases = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    assert {s.pg_db, s.sink_db} <= databases
    assert not [d for d in databases if d.endswith("__cdc_seeding")]


def test_every_start_sets_the_recorded_password_on_the_user(small_stack):
    """A password changed behind the launcher's back is set again at the next start (through the trusted socket,
    since TCP asks for the password); a first scram line for our user shows the wrong ones are refused."""
    s = small_stack.settings
    small_stack.start(["postgres"])
    with psycopg.connect(s.pg_conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD 'changed-behind-our-back'").format(sql.Identifier(s.pg_user)))
    small_stack.stop(["postgres"])
    small_stack.start(["postgres"])  # sets CDC_PG_PASSWORD on the user again
    with psycopg.connect(s.pg_conninfo, autocommit=True) as conn:
        hba_file = conn.execute("SHOW hba_file").fetchone()[0]
        original = open(hba_file).read()
        with open(hba_file, "w") as handle:  # the first matching line wins
            handle.write(f"host all {s.pg_user} 127.0.0.1/32 scram-sha-256\n" + original)
        conn.execute("SELECT pg_reload_conf()")
    try:
        with psycopg.connect(s.pg_conninfo) as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == s.pg_user
        for wrong in ("changed-behind-our-back", "postgres"):
            with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
                psycopg.connect(s.pg_conninfo.replace(s.pg_password, wrong)).close()
    finally:
        with open(hba_file, "w") as handle:
            handle.write(original)
        with psycopg.connect(s.pg_conninfo.replace("host=127.0.0.1", f"host={s.pg_socket_dir}"),
                             autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")


def test_status_shows_each_connector_and_fails_unless_every_part_and_connector_runs(small_stack):
    s = small_stack.settings
    small_stack.start(SERVICES)
    register_clientes(small_stack)
    connect = httpx.Client(base_url=s.connect_url, timeout=10)
    state = lambda: connect.get("/connectors/clientes/status").json()  # noqa: E731
    def task_running() -> bool:
        tasks = state()["tasks"]
        if tasks and tasks[0]["state"] == "FAILED":
            trace = tasks[0].get("trace") or ""
            causes = [line for line in trace.splitlines() if line.startswith("Caused by")]
            raise AssertionError(f"task 0 FAILED: {trace.splitlines()[0] if trace else ''} {' / '.join(causes)}")
        return bool(tasks) and tasks[0]["state"] == "RUNNING"

    wait_until(task_running, what="connector clientes to run", timeout=90, log_path=small_stack["connect"].log_path)
    healthy, lines = connector_lines(s)
    assert healthy, lines
    assert any("clientes" in line and "ok connector RUNNING" in line for line in lines), lines
    assert any("task 0 RUNNING" in line for line in lines), lines

    assert connect.put("/connectors/clientes/pause").status_code == 202
    try:
        wait_until(lambda: state()["connector"]["state"] == "PAUSED" and all(
            t["state"] == "PAUSED" for t in state()["tasks"]), what="connector clientes and its task to pause", timeout=60)
        healthy, lines = connector_lines(s)
        assert not healthy
        assert any("NOT RUNNING connector PAUSED" in line for line in lines), lines

        result = subprocess.run([sys.executable, "-m", "devstack", "status"], env={**os.environ, **s.as_env()},
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 1, result.stdout + result.stderr
        for name in SERVICES:
            assert f"{name:9} running pid {small_stack[name].pid()}" in result.stdout
        assert "airflow   stopped" in result.stdout
        assert "NOT RUNNING connector PAUSED" in result.stdout
        assert "task 0 PAUSED" in result.stdout
    finally:
        connect.put("/connectors/clientes/resume")
    try:
        # Every connector running again, only a part (Airflow) down: still exit 1, for that reason alone.
        wait_until(lambda: state()["connector"]["state"] == "RUNNING", what="connector clientes to resume", timeout=60)
        result = subprocess.run([sys.executable, "-m", "devstack", "status"], env={**os.environ, **s.as_env()},
                                capture_output=True, text=True, timeout=120)
        assert "NOT RUNNING" not in result.stdout and "airflow   stopped" in result.stdout, result.stdout
        assert all(st in ("OK", "NOT STARTED") for st in pipeline_states(result.stdout).values()), result.stdout
        assert result.returncode == 1, result.stdout + result.stderr
    finally:
        connect.close()


def test_stop_with_a_part_name_stops_that_part_alone(small_stack):
    s = small_stack.settings
    small_stack.start(["postgres", "broker"])
    result = subprocess.run([sys.executable, "-m", "devstack", "stop", "postgres"], env={**os.environ, **s.as_env()},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "stopped: postgres" in result.stdout, result.stdout + result.stderr
    assert not small_stack["postgres"].is_running() and small_stack["broker"].is_running()
    result = subprocess.run([sys.executable, "-m", "devstack", "stop", "nope"], env={**os.environ, **s.as_env()},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "unknown part(s) ['nope']" in result.stdout + result.stderr


def test_a_postgres_stuck_shutting_down_fails_its_start_early_saying_what_to_do(small_stack):
    """A plain kill asks PostgreSQL for a smart shutdown, which waits for every client; Debezium's never leave. A
    start then fails within seconds, naming the state and the command, not after its timeout with 40 log lines."""
    import signal
    import time

    from devstack.errors import PartStartError
    from devstack.part import STUCK_AFTER_S

    s = small_stack.settings
    small_stack.start(["postgres"])
    part = small_stack["postgres"]
    client = psycopg.connect(s.pg_conninfo, autocommit=True)  # a client that stays, as Debezium's do
    try:
        os.kill(part.pid(), signal.SIGTERM)
        began = time.monotonic()
        with pytest.raises(PartStartError) as refused:
            part.start(timeout=60)
        assert time.monotonic() - began < STUCK_AFTER_S + 10
        message = str(refused.value)
        assert "shutting down" in message and "./stack stop postgres" in message, message
    finally:
        client.close()
        small_stack.stop(["postgres"])
    small_stack.start(["postgres"])
    with psycopg.connect(s.pg_conninfo) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
