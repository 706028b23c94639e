"""A separate small stack: clean stop, and what survives a stop/start (postgres rows, connect's offsets)."""

import json
import shutil
import time

import httpx
import psycopg
import pytest

from cdc_pipeline.waiting import wait_until
from devstack import process
from devstack.demo import run_demo
from devstack.ports import port_in_use
from devstack.settings import REPO_ROOT
from devstack.stack import SERVICES, Stack
from devstack.testing import make_test_settings

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
              "database.user": s.pg_user, "database.password": s.pg_password, "database.dbname": s.pg_db}
    response = httpx.put(f"{s.connect_url}/connectors/{spec['name']}/config", json=config, timeout=30)
    assert response.status_code in (200, 201), response.text


def test_stop_then_start_keeps_rows_and_offsets_and_stops_cleanly(small_stack):
    s = small_stack.settings
    small_stack.start(SERVICES)
    with psycopg.connect(s.pg_conninfo, autocommit=True) as conn:
        conn.execute("INSERT INTO public.clientes (nombre, email) VALUES ('Survivor', 's@example.com')")
    register_clientes(small_stack)
    offsets = small_stack["connect"].offsets_file  # type: ignore[attr-defined]
    # Wait for the offsets of the finished snapshot: the worker writes the file's header before any offset,
    # and a copy taken in between would not be what the worker flushes on stop.
    wait_until(lambda: offsets.exists() and b'snapshot_completed":true' in offsets.read_bytes(),
               what="the snapshot's offsets in the offsets file", timeout=60, interval=0.5, log_path=small_stack["connect"].log_path)
    saved = offsets.read_bytes()
    pids = {name: small_stack[name].pid() for name in SERVICES}
    children = {name: process.descendants(pid) for name, pid in pids.items()}

    assert small_stack.stop() == ["connect", "broker", "postgres"]
    for name, pid in pids.items():
        assert not process.is_alive(pid), name
        assert not [c for c in children[name] if process.is_alive(c)], f"{name} left children behind"
    for port in (s.pg_port, s.kafka_port, s.connect_port):
        assert not port_in_use(port), port
    assert offsets.read_bytes() == saved

    results = small_stack.start(SERVICES)
    assert not any(r.reused for r in results)
    with psycopg.connect(s.pg_conninfo) as conn:
        assert conn.execute("SELECT count(*) FROM public.clientes WHERE nombre = 'Survivor'").fetchone()[0] == 1
    assert offsets.read_bytes() == saved  # the restarted worker found its source offsets where it left them


def test_demo_load_applies_inserts_updates_and_deletes(small_stack):
    small_stack.start(["postgres"])
    began = time.monotonic()
    lines = []
    summary = run_demo(small_stack.settings, count=12, rate=100, seed=7, report=lines.append)
    assert summary.total == 12 == len(lines)
    assert summary.inserts and summary.updates and summary.deletes
    assert time.monotonic() - began < 10
