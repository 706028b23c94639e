"""runs.sqlite: runs, tries, resume points, incarnations, outages, recoveries, migration from schema 1."""

import sqlite3
from pathlib import Path

from cdc_pipeline.history import History, RunKind, RunRef, RunStatus, TryStatus

REPO = Path(__file__).resolve().parents[2]


def test_a_durable_batch_is_the_new_resume_point_in_one_step(tmp_path):
    history = History.open(tmp_path / "runs.sqlite")
    run = RunRef("scheduled__2026-11-24T08:00:00+00:00", 1, 4)
    history.runs.ensure_run(run)
    assert history.runs.resume_point() is None
    history.runs.record_batch(run.run_id, incarnation=2, epoch=1, ranges={0: (5, 9), 1: (3, 3)}, creates=4)
    point = history.runs.resume_point()
    assert (point.incarnation, point.epoch, point.ends, point.reason) == (2, 1, {0: 9, 1: 3}, "batch")
    record = history.runs.get_run(run.run_id)
    assert record["status"] == RunStatus.BUFFERED and record["kind"] == RunKind.SCHEDULED and record["creates"] == 4


def test_a_reset_or_rebuild_sets_a_resume_point_without_a_batch(tmp_path):
    history = History.open(tmp_path / "runs.sqlite")
    history.runs.set_resume_point(reason="rebuild", incarnation=None, epoch=3, ends={})
    point = history.runs.resume_point()
    assert point.incarnation is None and point.epoch == 3 and history.runs.current_epoch() == 3


def test_each_try_is_a_row(tmp_path):
    history = History.open(tmp_path / "runs.sqlite")
    for attempt in (1, 2):
        run = RunRef("r", attempt, 2)
        history.runs.ensure_run(run)
        history.runs.start_try(run, "consume_batch")
        status = TryStatus.FAILED if attempt == 1 else TryStatus.SUCCESS
        history.runs.end_try(run, "consume_batch", status=status, duration=0.5, error="x" if attempt == 1 else None)
    tries = history.runs.tries("r")
    assert [(t["try_number"], t["status"], t["max_tries"]) for t in tries] == [(1, "failed", 2), (2, "success", 2)]
    assert history.runs.get_run("r")["tries"] == 2


def test_a_transaction_commits_its_writes_together_or_none_of_them(tmp_path):
    history = History.open(tmp_path / "runs.sqlite")
    run = RunRef("r", 1, 1)
    outside = History.open(tmp_path / "runs.sqlite").runs  # another connection: sees only what is committed
    with history.runs.transaction():
        history.runs.ensure_run(run)
        with history.runs.transaction():  # nested: joins the outer one
            history.runs.start_try(run, "merge_batch")
        assert history.runs.get_run("r") is not None and outside.get_run("r") is None
    assert outside.get_run("r") is not None and [t["task_id"] for t in outside.tries("r")] == ["merge_batch"]
    try:
        with history.runs.transaction():
            history.runs.end_try(run, "merge_batch", status=TryStatus.SUCCESS, duration=1.0)
            history.runs.update_run("r", no_such_field=1)
    except ValueError:
        pass
    assert outside.tries("r")[0]["status"] == "running"  # the end_try before the error was rolled back with it
    history.runs.update_run("r", merge_seconds=2.0)  # after it, each call commits on its own again
    assert outside.get_run("r")["merge_seconds"] == 2.0


def test_a_tracked_task_records_its_try_and_its_duration(tmp_path):
    from cdc_pipeline.tasks.tracking import tracked

    history = History.open(tmp_path / "runs.sqlite")
    run = RunRef("r", 1, 2)
    try:
        with tracked(history, run, "merge_batch") as summary:
            summary["events"] = 3
            raise OSError("disk full")
    except OSError:
        pass
    assert history.runs.get_run("r")["error"] == "merge_batch (try 1 of 2, retrying): disk full"
    with tracked(history, RunRef("r", 2, 2), "merge_batch") as summary:
        summary["events"] = 3
    record = history.runs.get_run("r")
    assert record["error"] is None and record["merge_seconds"] is not None and record["tries"] == 2
    assert [(t["try_number"], t["status"]) for t in history.runs.tries("r")] == [(1, "failed"), (2, "success")]


