"""Live probes from the api-server: asked at once, a page waits until one deadline, answers shared for a while,
a question in flight never asked twice, and a slow or failing service costs only its own cell."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cdc_airflow.dashboard import live_probes as module
from cdc_airflow.dashboard.live_probes import LiveAnswers, live_probes
from cdc_pipeline.connector_spec import load_connector_spec
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.commands.status import Backlog, pipeline_status
from tests.unit.many_tables_fixture import merged_run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def spec():
    return load_connector_spec(REPO / "include" / "connectors" / "clientes.json")


def test_an_answer_is_shared_while_fresh_and_asked_again_when_stale():
    answers = LiveAnswers(ttl=60)
    calls = []
    first = answers.ask("k", lambda: calls.append(1) or len(calls))
    assert first.result(timeout=5) == 1 and answers.ask("k", lambda: calls.append(1) or len(calls)) is first
    stale = LiveAnswers(ttl=0)
    stale.ask("k", lambda: calls.append(1)).result(timeout=5)
    stale.ask("k", lambda: calls.append(1)).result(timeout=5)
    assert len(calls) == 3


def test_a_question_in_flight_is_joined_not_asked_twice():
    answers = LiveAnswers(ttl=0)
    release = threading.Event()
    calls = []

    def slow():
        calls.append(1)
        release.wait(5)
        return "late"

    first = answers.ask("k", slow)
    assert answers.ask("k", slow) is first
    release.set()
    assert first.result(timeout=5) == "late" and len(calls) == 1


@pytest.fixture()
def merged(tmp_path, spec) -> PipelineLayout:
    """The pipeline's folder with one run merged a minute ago that read partition 0 up to offset 5."""
    layout = PipelineLayout.under(tmp_path, spec.name)
    merged_run(layout, "scheduled__1", datetime.now(UTC), rows=5)
    return layout


def test_a_slow_service_times_out_alone_and_the_others_answer(monkeypatch, spec, merged):
    """The status the page shows: Kafka Connect hangs; the page waits 0.3 s for it, not 5, and every other cell
    has its service's answer."""
    release = threading.Event()
    monkeypatch.setattr(module, "_connector", lambda spec, seconds: release.wait(5) and {"state": "RUNNING"})
    monkeypatch.setattr(module, "_slot", lambda spec: {"slot": spec.slot_name, "exists": True})
    monkeypatch.setattr(module, "_paused", lambda dag_id: False)
    monkeypatch.setattr(module, "_backlog", lambda spec, ends, seconds: Backlog({0: ends[0] + 4}, 4, None, "kafka"))
    try:
        began = time.monotonic()
        status = pipeline_status(spec.name, merged, live_probes(spec, {0: 5}, seconds=0.3, answers=LiveAnswers()))
        took = time.monotonic() - began
    finally:
        release.set()
    assert took < 2, f"the page waited {took:.1f} s for a service that hung"
    assert status.probes == {"Kafka": "answered", "Kafka Connect": "Kafka Connect did not answer within 0.3 s",
                             "PostgreSQL": "answered", "Airflow": "answered"}
    assert status.problems == ["could not ask Kafka Connect: Kafka Connect did not answer within 0.3 s"]
    assert status.connector is None and status.backlog.total == 4 and status.slot["exists"] is True


def test_nothing_read_yet_means_kafka_is_not_asked(monkeypatch, spec):
    asked = []
    monkeypatch.setattr(module, "_connector", lambda spec, seconds: {"state": "RUNNING"})
    monkeypatch.setattr(module, "_slot", lambda spec: None)
    monkeypatch.setattr(module, "_paused", lambda dag_id: False)
    monkeypatch.setattr(module, "_backlog", lambda *args: asked.append(args))
    probes = live_probes(spec, None, answers=LiveAnswers())
    probes.connector(), probes.slot(), probes.paused()  # every question asked has been answered by now
    assert probes.backlog is None and asked == []


def test_a_missing_connection_is_the_services_answer(monkeypatch, spec, merged):
    """No Airflow connection ``cdc_postgres``: the slot probe looks it up for real (the Task SDK's
    BaseHook.get_connection, as in the api-server), and the PostgreSQL cell says which connection is missing in
    Airflow's own words; the other cells answer."""
    monkeypatch.delenv("AIRFLOW_CONN_CDC_POSTGRES", raising=False)
    monkeypatch.setattr(module, "_connector", lambda spec, seconds: {"state": "RUNNING"})
    monkeypatch.setattr(module, "_paused", lambda dag_id: False)
    status = pipeline_status(spec.name, merged, live_probes(spec, None, seconds=30, answers=LiveAnswers()))
    assert status.probes["PostgreSQL"] == "The conn_id `cdc_postgres` isn't defined"
    assert status.problems == ["could not ask PostgreSQL: The conn_id `cdc_postgres` isn't defined"]
    assert status.slot is None and status.connector == {"state": "RUNNING"} and status.probes["Kafka"] == "not asked"
