"""Change log retention: days that go are folded into a base first, and as-of stays exact from the base on."""

from __future__ import annotations

import json
from datetime import date

import pytest

from cdc_pipeline.backfill import prune_changelog, prune_once_a_day, write_as_of, write_changes
from cdc_pipeline.backfill.base import read_base
from cdc_pipeline.changelog import ChangeLog
from cdc_pipeline.connector_spec import load_connector_spec
from cdc_pipeline.errors import AsOfError
from cdc_pipeline.instants import parse_instant
from cdc_pipeline.pipeline import Pipeline
from tests.stack.pipeline_driver import REPO
from tests.unit.test_asof_support import SyntheticPipeline, c, d, model_as_of, r, u

SNAPSHOT = "2026-11-20 08:00:00+00"


@pytest.fixture
def three_days(tmp_path) -> SyntheticPipeline:
    pipe = SyntheticPipeline(tmp_path)
    pipe.merge([r(1, "ana", SNAPSHOT), r(2, "bea", SNAPSHOT), r(3, "cai", SNAPSHOT, partition=1)],
               read_started="2026-11-20T08:00:05+00:00")
    pipe.merge([u(1, "ana2", "2026-11-20 09:00:00+00"), c(4, "dan", "2026-11-20 23:59:59.999+00", partition=1)],
               read_started="2026-11-20T09:30:00+00:00")
    # One merge across midnight.
    pipe.merge([d(2, "2026-11-20 23:59:59.999+00"), c(5, "eva", "2026-11-21 00:00:00+00"),
                u(3, "cai2", "2026-11-21 00:00:00.001+00", partition=1)], read_started="2026-11-21T00:01:00+00:00")
    pipe.merge([u(4, "dan2", "2026-11-21 12:00:00+00", partition=1), c(6, "fay", "2026-11-22 07:00:00+00")],
               read_started="2026-11-22T08:00:00+00:00")
    return pipe


INSTANTS = ["2026-11-20T23:59:59.999Z", "2026-11-21T00:00:00Z", "2026-11-21T11:59:59Z", "2026-11-21T12:00:00Z",
            "2026-11-22T07:30:00Z"]


def as_of(pipe, at, tmp_path) -> bytes:
    out = tmp_path / "asof.csv"
    write_as_of(pipe.layout, parse_instant(at), out)
    return out.read_bytes()


def test_pruning_folds_the_old_days_into_a_base_and_as_of_stays_exact(three_days, tmp_path):
    pipe = three_days
    before = {at: as_of(pipe, at, tmp_path) for at in INSTANTS}
    result = prune_changelog(pipe.layout, 1, today=date(2026, 11, 22))   # keeps 2026-11-21 and later
    assert result.cutoff == "2026-11-21" and result.removed_files == 3 and result.folded_events == 6
    assert ChangeLog(pipe.layout).days() == ["2026-11-21", "2026-11-22"]
    base = read_base(pipe.layout, 0)
    assert base.through_day == "2026-11-20" and base.instant_ms == int(parse_instant("2026-11-20T23:59:59.999Z").timestamp() * 1000)
    for at in INSTANTS:
        assert as_of(pipe, at, tmp_path) == before[at] == model_as_of(pipe.merged, at), at
    # The earliest instant is now the base's, and the message says why.
    with pytest.raises(AsOfError, match=r"2026-11-20T23:59:59\.999Z \(retention"):
        as_of(pipe, "2026-11-20T12:00:00Z", tmp_path)
    with pytest.raises(AsOfError, match="folded the changes until then"):
        write_changes(pipe.layout, parse_instant("2026-11-20T12:00:00Z"), parse_instant("2026-11-21T12:00:00Z"),
                      tmp_path / "w.csv")
    write_changes(pipe.layout, parse_instant("2026-11-21T00:00:00Z"), parse_instant("2026-11-22T00:00:00Z"),
                  tmp_path / "w.csv")
    assert (tmp_path / "w.csv").read_text().count("\n") == 1 + 3

    # The next day folds the next day on top of the base.
    prune_changelog(pipe.layout, 1, today=date(2026, 11, 23))
    assert ChangeLog(pipe.layout).days() == ["2026-11-22"]
    assert read_base(pipe.layout, 0).events == 9
    assert as_of(pipe, "2026-11-22T07:30:00Z", tmp_path) == before["2026-11-22T07:30:00Z"]
    assert as_of(pipe, "2026-11-22T07:30:00Z", tmp_path) == pipe.layout.destiny.read_bytes()


