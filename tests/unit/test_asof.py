"""As-of snapshots and change windows from a synthetic change log, checked against a model of the table."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cdc_pipeline.backfill import write_as_of, write_changes
from cdc_pipeline.backfill.coverage import coverage
from cdc_pipeline.pgtext.copy_csv import format_row
from cdc_pipeline.errors import AsOfError, NotCoveredYetError
from cdc_pipeline.instants import parse_instant
from tests.unit.test_asof_support import HEADER, SyntheticPipeline, c, d, model_as_of, model_changes, r, t, u

SNAPSHOT = "2026-11-24 10:00:00.1+00"   # Debezium gives every read of a table the instant its scan started
SNAPSHOT_ISO = "2026-11-24T10:00:00.100Z"


@pytest.fixture
def pipeline(tmp_path) -> SyntheticPipeline:
    pipe = SyntheticPipeline(tmp_path)
    pipe.merge([r(1, "ana", SNAPSHOT), r(2, "bea", SNAPSHOT, partition=1), r(3, "cai", SNAPSHOT)],
               read_started="2026-11-24T10:00:05+00:00")
    pipe.merge([c(4, "dan", "2026-11-24 10:01:00+00", partition=1), u(1, "ana2", "2026-11-24 10:01:00.5+00"),
                d(2, "2026-11-24 10:02:00+00", partition=1)], read_started="2026-11-24T10:02:30+00:00")
    pipe.merge([t("2026-11-24 10:03:00+00"), c(5, "eva", "2026-11-24 10:03:00.001+00", partition=1),
                c(1, "ana3", "2026-11-24 10:04:00+00"), u(5, "eva,\"2\"", "2026-11-24 10:04:10+00", partition=1)],
               read_started="2026-11-24T10:05:00+00:00")
    return pipe


@pytest.mark.parametrize("at", [SNAPSHOT_ISO, "2026-11-24T10:00:59.999Z", "2026-11-24T10:01:00Z",
                                "2026-11-24T10:01:00.499Z", "2026-11-24T10:01:00.500Z", "2026-11-24T10:02:00Z",
                                "2026-11-24T10:02:59.999Z", "2026-11-24T10:03:00Z", "2026-11-24T10:03:00.001Z",
                                "2026-11-24T10:04:30Z"])
def test_as_of_equals_the_table_model_at_every_instant(pipeline, tmp_path, at):
    out = tmp_path / "out" / "asof.csv"
    result = write_as_of(pipeline.layout, parse_instant(at), out)
    assert out.read_bytes().decode() == model_as_of(pipeline.merged, at, SNAPSHOT).decode()
    assert result.written and result.rows == out.read_bytes().count(b"\n") - 1


def test_as_of_the_newest_instant_is_byte_identical_to_destiny(pipeline, tmp_path):
    out = tmp_path / "latest.csv"
    write_as_of(pipeline.layout, parse_instant("2026-11-24T10:04:30Z"), out)
    assert out.read_bytes() == pipeline.layout.destiny.read_bytes()


def test_as_of_touches_nothing_of_the_live_pipeline(pipeline, tmp_path):
    folder = pipeline.layout.folder
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}
    write_as_of(pipeline.layout, parse_instant("2026-11-24T10:02:00Z"), tmp_path / "x.csv")
    after = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}
    assert after == before  # the scratch folder is gone, nothing else was written
    assert not list(folder.glob(".asof-*"))


def test_writing_the_same_instant_again_leaves_the_file_as_it_was(pipeline, tmp_path):
    out = tmp_path / "same.csv"
    first = write_as_of(pipeline.layout, parse_instant("2026-11-24T10:02:00Z"), out)
    stat = out.stat()
    again = write_as_of(pipeline.layout, parse_instant("2026-11-24T10:02:00Z"), out)
    assert first.written and not again.written
    assert (out.stat().st_ino, out.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)


def test_an_instant_before_the_snapshot_fails_naming_the_earliest_instant(pipeline, tmp_path):
    with pytest.raises(AsOfError, match=r"earliest instant .* 2026-11-24T10:00:00\.100Z") as caught:
        write_as_of(pipeline.layout, parse_instant("2026-11-24T10:00:00.099Z"), tmp_path / "early.csv")
    assert not isinstance(caught.value, NotCoveredYetError)
    assert not (tmp_path / "early.csv").exists()


def test_an_instant_not_read_yet_is_refused_with_when_to_ask_again(pipeline, tmp_path):
    # The newest complete batch started reading at 10:05:00: 30 s are left for Debezium's publication delay.
    assert coverage(pipeline.layout.history, 0).covered == parse_instant("2026-11-24T10:04:30Z")
    with pytest.raises(NotCoveredYetError, match=r"complete only up to 2026-11-24T10:04:30Z.*Ask again after "
                                                  r"2026-11-24T10:06:30\.001Z"):
        write_as_of(pipeline.layout, parse_instant("2026-11-24T10:05:00.001Z"), tmp_path / "late.csv")


def test_a_batch_cut_by_its_event_limit_or_read_during_an_outage_does_not_count(pipeline):
    pipeline.record_run("2026-11-24T10:09:00+00:00", complete=False)
    assert coverage(pipeline.layout.history, 0).covered == parse_instant("2026-11-24T10:04:30Z")
    pipeline.record_run("2026-11-24T10:10:00+00:00")
    pipeline.outage("connect", "2026-11-24T10:11:00+00:00", "2026-11-24T10:20:00+00:00")
    # Connect was first seen down at 10:11 and may have been down since 10:09: the 10:10 batch may miss changes.
    assert coverage(pipeline.layout.history, 0).covered == parse_instant("2026-11-24T10:04:30Z")
    pipeline.record_run("2026-11-24T10:20:20+00:00")  # within the margin after it came back
    assert coverage(pipeline.layout.history, 0).covered == parse_instant("2026-11-24T10:04:30Z")
    pipeline.record_run("2026-11-24T10:21:00+00:00")
    assert coverage(pipeline.layout.history, 0).covered == parse_instant("2026-11-24T10:20:30Z")
    assert coverage(pipeline.layout.history, 0, margin=timedelta(seconds=5)).covered == parse_instant("2026-11-24T10:20:55Z")


def test_a_snapshot_still_being_read_is_not_answered(tmp_path):
    pipe = SyntheticPipeline(tmp_path)
    pipe.merge([r(1, "ana", SNAPSHOT)], read_started="2026-11-24T10:00:05+00:00")
    pipe.merge([r(2, "bea", SNAPSHOT)], read_started="2026-11-24T10:01:05+00:00")
    with pytest.raises(NotCoveredYetError, match="snapshot .* is still being read"):
        write_as_of(pipe.layout, parse_instant("2026-11-24T10:00:30Z"), tmp_path / "x.csv")
    pipe.record_run("2026-11-24T10:02:05+00:00")  # a complete batch that found no more snapshot rows
    write_as_of(pipe.layout, parse_instant("2026-11-24T10:00:30Z"), tmp_path / "x.csv")
    assert (tmp_path / "x.csv").read_bytes() == model_as_of(pipe.merged, "2026-11-24T10:00:30Z")


def test_a_lineage_without_a_snapshot_starts_at_its_first_change(tmp_path):
    pipe = SyntheticPipeline(tmp_path)
    pipe.merge([c(7, "gus", "2026-11-24 11:00:00+00"), u(7, "gus2", "2026-11-24 11:00:10+00")],
               read_started="2026-11-24T11:05:00+00:00")
    with pytest.raises(AsOfError, match=r"2026-11-24T11:00:00Z \(its first change"):
        write_as_of(pipe.layout, parse_instant("2026-11-24T10:59:59Z"), tmp_path / "x.csv")
    write_as_of(pipe.layout, parse_instant("2026-11-24T11:00:05Z"), tmp_path / "x.csv")
    assert (tmp_path / "x.csv").read_bytes() == model_as_of(pipe.merged, "2026-11-24T11:00:05Z")


def test_small_chunks_give_the_same_bytes(pipeline, tmp_path):
    for chunk in (1, 2, 3, 1000):
        out = tmp_path / f"chunk{chunk}.csv"
        write_as_of(pipeline.layout, parse_instant("2026-11-24T10:04:30Z"), out, chunk_events=chunk)
        assert out.read_bytes() == pipeline.layout.destiny.read_bytes(), chunk


def expected_changes(events) -> str:
    lines = [format_row(list(HEADER))]
    lines += [format_row([e.buffer_row()[h] for h in HEADER]) for e in events]
    return "".join(lines)


@pytest.mark.parametrize(("start", "end"), [
    ("2026-11-24T10:01:00Z", "2026-11-24T10:03:00.001Z"),   # a TRUNCATE at 10:03:00.000 is in, 10:03:00.001 is not
    ("2026-11-24T10:01:00.001Z", "2026-11-24T10:01:00.500Z"),  # neither boundary event
    ("2026-11-24T09:00:00Z", "2026-11-24T10:00:00.101Z"),   # the snapshot's reads, at the snapshot instant
    ("2026-11-24T10:04:00Z", "2026-11-24T10:04:30.001Z"),
])
def test_changes_of_a_window_are_the_events_committed_in_it_in_position_order(pipeline, tmp_path, start, end):
    out = tmp_path / "changes.csv"
    result = write_changes(pipeline.layout, parse_instant(start), parse_instant(end), out)
    chosen = model_changes(pipeline.merged, start, end, SNAPSHOT)
    assert out.read_text() == expected_changes(chosen)
    assert result.events == len(chosen)


def test_changes_refuse_windows_the_log_cannot_answer(pipeline, tmp_path):
    out = tmp_path / "changes.csv"
    with pytest.raises(AsOfError, match=r"end at or before the earliest instant .* 2026-11-24T10:00:00\.100Z"):
        write_changes(pipeline.layout, parse_instant("2026-11-24T09:00:00Z"), parse_instant(SNAPSHOT_ISO), out)
    with pytest.raises(NotCoveredYetError, match="Ask again after"):
        write_changes(pipeline.layout, parse_instant("2026-11-24T10:04:00Z"), parse_instant("2026-11-24T10:04:30.002Z"), out)
    with pytest.raises(AsOfError, match="empty"):
        write_changes(pipeline.layout, parse_instant("2026-11-24T10:04:00Z"), parse_instant("2026-11-24T10:04:00Z"), out)
    assert not out.exists()


def test_a_state_without_any_merge_says_to_let_the_dag_run(tmp_path):
    from cdc_pipeline.layout import PipelineLayout

    with pytest.raises(AsOfError, match="no state yet"):
        write_as_of(PipelineLayout(tmp_path / "nothing"), parse_instant("2026-11-24"), tmp_path / "x.csv")
