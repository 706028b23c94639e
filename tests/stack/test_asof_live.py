"""As-of snapshots and change windows on the real chain: PostgreSQL → Debezium → broker → the pipeline's steps.

A workload in two phases separated by an instant T read from PostgreSQL's own clock (no commit within 1 ms of
it); COPY is taken at T, between the phases. The pipeline drains both phases; then the table as of T, built
from the change log alone, must be byte-identical to that COPY, and the changes of [T, T_end) must be exactly
phase 2's statements, in order, turning the COPY at T into the COPY at T_end.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from cdc_pipeline.backfill import PUBLICATION_MARGIN, write_as_of, write_changes
from cdc_pipeline.backfill.coverage import coverage
from cdc_pipeline.backfill.limits import show
from cdc_pipeline.backfill.retention import fold_before
from cdc_pipeline.backfill.view import open_view
from cdc_pipeline.pgtext.copy_csv import format_row, read_copy_csv
from cdc_pipeline.errors import AsOfError, NotCoveredYetError
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.waiting import wait_until
from tests.stack.peek import read_topic
from tests.stack.pipeline_driver import PipelineDriver, write_connector
from tests.stack.workload import big_text, create_types_table, insert, update

pytestmark = pytest.mark.stack

TABLE = "public.asof_types"
ORDER = "k1, k2"


@dataclass(frozen=True)
class TwoPhases:
    driver: PipelineDriver
    t: datetime
    t_end: datetime
    copy_at_t: bytes
    copy_at_t_end: bytes
    phase1: list[tuple[str, str, str]]     # (op, k1, k2) of each change streamed before T, in commit order
    phase2: list[tuple[str, str, str]]     # (op, k1, k2) of each change phase 2 committed, in commit order


def mark_instant(driver: PipelineDriver) -> datetime:
    """An instant no commit falls within 1 ms of: PostgreSQL's clock (the one commit times come from), read
    after a 2 ms gap; the caller commits nothing until another 2 ms have passed."""
    def now() -> datetime:
        return driver.sql("SELECT clock_timestamp()")[0][0]

    def gap_after(moment: datetime) -> None:
        wait_until(lambda: now() >= moment + timedelta(milliseconds=2), what="2 ms of PostgreSQL's clock",
                   timeout=5, interval=0.001)

    gap_after(now())
    moment = now().astimezone(UTC)
    gap_after(moment)
    return moment


@pytest.fixture(scope="module")
def two_phases(stack_services, tmp_path_factory) -> TwoPhases:
    folder = tmp_path_factory.mktemp("connectors")
    driver = PipelineDriver(stack_services.settings, write_connector(folder, "asof_types", TABLE, "asof"),
                            tmp_path_factory.mktemp("data"))
    rng = random.Random(20261124)
    create_types_table(driver.sql, TABLE)
    for k1 in range(1, 41):
        insert(driver, rng, k1, "a", table=TABLE, c_text=big_text(rng) if k1 % 10 == 0 else None)
    driver.register()                       # the snapshot reads these
    phase1: list[tuple[str, str, str]] = []
    for k1 in range(41, 61):
        insert(driver, rng, k1, "b,c", table=TABLE)
        phase1.append(("c", str(k1), "b,c"))
    for k1 in range(1, 30, 3):
        update(driver, rng, k1, "a", ["c_int", "c_text", "c_jsonb"], table=TABLE)
        phase1.append(("u", str(k1), "a"))
    for k1 in range(2, 20, 4):
        driver.sql(f"DELETE FROM {TABLE} WHERE k1 = %s AND k2 = 'a'", [k1])
        phase1.append(("d", str(k1), "a"))
    assert driver.drain_until_equal(ORDER) == driver.destiny()

    t = mark_instant(driver)
    copy_at_t = driver.copy_csv(ORDER)
    phase2: list[tuple[str, str, str]] = []
    for k1 in (20, 30, 40):                 # unchanged-TOAST updates: the change log holds the resolved value
        update(driver, rng, k1, "a", ["c_int"], table=TABLE)
        phase2.append(("u", str(k1), "a"))
    for k1 in range(61, 66):
        insert(driver, rng, k1, "ñ", table=TABLE)
        phase2.append(("c", str(k1), "ñ"))
    driver.sql(f"DELETE FROM {TABLE} WHERE k1 = 41 AND k2 = 'b,c'")
    phase2.append(("d", "41", "b,c"))
    insert(driver, rng, 41, "b,c", table=TABLE)
    phase2.append(("c", "41", "b,c"))
    driver.sql(f"BEGIN; UPDATE {TABLE} SET c_int = 1 WHERE k1 = 1; UPDATE {TABLE} SET c_int = 2 WHERE k1 = 1; COMMIT;")
    phase2 += [("u", "1", "a"), ("u", "1", "a")]
    t_end = mark_instant(driver)
    copy_at_t_end = driver.copy_csv(ORDER)
    assert driver.drain_until_equal(ORDER) == driver.destiny() == copy_at_t_end

    # A batch must start reading after T_end + the publication margin before T_end counts as covered.
    epoch = open_view(driver.layout).epoch

    def covered() -> bool:
        driver.run_once()
        answer = coverage(driver.layout.history, epoch).covered
        return answer is not None and answer >= t_end

    wait_until(covered, what="a complete batch read after T_end + 30 s", timeout=180, interval=3)
    return TwoPhases(driver, t, t_end, copy_at_t, copy_at_t_end, phase1, phase2)


def test_as_of_t_is_byte_identical_to_the_copy_taken_at_t(two_phases, tmp_path):
    layout = two_phases.driver.layout
    out = tmp_path / "asof-t.csv"
    result = write_as_of(layout, two_phases.t, out)
    assert out.read_bytes().decode() == two_phases.copy_at_t.decode()
    assert result.rows == len(read_copy_csv(out))
    write_as_of(layout, two_phases.t_end, tmp_path / "asof-end.csv")
    assert (tmp_path / "asof-end.csv").read_bytes() == two_phases.copy_at_t_end == two_phases.driver.destiny()


def test_the_changes_of_a_window_are_the_events_committed_in_it(two_phases, tmp_path):
    out = tmp_path / "changes.csv"
    result = write_changes(two_phases.driver.layout, two_phases.t, two_phases.t_end, out)
    changes = read_copy_csv(out)
    assert [(op, k1, k2) for op, k1, k2 in zip(changes["operacion"], changes["k1"], changes["k2"])] == two_phases.phase2
    assert result.events == len(two_phases.phase2)
    # Applied to the table at T, they give the table at T_end (every value, TOAST ones resolved).
    (tmp_path / "at_t.csv").write_bytes(two_phases.copy_at_t)
    (tmp_path / "at_end.csv").write_bytes(two_phases.copy_at_t_end)
    assert fold(read_copy_csv(tmp_path / "at_t.csv"), changes) == fold(read_copy_csv(tmp_path / "at_end.csv"), None)
    stamps = [datetime.fromisoformat(s) for s in changes["timestamp"]]
    assert all(two_phases.t < s < two_phases.t_end for s in stamps)


def fold(table, changes) -> list[str]:
    """The table's rows (COPY lines, sorted) after applying the change events, by hand."""
    columns = list(table.columns)
    rows = {(r["k1"], r["k2"]): [r[c] for c in columns] for r in table.to_dict("records")}
    for change in [] if changes is None else changes.to_dict("records"):
        key = (change["k1"], change["k2"])
        if change["operacion"] == "d":
            rows.pop(key, None)
        elif change["operacion"] == "t":
            rows.clear()
        else:
            rows[key] = [change[c] for c in columns]
    return sorted(format_row(values) for values in rows.values())


