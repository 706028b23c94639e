"""The status is never computed from a half-written run: between a run's merge and finish_run the newest run is
"merged" with no end yet, and the pipeline must not read LATE "no successful merge since ever" meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cdc_pipeline.history import History, RunRef
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.commands.status import pipeline_status

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _run(history: History, run_id: str, **fields) -> None:
    history.runs.ensure_run(RunRef(run_id, 1, 1))
    history.runs.update_run(run_id, **fields)


def test_a_merged_run_without_its_end_yet_leaves_the_last_closed_merge_in_charge(tmp_path):
    layout = PipelineLayout.under(tmp_path, "t")
    layout.folder.mkdir(parents=True)
    history = History.open(layout.history)
    closed = (NOW - timedelta(seconds=50)).isoformat()
    _run(history, "scheduled__1", status="merged", ended_at=closed, destiny_rows=10)
    _run(history, "scheduled__2", status="merged", destiny_rows=11)  # merged; finish_run not yet
    status = pipeline_status("t", layout, now=NOW)
    assert status.state == "ok", status.problems
    assert status.last_merge_at == closed

    history.runs.update_run("scheduled__2", ended_at=NOW.isoformat())
    assert pipeline_status("t", layout, now=NOW).last_merge_at == NOW.isoformat()


def test_a_first_run_in_flight_is_not_late_but_one_stuck_for_longer_than_the_late_limit_is(tmp_path):
    layout = PipelineLayout.under(tmp_path, "t")
    layout.folder.mkdir(parents=True)
    history = History.open(layout.history)
    _run(history, "scheduled__1", status="merged", destiny_rows=3, started_at=(NOW - timedelta(seconds=20)).isoformat())
    status = pipeline_status("t", layout, now=NOW)
    assert status.last_merge_at is None and status.state == "ok", status.problems
    status = pipeline_status("t", layout, now=NOW + timedelta(minutes=10))
    assert status.state == "late" and "no successful merge yet" in " ".join(status.problems)


def test_a_quiet_tables_runs_without_a_merge_keep_the_last_counted_rows(tmp_path):
    """A table of a connector of several gets no merge task in a run where it had nothing new."""
    layout = PipelineLayout.under(tmp_path, "t")
    layout.folder.mkdir(parents=True)
    history = History.open(layout.history)
    _run(history, "scheduled__1", status="merged", ended_at=(NOW - timedelta(seconds=90)).isoformat(), destiny_rows=60)
    _run(history, "scheduled__2", status="merged", ended_at=(NOW - timedelta(seconds=30)).isoformat())
    assert pipeline_status("t", layout, now=NOW).destiny_rows == 60
