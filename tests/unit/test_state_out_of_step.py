"""state/ and runs.sqlite out of step: a state lost, or restored from before the last merged batch, is found
before a run reads on into a partial table (consume then rebuilds, as for a data loss)."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest

from cdc_pipeline.tasks.consume import state_out_of_step
from tests.unit.test_asof_support import SyntheticPipeline, c, r, u


def merge(pipe: SyntheticPipeline, events) -> str:
    """A merged batch recorded as consume and merge record it: its offset ranges, incarnation and counts."""
    run_id = pipe.merge(events, read_started="2026-12-06T10:00:00+00:00")
    offsets: dict[int, list[int]] = {}
    for event in events:
        offsets.setdefault(event.partition, []).append(event.offset)
    pipe.history.runs.update_run(run_id, offset_ranges={str(p): [min(o), max(o) + 1] for p, o in offsets.items()},
                                 incarnation=events[0].incarnation, creates=sum(e.op == "c" for e in events),
                                 updates=sum(e.op == "u" for e in events))
    return run_id


@pytest.fixture
def pipe(tmp_path):
    pipe = SyntheticPipeline(tmp_path)
    merge(pipe, [r(1, "ana", "2026-12-06 10:00:00+00"), r(2, "bea", "2026-12-06 10:00:00+00")])
    return pipe


def view(pipe: SyntheticPipeline):
    return SimpleNamespace(layout=pipe.layout, history=pipe.history)


def test_a_state_in_step_with_its_history_reads_on(pipe):
    merge(pipe, [u(1, "ana2", "2026-12-06 10:01:00+00"), c(3, "cai", "2026-12-06 10:01:00+00", partition=1)])
    assert state_out_of_step(view(pipe)) is None


def test_a_state_restored_from_before_the_last_merged_batch_is_found(pipe, tmp_path):
    backup = tmp_path / "backup"
    shutil.copytree(pipe.layout.state_dir, backup)
    second = merge(pipe, [u(1, "ana2", "2026-12-06 10:01:00+00"), c(3, "cai", "2026-12-06 10:01:00+00")])
    shutil.rmtree(pipe.layout.state_dir)
    shutil.copytree(backup, pipe.layout.state_dir)
    why = state_out_of_step(view(pipe))
    assert why is not None and f"lacks the events of run {second}" in why and "p0 [2, 4)" in why
    assert "restored from an earlier time than runs.sqlite" in why


def test_a_lost_state_is_found(pipe):
    shutil.rmtree(pipe.layout.state_dir)
    why = state_out_of_step(view(pipe))
    assert why is not None and why.startswith("state/ holds no table, but run scheduled__run-0001 merged 2 rows")


def test_a_reset_starts_a_new_lineage_whose_state_is_rightly_empty(pipe):
    shutil.rmtree(pipe.layout.state_dir)
    pipe.history.runs.set_resume_point(reason="reset to beginning", incarnation=1, epoch=1, ends={0: 0})
    assert state_out_of_step(view(pipe)) is None


def test_a_batch_whose_every_event_was_stale_wrote_no_generation_and_is_not_counted(pipe):
    run_id = merge(pipe, [u(1, "ana2", "2026-12-06 10:01:00+00")])
    state = pipe.store.live()
    pipe.history.runs.update_run(run_id, offset_ranges={"0": [9, 12]}, merge_stale=1)  # as if nothing applied
    assert state_out_of_step(view(pipe)) is None and pipe.store.live().id == state.id
