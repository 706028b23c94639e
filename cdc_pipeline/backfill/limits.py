"""Which instants and windows the change log answers exactly, and the readable refusal for the others.

Instants are compared at the millisecond, the resolution of Debezium's commit times (``source.ts_ms``): a change
committed in the same millisecond as the instant counts as committed at it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cdc_pipeline.backfill.coverage import PUBLICATION_MARGIN, Coverage, coverage, snapshot_confirmed
from cdc_pipeline.backfill.view import LogView, open_view
from cdc_pipeline.errors import AsOfError, NotCoveredYetError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# How long after the covered instant a scheduled run (every minute) has usually read and merged past it.
RUN_INTERVAL = timedelta(minutes=1)


def to_millis(moment: datetime) -> int:
    return (plain_utc(moment) - _EPOCH) // timedelta(milliseconds=1)


def plain_utc(moment: datetime) -> datetime:
    """The instant as a standard-library datetime in UTC (Airflow hands out pendulum's, whose arithmetic differs)."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime(moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second,
                    moment.microsecond, tzinfo=UTC)


def from_millis(millis: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=millis)


def show(moment: datetime | int) -> str:
    moment = from_millis(moment) if isinstance(moment, int) else plain_utc(moment)
    text = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return text.replace(".000Z", "Z")


def answerable_now(layout) -> str:
    """``answerable`` for a pipeline folder (a ``PipelineLayout``), also before its first merge."""
    if not layout.changelog_dir.is_dir():
        return f"{layout.name}: no change log yet (the pipeline's DAG has merged nothing), so nothing can be answered"
    return answerable(open_view(layout))


def answerable(view: LogView, *, margin: timedelta = PUBLICATION_MARGIN) -> str:
    """One line saying which instants as-of snapshots and backfills can answer now, and why not when none."""
    name = view.layout.name
    if view.earliest_ms is None:
        return f"{name}: nothing can be answered yet: the change log holds no event of the live state"
    covered = coverage(view.layout.history, view.epoch, margin=margin)
    if covered.covered is None:
        return f"{name}: nothing can be answered yet ({covered.reason}); from {show(view.earliest_ms)} once it can"
    start = view.earliest_ms
    if to_millis(covered.covered) < start:
        return (f"{name}: nothing can be answered yet: the change log starts at {show(start)}{_why_earliest(view)}, "
                f"and is complete only up to {show(covered.covered)}; ask again after the next runs")
    return (f"{name}: as-of and backfills answer instants from {show(start)}{_why_earliest(view)} to "
            f"{show(covered.covered)} (complete up to there; later as runs go on)")


def check_as_of(view: LogView, at: datetime, *, margin: timedelta = PUBLICATION_MARGIN) -> Coverage:
    """Raise unless the table as of ``at`` can be answered exactly; answer the coverage it was checked against."""
    name = view.layout.name
    earliest = _earliest(view, f"the table as of {show(at)}")
    if to_millis(at) < earliest:
        raise AsOfError(
            f"{name}: {show(at)} is before the earliest instant its change log answers exactly, {show(earliest)}"
            f"{_why_earliest(view)}. Ask for {show(earliest)} or later.")
    return _check_covered(view, at, f"the table as of {show(at)}", margin)


def check_window(view: LogView, start: datetime, end: datetime, *, margin: timedelta = PUBLICATION_MARGIN) -> Coverage:
    """Raise unless the changes committed in [start, end) can all be answered."""
    name = view.layout.name
    if end <= start:
        raise AsOfError(f"the window [{show(start)}, {show(end)}) is empty: 'to' must be later than 'from'")
    what = f"the changes in [{show(start)}, {show(end)})"
    earliest = _earliest(view, what)
    if to_millis(end) <= earliest:
        raise AsOfError(
            f"{name}: {what} end at or before the earliest instant its change log answers, {show(earliest)}"
            f"{_why_earliest(view)}. Ask for a window that ends after it.")
    if view.base is not None and to_millis(start) <= view.base.instant_ms:
        raise AsOfError(
            f"{name}: {what} start at or before {show(view.base.instant_ms)}, the end of {view.base.through_day}: "
            f"retention (changelog_retention_days) folded the changes until then into the change log's base, so only "
            f"windows from {show(view.base.instant_ms + 1)} on can be listed.")
    return _check_covered(view, end - timedelta(milliseconds=1), what, margin)


def _earliest(view: LogView, what: str) -> int:
    earliest = view.earliest_ms
    if earliest is None:
        raise AsOfError(f"{view.layout.name}: the change log holds no event of the live state yet, so {what} cannot be "
                        "answered; let the pipeline's DAG run until its first merge")
    return earliest


def _why_earliest(view: LogView) -> str:
    if view.base is not None and view.base.instant_ms >= view.snapshot.instant_ms:
        return (f" (retention, changelog_retention_days, folded the days until {view.base.through_day} into its base)")
    if view.snapshot.reads:
        return " (the time of the snapshot it starts from)"
    return " (its first change: this state lineage started from a date or a run, not from a snapshot)"


def _check_covered(view: LogView, last: datetime, what: str, margin: timedelta) -> Coverage:
    name = view.layout.name
    history = view.layout.history
    if view.snapshot.reads and view.base is None and not snapshot_confirmed(history, view.epoch):
        raise NotCoveredYetError(
            f"{name}: {what} cannot be answered yet: the snapshot the change log starts from is still being read (no "
            "batch has read past its last row yet). Ask again after the next runs of the pipeline's DAG.")
    covered = coverage(history, view.epoch, margin=margin)
    if covered.covered is None:
        raise NotCoveredYetError(f"{name}: {what} cannot be answered yet: {covered.reason}. Ask again after the next "
                                 "runs of the pipeline's DAG.")
    if last > covered.covered:
        again = max(last + margin, covered.read_started) + RUN_INTERVAL
        raise NotCoveredYetError(
            f"{name}: {what} cannot be answered yet: the newest batch read to the end of the topic ({covered.run_id}) "
            f"started at {show(covered.read_started)}, so the change log is complete only up to {show(covered.covered)} "
            f"({margin.total_seconds():g} s are left for Debezium to publish a commit). Ask again after "
            f"{show(again)}, once a run that starts after {show(last + margin)} has merged.")
    return covered