def test_pruning_twice_or_after_a_crash_before_the_deletes_changes_nothing(three_days, tmp_path, monkeypatch):
    pipe = three_days
    expected = as_of(pipe, "2026-11-21T12:00:00Z", tmp_path)
    # A fold that dies after its base record, before deleting the days it folded.
    monkeypatch.setattr(ChangeLog, "remove", lambda self, files: 0)
    prune_changelog(pipe.layout, 1, today=date(2026, 11, 22))
    assert "2026-11-20" in ChangeLog(pipe.layout).days()
    assert as_of(pipe, "2026-11-21T12:00:00Z", tmp_path) == expected  # the base's days are skipped
    monkeypatch.undo()
    prune_changelog(pipe.layout, 1, today=date(2026, 11, 22))
    prune_changelog(pipe.layout, 1, today=date(2026, 11, 22))
    assert ChangeLog(pipe.layout).days() == ["2026-11-21", "2026-11-22"]
    assert read_base(pipe.layout, 0).events == 6
    assert as_of(pipe, "2026-11-21T12:00:00Z", tmp_path) == expected


def test_a_first_fold_that_died_before_its_record_starts_again(three_days, tmp_path, monkeypatch):
    pipe = three_days
    expected = as_of(pipe, "2026-11-21T12:00:00Z", tmp_path)
    import cdc_pipeline.backfill.retention as retention

    def die(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(retention, "write_base", die)
    with pytest.raises(OSError):
        prune_changelog(pipe.layout, 1, today=date(2026, 11, 22))
    assert read_base(pipe.layout, 0) is None and "2026-11-20" in ChangeLog(pipe.layout).days()
    assert as_of(pipe, "2026-11-20T12:00:00Z", tmp_path) == model_as_of(pipe.merged, "2026-11-20T12:00:00Z")
    monkeypatch.undo()
    prune_changelog(pipe.layout, 1, today=date(2026, 11, 22))
    assert as_of(pipe, "2026-11-21T12:00:00Z", tmp_path) == expected


def test_a_kept_event_between_folded_ones_still_applies(tmp_path):
    """Commit times can invert by a millisecond across midnight: offset 1 (kept day) sits between folded offsets
    0 and 2. The base must not claim offset 1 as merged, or as-of would drop it."""
    pipe = SyntheticPipeline(tmp_path)
    pipe.merge([c(1, "ana", "2026-11-20 23:59:59.998+00"), c(2, "bea", "2026-11-21 00:00:00+00"),
                c(3, "cai", "2026-11-20 23:59:59.999+00")], read_started="2026-11-21T00:01:00+00:00")
    pipe.record_run("2026-11-21T00:02:00+00:00")
    prune_changelog(pipe.layout, 1, today=date(2026, 11, 22))
    at = "2026-11-21T00:00:30Z"
    assert as_of(pipe, at, tmp_path) == model_as_of(pipe.merged, at)
    assert b"bea" in as_of(pipe, at, tmp_path)


def test_older_lineages_lose_their_old_days_and_their_base(tmp_path):
    pipe = SyntheticPipeline(tmp_path, epoch=2)
    pipe.merge([c(1, "ana", "2026-11-21 10:00:00+00")], read_started="2026-11-21T10:05:00+00:00")
    log = ChangeLog(pipe.layout)
    stale = log.append(pipe.store.live() and _applied_row(), epoch=1, generation="lineage-0009/gen-000001")
    (pipe.layout.changelog_dir / "base-e0001").mkdir()
    result = prune_changelog(pipe.layout, 1, today=date(2026, 11, 22))
    assert result.removed_files == 1 and not stale[0].exists()
    assert not (pipe.layout.changelog_dir / "base-e0001").exists()
    assert log.days() == ["2026-11-21"] and read_base(pipe.layout, 2) is None


def _applied_row():
    import pyarrow as pa

    return pa.table({"operacion": ["c"], "id": ["9"], "nombre": ["x"], "email": [None],
                     "timestamp": ["2026-11-19 10:00:00+00"], "_topic": ["t"],
                     "_partition": pa.array([0], pa.int32()), "_offset": pa.array([0], pa.int64()),
                     "_lsn": pa.array([1], pa.int64()), "_incarnation": pa.array([1], pa.int32()),
                     "_txid": pa.array([None], pa.int64())})


def test_prune_once_a_day_works_once_per_utc_day_and_never_fails_the_merge(three_days, monkeypatch):
    spec = load_connector_spec(REPO / "include" / "connectors" / "clientes.json")
    pipe = Pipeline(spec, three_days.layout)
    assert spec.settings.changelog_retention_days == 30
    first = prune_once_a_day(pipe, today=date(2026, 12, 21))
    assert first.startswith("change log retention: removed 3 files of days before 2026-11-21")
    assert prune_once_a_day(pipe, today=date(2026, 12, 21)) is None
    import cdc_pipeline.backfill.retention as retention

    def broken(*args, **kwargs):
        raise OSError("permission denied")

    monkeypatch.setattr(retention, "prune_changelog", broken)
    note = prune_once_a_day(pipe, today=date(2026, 12, 22))
    assert "failed (the next run tries again): permission denied" in note
    assert pipe.history.runs.get_setting("changelog_pruned_on") == "2026-12-21"
    assert json.loads((three_days.layout.changelog_dir / "base-e0000" / "base.json").read_text())["through_day"] == "2026-11-20"


def test_folding_before_an_instant_inside_a_day_keeps_that_days_later_events(three_days, tmp_path):
    from cdc_pipeline.backfill.retention import fold_before

    pipe = three_days
    before = {at: as_of(pipe, at, tmp_path) for at in INSTANTS}
    record, folded = fold_before(pipe.layout, parse_instant("2026-11-21T06:00:00Z"))
    assert folded == 8 and record.through_day == "2026-11-20"
    assert record.instant_ms == int(parse_instant("2026-11-21T05:59:59.999Z").timestamp() * 1000)
    assert ChangeLog(pipe.layout).days() == ["2026-11-20", "2026-11-21", "2026-11-22"]  # nothing deleted
    for at in INSTANTS[2:]:
        assert as_of(pipe, at, tmp_path) == before[at], at
    assert as_of(pipe, "2026-11-21T05:59:59.999Z", tmp_path) == model_as_of(pipe.merged, "2026-11-21T05:59:59.999Z")
    with pytest.raises(AsOfError, match=r"2026-11-21T05:59:59\.999Z"):
        as_of(pipe, "2026-11-21T00:00:00Z", tmp_path)
    out = tmp_path / "w.csv"
    write_changes(pipe.layout, parse_instant("2026-11-21T06:00:00Z"), parse_instant("2026-11-22T07:30:00Z"), out)
    assert [line.split(",")[:2] for line in out.read_text().splitlines()[1:]] == [["u", "4"], ["c", "6"]]
    # A later fold goes on from there; the day pruning then deletes the days wholly folded.
    assert fold_before(pipe.layout, parse_instant("2026-11-21T06:00:00Z")) == (record, 0)
    result = prune_changelog(pipe.layout, 1, today=date(2026, 11, 22))
    assert (result.folded_events, result.removed_files) == (0, 3)
    assert ChangeLog(pipe.layout).days() == ["2026-11-21", "2026-11-22"]
    result = prune_changelog(pipe.layout, 1, today=date(2026, 11, 23))
    assert result.folded_events == 1 and ChangeLog(pipe.layout).days() == ["2026-11-22"]
    assert as_of(pipe, "2026-11-22T07:30:00Z", tmp_path) == before["2026-11-22T07:30:00Z"]


def test_nothing_is_folded_or_deleted_before_the_snapshot_instant(tmp_path):
    pipe = SyntheticPipeline(tmp_path)
    pipe.merge([c(9, "early", "2026-11-20 07:59:00+00"), r(1, "ana", "2026-11-21 08:00:00+00")],
               read_started="2026-11-21T08:00:05+00:00")
    pipe.record_run("2026-11-21T08:01:05+00:00")
    result = prune_changelog(pipe.layout, 1, today=date(2026, 11, 22))
    assert result.removed_files == 0 and result.base is None
    assert ChangeLog(pipe.layout).days() == ["2026-11-20", "2026-11-21"]