def test_an_instant_before_the_snapshot_fails_naming_it_and_one_not_read_yet_is_refused(two_phases, tmp_path):
    layout = two_phases.driver.layout
    earliest = open_view(layout).earliest_ms
    before = datetime.fromtimestamp((earliest - 1) / 1000, UTC)
    with pytest.raises(AsOfError, match=f"earliest instant its change log answers exactly, {show(earliest)}"):
        write_as_of(layout, before, tmp_path / "early.csv")
    write_as_of(layout, datetime.fromtimestamp(earliest / 1000, UTC), tmp_path / "first.csv")  # the earliest works
    with pytest.raises(NotCoveredYetError, match="Ask again after"):
        write_as_of(layout, datetime.now(UTC) + timedelta(seconds=5), tmp_path / "late.csv")
    assert not (tmp_path / "early.csv").exists() and not (tmp_path / "late.csv").exists()


def test_folding_into_a_base_keeps_as_of_exact(two_phases, tmp_path):
    """Retention's fold, at T instead of midnight (the real events all fall on today). On a copy of the pipeline
    folder, so the module's other tests keep the whole change log, in any order."""
    layout = PipelineLayout(tmp_path / two_phases.driver.layout.name)
    shutil.copytree(two_phases.driver.layout.folder, layout.folder)
    record, folded = fold_before(layout, two_phases.t + timedelta(milliseconds=1))
    assert folded > 0 and record.instant_ms == int(two_phases.t.timestamp() * 1000)
    write_as_of(layout, two_phases.t, tmp_path / "t.csv")              # the base alone
    write_as_of(layout, two_phases.t_end, tmp_path / "end.csv")        # the base and the events after it
    assert (tmp_path / "t.csv").read_bytes() == two_phases.copy_at_t
    assert (tmp_path / "end.csv").read_bytes() == two_phases.copy_at_t_end
    with pytest.raises(AsOfError, match=f"{show(record.instant_ms)} \\(retention"):
        write_as_of(layout, two_phases.t - timedelta(seconds=1), tmp_path / "gone.csv")
    write_changes(layout, two_phases.t + timedelta(milliseconds=1), two_phases.t_end, tmp_path / "c.csv")
    assert len(read_copy_csv(tmp_path / "c.csv")) == len(two_phases.phase2)
    # The merge task's daily pruning ran once, found nothing older than 30 days, and said so.
    history = two_phases.driver.history.runs
    said = [json.loads(t["summary"]).get("changelog_retention") for run in history.recent_runs(1000)
            for t in history.tries(run["run_id"]) if t["task_id"] == "merge_batch" and t["summary"]]
    cutoff = date.fromisoformat(history.get_setting("changelog_pruned_on")) - timedelta(days=30)
    assert [s for s in said if s] == [f"change log retention: nothing before {cutoff.isoformat()}"]


