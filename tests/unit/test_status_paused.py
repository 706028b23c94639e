"""A paused DAG shows PAUSED with what waits for it, never a green OK; LATE says why when it knows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cdc_pipeline.history import History, RunRef
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.commands.status import Backlog, Probes, pipeline_status

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture()
def layout(tmp_path):
    layout = PipelineLayout.under(tmp_path, "t")
    layout.folder.mkdir(parents=True)
    return layout


def _run(layout, run_id: str, started: timedelta, ended: timedelta | None, status: str = "merged") -> None:
    history = History.open(layout.history)
    history.runs.ensure_run(RunRef(run_id, 1, 1))
    history.runs.update_run(run_id, status=status, started_at=(NOW - started).isoformat(),
                            ended_at=(NOW - ended).isoformat() if ended is not None else None, destiny_rows=4)
    history.runs.set_resume_point(reason="batch", incarnation=1, epoch=1, ends={0: 10}, run_id=run_id)


def _probes(waiting: int, paused: bool | None, age: float | None = None) -> Probes:
    return Probes(backlog=lambda ends: Backlog({0: waiting}, waiting, age, "kafka"), paused=lambda: paused)


def test_a_paused_dag_with_a_backlog_is_paused_and_unhealthy_even_right_after_a_merge(layout):
    _run(layout, "scheduled__1", timedelta(seconds=40), timedelta(seconds=30))
    status = pipeline_status("t", layout, _probes(237, True, 300.0), now=NOW)
    assert status.state == "paused" and not status.healthy
    assert status.problems[0].startswith("the pipeline's DAG is paused in Airflow: ")
    assert "5 min old" in status.problems[0] and "unpause" in status.problems[0]
    assert status.headline.startswith("DAG paused · backlog")


def test_a_paused_dag_with_nothing_waiting_is_paused_but_healthy(layout):
    _run(layout, "scheduled__1", timedelta(minutes=40), timedelta(minutes=39))
    status = pipeline_status("t", layout, _probes(0, True), now=NOW)
    assert status.state == "paused" and status.healthy
    assert not any(p.startswith("no successful merge") for p in status.problems)  # paused says it all


def test_an_unpaused_dag_is_judged_as_before(layout):
    _run(layout, "scheduled__1", timedelta(seconds=40), timedelta(seconds=30))
    status = pipeline_status("t", layout, _probes(3, False), now=NOW)
    assert status.state == "ok" and status.paused is False and status.probes["Airflow"] == "answered"


def test_airflow_that_cannot_be_asked_is_said_and_the_status_still_computed(layout):
    _run(layout, "scheduled__1", timedelta(seconds=40), timedelta(seconds=30))

    def down():
        raise ConnectionError("Airflow at 127.0.0.1:18080 refused the connection")
    status = pipeline_status("t", layout, Probes(paused=down), now=NOW)
    assert status.state == "ok" and status.paused is None
    assert any("could not ask Airflow" in p for p in status.problems)


@pytest.mark.parametrize("started, ended, paused, why", [
    (timedelta(minutes=20), timedelta(minutes=19), None, "no run has started since 11:40 UTC: is the DAG paused"),
    (timedelta(minutes=20), timedelta(minutes=19), False, "the DAG is not paused, so is Airflow's scheduler running"),
    (timedelta(minutes=9), None, False, "run scheduled__2 has been running since 11:51 UTC"),
])
def test_late_says_why(layout, started, ended, paused, why):
    _run(layout, "scheduled__1", timedelta(minutes=30), timedelta(minutes=29))
    _run(layout, "scheduled__2", started, ended, status="started")
    status = pipeline_status("t", layout, Probes(paused=(lambda: paused) if paused is not None else None), now=NOW)
    assert status.state == "late"
    late = next(p for p in status.problems if p.startswith("no successful merge"))
    assert late.startswith("no successful merge since 11:31 UTC (29 min ago): "), late  # a time, not an ISO string
    assert why in late, late


def test_late_when_runs_start_but_none_merges(layout):
    _run(layout, "scheduled__1", timedelta(minutes=30), timedelta(minutes=29))
    _run(layout, "scheduled__2", timedelta(seconds=50), timedelta(seconds=40), status="skipped")
    status = pipeline_status("t", layout, now=NOW)
    assert status.state == "late" and "none merged" in " ".join(status.problems)


@pytest.mark.parametrize("paused, state", [(False, "failing"), (True, "paused")])
def test_a_failing_pipeline_reads_failing_unless_its_dag_is_paused_and_keeps_its_error_either_way(layout, paused,
                                                                                                  state):
    _run(layout, "scheduled__1", timedelta(minutes=3), timedelta(minutes=3))
    _run(layout, "scheduled__2", timedelta(seconds=50), timedelta(seconds=40), status="failed")
    History.open(layout.history).runs.update_run("scheduled__2", error="register_connector: no primary key")
    status = pipeline_status("t", layout, _probes(0, paused), now=NOW)
    assert status.state == state and status.last_error == "register_connector: no primary key"
    assert any(p.startswith("last failed run: register_connector") for p in status.problems)
