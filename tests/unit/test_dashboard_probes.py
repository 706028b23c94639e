"""Live probes from the api-server: asked at once, a page waits until one deadline, answers shared for a while,
a question in flight never asked twice, and a slow or failing service costs only its own cell."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from cdc_airflow.dashboard import live_probes as module
from cdc_airflow.dashboard.live_probes import LiveAnswers, live_probes
from cdc_pipeline.connector_spec import load_connector_spec
from cdc_pipeline.status import Backlog

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


def test_a_slow_service_times_out_alone_and_the_others_answer(monkeypatch, spec):
    release = threading.Event()
    monkeypatch.setattr(module, "_connector", lambda spec, seconds: release.wait(5) and {"state": "RUNNING"})
    monkeypatch.setattr(module, "_slot", lambda spec: {"slot": spec.slot_name, "exists": True})
    monkeypatch.setattr(module, "_backlog", lambda spec, ends, seconds: Backlog({0: ends[0]}, ends[0], None, "kafka"))
    probes = live_probes(spec, {0: 3}, seconds=0.3, answers=LiveAnswers())
    try:
        assert probes.backlog({0: 3}).total == 3
        assert probes.slot()["exists"] is True
        with pytest.raises(TimeoutError, match="Kafka Connect did not answer within 0.3 s"):
            probes.connector()
    finally:
        release.set()


def test_nothing_read_yet_means_kafka_is_not_asked(monkeypatch, spec):
    monkeypatch.setattr(module, "_connector", lambda spec, seconds: {"state": "RUNNING"})
    monkeypatch.setattr(module, "_slot", lambda spec: None)
    monkeypatch.setattr(module, "_backlog", lambda *args: pytest.fail("Kafka asked with no resume point"))
    probes = live_probes(spec, None, answers=LiveAnswers())
    assert probes.backlog is None and probes.connector() == {"state": "RUNNING"}


def test_a_missing_connection_is_the_services_answer(monkeypatch, spec):
    def missing(spec):
        raise LookupError("The conn_id `cdc_postgres` isn't defined")

    monkeypatch.setattr(module, "_slot", missing)
    monkeypatch.setattr(module, "_connector", lambda spec, seconds: None)
    probes = live_probes(spec, None, answers=LiveAnswers())
    with pytest.raises(LookupError, match="cdc_postgres"):
        probes.slot()
