from cdc_pipeline.run_history import RunHistory, RunRef


def test_recorded_range_is_what_a_retry_rereads(tmp_path):
    history = RunHistory(tmp_path / "runs.sqlite")
    run = RunRef("manual__1", 1, "2026-11-24T00:00:00+00:00", "2026-11-24T00:01:00+00:00")
    history.ensure_run(run)
    assert history.recorded_ranges(run.run_id) is None
    history.update_run(run.run_id, topic="t", offset_ranges={"0": [5, 9], "1": [0, 0]}, status="buffered")
    assert history.recorded_ranges(run.run_id) == {0: (5, 9), 1: (0, 0)}


def test_last_committed_ends_ignore_runs_that_did_not_commit(tmp_path):
    history = RunHistory(tmp_path / "runs.sqlite")
    for run_id, ranges, committed in (("a", {"0": [0, 4]}, 1), ("b", {"0": [4, 9]}, 0)):
        history.ensure_run(RunRef(run_id))
        history.update_run(run_id, topic="t", offset_ranges=ranges, offsets_committed=committed)
    assert history.last_committed_ends("t") == {0: 4}
    assert history.last_committed_ends("other") == {}


def test_each_try_is_a_row(tmp_path):
    history = RunHistory(tmp_path / "runs.sqlite")
    for attempt in (1, 2):
        run = RunRef("r", attempt)
        history.ensure_run(run)
        history.start_try(run, "consume_batch")
        history.end_try(run, "consume_batch", status="failed" if attempt == 1 else "success", duration=0.5, error="x" if attempt == 1 else None)
    tries = history.tries("r")
    assert [(t["try_number"], t["status"]) for t in tries] == [(1, "failed"), (2, "success")]
    assert len(history.recent_runs()) == 1


def test_a_failed_task_stays_visible_until_that_task_succeeds(tmp_path):
    from cdc_pipeline.steps import tracked

    history = RunHistory(tmp_path / "runs.sqlite")
    run = RunRef("r", 1)
    try:
        with tracked(history, run, "register_connector"):
            raise RuntimeError("PostgreSQL unreachable")
    except RuntimeError:
        pass
    with tracked(history, run, "consume_batch"):
        pass
    assert history.get_run("r")["error"] == "register_connector: PostgreSQL unreachable"
    with tracked(history, RunRef("r", 2), "register_connector"):
        pass
    assert history.get_run("r")["error"] is None
    assert history.get_run("r")["register_seconds"] is not None


def test_finish_run_fails_a_run_whose_task_failed_outside_the_history(tmp_path):
    import pytest

    from cdc_pipeline.errors import RunFailedError
    from cdc_pipeline.steps import PipelinePaths, finish_run

    paths = PipelinePaths(tmp_path)
    assert finish_run(paths, RunRef("ok"))["status"] == "started"
    with pytest.raises(RunFailedError, match="register_connector failed"):
        finish_run(paths, RunRef("bad"), failed_tasks=["register_connector"])
    assert RunHistory(paths.history).get_run("bad")["status"] == "failed"
