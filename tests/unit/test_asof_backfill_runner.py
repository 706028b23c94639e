"""backfill_interval's body (the backfill DAG's one task) with a hand-made task context: the interval, the files,
the history and how the run is closed, the refusals."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import pendulum
import pytest
from airflow.sdk import DAG

from cdc_airflow import backfill_runner
from cdc_pipeline.connector_spec import load_connector_spec
from cdc_pipeline.errors import AsOfError, NotCoveredYetError
from tests.stack.pipeline_driver import REPO
from tests.unit.test_asof_support import SyntheticPipeline, c, model_as_of, r, u

SNAPSHOT = "2026-11-24 10:00:00+00"
SPEC = load_connector_spec(REPO / "include" / "connectors" / "clientes.json")
DAG_ = DAG("cdc_clientes", schedule="* * * * *", start_date=datetime(2026, 1, 1))


def context(logical: str, run_type: str = "backfill", start: str | None = None, try_number: int = 1):
    from airflow.sdk.api.datamodels._generated import DagRunType

    moment = pendulum.parse(logical)  # the task context holds pendulum's datetimes
    run = SimpleNamespace(run_id=f"{run_type}__{logical}", run_type=DagRunType(run_type), logical_date=moment,
                          dag_id=DAG_.dag_id)  # the Task SDK's enum, as a task's context holds it
    return {"dag_run": run, "ti": SimpleNamespace(try_number=try_number, max_tries=3), "dag": DAG_,
            "data_interval_start": pendulum.parse(start) if start else moment, "data_interval_end": moment}


@pytest.fixture
def pipe(tmp_path) -> SyntheticPipeline:
    pipe = SyntheticPipeline(tmp_path)
    pipe.merge([r(1, "ana", SNAPSHOT), r(2, "bea", SNAPSHOT)], read_started="2026-11-24T10:00:05+00:00")
    pipe.merge([u(1, "ana2", "2026-11-24 10:01:10+00"), c(3, "cai", "2026-11-24 10:02:10+00")],
               read_started="2026-11-24T10:04:00+00:00")
    return pipe


def test_a_backfill_run_writes_the_snapshot_at_its_end_and_the_changes_of_the_minute_before(pipe):
    summary = backfill_runner.run(SPEC, pipe.layout.folder.parent, context("2026-11-24T10:02:00+00:00"))
    snapshot = pipe.layout.snapshots_dir / "20261124T100200Z.csv"
    changes = pipe.layout.changes_dir / "20261124T100100Z_20261124T100200Z.csv"
    assert snapshot.read_bytes() == model_as_of(pipe.merged, "2026-11-24T10:02:00Z")
    assert changes.read_text().count("\n") == 2 and ",ana2," in changes.read_text()
    assert summary["snapshot_rows"] == 2 and summary["changes_events"] == 1
    record = pipe.history.runs.get_run("backfill__2026-11-24T10:02:00+00:00")
    assert record["kind"] == "backfill" and record["logical_start"].startswith("2026-11-24T10:01:00")
    assert "snapshots/20261124T100200Z.csv (2 rows)" in record["notes"]
    tries = pipe.history.runs.tries(record["run_id"])
    assert [(t["task_id"], t["status"]) for t in tries] == [("backfill_interval", "success")]

    again = backfill_runner.run(SPEC, pipe.layout.folder.parent, context("2026-11-24T10:02:00+00:00"))
    assert not again["snapshot_written"] and not again["changes_written"]


def test_a_data_interval_is_used_when_the_timetable_gives_one(pipe):
    summary = backfill_runner.run(SPEC, pipe.layout.folder.parent, context("2026-11-24T10:03:00+00:00", start="2026-11-24T10:00:30+00:00"))
    assert summary["changes"].endswith("20261124T100030Z_20261124T100300Z.csv") and summary["changes_events"] == 2


def test_the_run_is_closed_in_the_history_and_refusals_retry_only_when_waiting_helps(pipe):
    done = pipe.history.runs.get_run("backfill__2026-11-24T10:02:00+00:00") or {}
    assert not done  # nothing yet
    backfill_runner.run(SPEC, pipe.layout.folder.parent, context("2026-11-24T10:02:00+00:00"))
    done = pipe.history.runs.get_run("backfill__2026-11-24T10:02:00+00:00")
    assert done["status"] == "succeeded" and done["ended_at"]

    with pytest.raises(NotCoveredYetError):  # a try with retries left: the run stays open for the retry
        backfill_runner.run(SPEC, pipe.layout.folder.parent, context("2026-11-24T10:05:00+00:00"))
    waiting = pipe.history.runs.get_run("backfill__2026-11-24T10:05:00+00:00")
    assert waiting["status"] != "failed" and not waiting["ended_at"] and "retrying" in waiting["error"]
    with pytest.raises(NotCoveredYetError):  # the last try: closed, failed
        backfill_runner.run(SPEC, pipe.layout.folder.parent, context("2026-11-24T10:05:00+00:00", try_number=4))
    assert pipe.history.runs.get_run("backfill__2026-11-24T10:05:00+00:00")["status"] == "failed"

    with pytest.raises(AsOfError, match=r"earliest instant") as refused:
        backfill_runner.run(SPEC, pipe.layout.folder.parent, context("2026-11-24T09:59:00+00:00"))
    assert not refused.value.retry_helps and NotCoveredYetError.retry_helps  # the task fails at once (test_dags.py)
    failed = pipe.history.runs.get_run("backfill__2026-11-24T09:59:00+00:00")
    assert "earliest instant" in failed["error"] and failed["status"] == "failed" and failed["ended_at"]
    assert not pipe.layout.snapshots_dir.joinpath("20261124T095900Z.csv").exists()


def test_a_failed_backfill_does_not_make_the_live_pipeline_failing(pipe):
    from cdc_pipeline.commands.status import pipeline_status

    with pytest.raises(AsOfError):
        backfill_runner.run(SPEC, pipe.layout.folder.parent, context("2026-11-24T09:59:00+00:00"))
    status = pipeline_status("clientes", pipe.layout)
    assert status.last_error is None and status.state != "failing", status.problems


def test_a_manual_run_of_the_backfill_dag_writes_the_minute_before_it(pipe):
    summary = backfill_runner.run(SPEC, pipe.layout.folder.parent, context("2026-11-24T10:02:00+00:00", "manual"))
    assert summary["snapshot"].endswith("20261124T100200Z.csv")
    assert pipe.history.runs.get_run("manual__2026-11-24T10:02:00+00:00")["kind"] == "backfill"


def test_the_operations_dag_can_write_the_same_files(pipe):
    done = backfill_runner.operation(pipe.layout, "as_of", {"at": "2026-11-24T10:02:00Z"})
    assert done["file"].endswith("snapshots/20261124T100200Z.csv")
    with pytest.raises(Exception, match="write it like 2026-11-24"):
        backfill_runner.operation(pipe.layout, "changes", {"from": "today", "to": "2026-11-24T10:02:00Z"})


def test_the_answerable_interval_is_said_before_a_backfill(pipe):
    """What `python -m cdc_pipeline coverage` and the operations DAG's status print: from the snapshot's time to what
    the runs have read (a run that started at 10:04:00 covers up to 30 s before it)."""
    from cdc_pipeline.backfill.limits import answerable
    from cdc_pipeline.backfill.view import open_view

    line = answerable(open_view(pipe.layout))
    assert line == ("clientes: as-of and backfills answer instants from 2026-11-24T10:00:00Z (the time of the snapshot "
                    "it starts from) to 2026-11-24T10:03:30Z (complete up to there; later as runs go on)"), line