def test_debezium_publication_delay_is_measured_and_within_the_coverage_margin(two_phases):
    """Figures for docs/backfill.md (the coverage margin): commit time (source.ts_ms) to the record's Kafka
    timestamp, for the streamed changes of this module's workload, printed. Asserted: the topic holds each change
    the workload streamed once, in commit order, those of [T, T_end) committed inside it, and every one was
    published within PUBLICATION_MARGIN of its commit (what the covered instant relies on)."""
    driver = two_phases.driver
    streamed = []  # (lsn, commit ms, op, k1, k2, delay ms)
    for record in read_topic(driver.settings.kafka_bootstrap, driver.spec.topic, group="test.delay"):
        if record.value is None:
            continue
        payload = json.loads(record.value)
        payload = payload.get("payload", payload)
        if payload.get("op") in ("c", "u", "d"):
            row = payload["before" if payload["op"] == "d" else "after"]
            source = payload["source"]
            streamed.append((source["lsn"], source["ts_ms"], payload["op"], str(row["k1"]), row["k2"],
                             record.timestamp - source["ts_ms"]))
    streamed.sort()
    assert [(op, k1, k2) for _, _, op, k1, k2, _ in streamed] == two_phases.phase1 + two_phases.phase2
    t_ms, t_end_ms = two_phases.t.timestamp() * 1000, two_phases.t_end.timestamp() * 1000
    assert [(op, k1, k2) for _, ts, op, k1, k2, _ in streamed if t_ms < ts < t_end_ms] == two_phases.phase2
    delays = sorted(delay for *_, delay in streamed)
    assert delays[0] >= 0, "a record published before its commit: the clocks disagree"
    figures = {"changes": len(delays), "p50_ms": delays[len(delays) // 2], "p99_ms": delays[int(len(delays) * 0.99)],
               "max_ms": delays[-1]}
    print(f"\nDebezium publication delay (commit -> Kafka record timestamp): {json.dumps(figures)}")
    assert delays[-1] < PUBLICATION_MARGIN.total_seconds() * 1000, figures