def test_an_outage_opens_extends_and_closes(tmp_path):
    incidents = History.open(tmp_path / "runs.sqlite").incidents
    first = incidents.seen_down("postgres", "run1", "refused")
    assert incidents.seen_down("postgres", "run2", "refused again") == first
    # Another task, and a retry, of the same run: still two runs affected, not four.
    incidents.seen_down("postgres", "run2", "refused by register_connector")
    incidents.seen_down("postgres", "run2", "refused again")
    (open_outage,) = incidents.open_outages()
    assert open_outage["runs_affected"] == 2 and open_outage["last_error"] == "refused again"
    closed = incidents.seen_up("postgres", "run3")
    assert closed["id"] == first and incidents.open_outages() == []
    assert incidents.seen_up("postgres", "run4") is None


def test_a_loss_is_charged_to_the_broker_outage_a_run_saw(tmp_path):
    incidents = History.open(tmp_path / "runs.sqlite").incidents
    seen = incidents.seen_down("broker", "run1", "all brokers down")
    incidents.seen_up("broker", "run2")
    assert incidents.link_data_loss(7, run_id="run3", detail="topic recreated", since="2026-11-30T10:00:00+00:00") == seen
    (outage,) = incidents.outages()
    assert (outage["data_lost"], outage["recovery_id"], outage["first_run_id"]) == (1, 7, "run1")


def test_a_loss_no_run_saw_coming_is_recorded_as_a_broker_outage_between_runs(tmp_path):
    incidents = History.open(tmp_path / "runs.sqlite").incidents
    incidents.seen_down("postgres", "run1", "refused")  # another service's outage is not charged
    outage_id = incidents.link_data_loss(3, run_id="run9", detail="topic recreated (new topic id)",
                                         since="2026-11-30T10:00:00.000+00:00")
    broker = next(o for o in incidents.outages() if o["service"] == "broker")
    assert broker["id"] == outage_id and broker["data_lost"] == 1 and broker["recovery_id"] == 3
    assert broker["first_seen_down_at"] == "2026-11-30T10:00:00.000+00:00" and broker["back_run_id"] == "run9"
    assert broker["back_at"] and broker["runs_affected"] == 0
    assert broker["last_error"].startswith("not seen down by any run") and "new topic id" in broker["last_error"]
    assert [o["service"] for o in incidents.open_outages()] == ["postgres"]


def test_a_recovery_supersedes_the_one_before_and_moves_through_its_steps(tmp_path):
    incidents = History.open(tmp_path / "runs.sqlite").incidents
    old = incidents.start_recovery(run_id="a", reason="data_loss", detail="x", lost=[{"partition": 0}], epoch=1)
    new = incidents.start_recovery(run_id="b", reason="schema_change", detail="y", lost=None, epoch=2)
    assert incidents.active_recovery().id == new
    assert [r["step"] for r in incidents.recoveries()] == ["requested", "superseded"]
    incidents.recovery_step(new, "snapshot_confirmed")
    assert incidents.active_recovery().snapshot_confirmed_at is not None
    incidents.recovery_step(new, "promoted", run_id="c")
    assert incidents.active_recovery() is None and old != new


def test_a_schema_1_history_is_migrated_and_keeps_its_rows(tmp_path):
    path = tmp_path / "runs.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript((REPO / "tests" / "fixtures" / "runs_schema_v1.sql").read_text())
        db.execute("INSERT INTO runs (run_id, status) VALUES ('old', 'merged')")
        db.execute("INSERT INTO pipeline_settings VALUES ('start_from_ms', '123')")
    history = History.open(path)
    assert history.runs.get_run("old")["kind"] == "scheduled"
    assert history.runs.get_setting("start_from_ms") == "123"
    readonly = History.open(path, readonly=True)
    assert [r["run_id"] for r in readonly.runs.recent_runs()] == ["old"]
