"""Kafka deleted events a pipeline had not read: the next run says so and recovers by itself.

Apache Kafka keeps its log across restarts; what it can still take away is what retention (``retention.ms``,
``retention.bytes``) or an administrator (``DeleteRecords``) deletes. A burst of changes is published and not
yet read when the records are deleted: those events are gone. The run that notices records what was lost,
starts a rebuild from a new snapshot, and destiny.csv keeps its last good content until the rebuilt state
replaces it in one step, identical to the table. With on_data_loss=fail the run fails instead, naming the
command that recovers. Several pipelines losing events at once all recover, rebuilding at the same moment on the
one Kafka Connect worker.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from cdc_pipeline.commands import cli
from cdc_pipeline.errors import DataLossError
from cdc_pipeline.kafka.offsets import committed_offsets
from cdc_pipeline.kafka.topic import topic_partitions, watermarks
from cdc_pipeline.waiting import wait_until
from tests.stack.pipeline_driver import REPO, PipelineDriver, drained_pipeline, write_connector

pytestmark = pytest.mark.stack

V1_SCHEMA = REPO / "tests" / "fixtures" / "runs_schema_v1.sql"


def _driver(stack, tmp_path, name, **settings) -> PipelineDriver:
    return drained_pipeline(stack.settings, tmp_path, name, columns="id int PRIMARY KEY, v text, n numeric",
                            rows="g, 'v' || g, g * 1.5", count=40, **settings)


def _unread_burst(driver: PipelineDriver, table: str) -> None:
    """Changes the broker acknowledges but the pipeline does not read before they are deleted."""
    before = driver.published_count()
    driver.sql(f"UPDATE public.{table} SET v = 'burst ' || id WHERE id % 3 = 0")
    driver.sql(f"DELETE FROM public.{table} WHERE id % 7 = 0")
    driver.sql(f"INSERT INTO public.{table} SELECT g, 'new ' || g, g FROM generate_series(100, 120) g")
    driver.wait_for_records(before + 14 + 5 + 21)


def _rebuild_goes_live(driver: PipelineDriver, timeout: float = 180) -> None:
    def rebuilt() -> bool:
        driver.register()  # confirms the snapshot from the connector's committed offsets
        driver.run_once()
        return driver.history.incidents.active_recovery() is None

    wait_until(rebuilt, what=f"the rebuild of {driver.spec.name} to go live", timeout=timeout, interval=1.0)


def test_records_deleted_past_the_resume_point_are_detected_and_the_table_is_rebuilt_atomically(
        stack_services, tmp_path, capsys):
    driver = _driver(stack_services, tmp_path, "loss_items")
    _unread_burst(driver, "loss_items")
    resume = driver.history.runs.resume_point().ends
    starts = driver.delete_records()
    assert any(starts[p] > resume.get(p, 0) for p in starts)
    driver.sql("UPDATE public.loss_items SET v = 'after the deletion' WHERE id IN (1, 2)")
    driver.sql("DELETE FROM public.loss_items WHERE id = 4")
    last_good = driver.destiny()

    driver.register()
    consumed, merged = driver.run_once()
    assert "Rebuilding from a new snapshot" in consumed["recovery"]
    assert consumed["lost"] and all(item["incarnation"] == 1 for item in consumed["lost"])
    recovery = driver.history.incidents.active_recovery()
    assert recovery.reason == "data_loss" and recovery.step == "resumed"
    assert driver.destiny() == last_good  # the last good content stays until the rebuild is complete

    expected = driver.copy_csv("id")
    _rebuild_goes_live(driver)
    assert driver.destiny().decode() == expected.decode()
    (done,) = [r for r in driver.history.incidents.recoveries() if r["step"] == "promoted"]
    assert done["reason"] == "data_loss" and json.loads(done["lost"])
    runs = driver.history.runs.recent_runs(50)
    assert any((r["recovery"] or "").startswith("rebuild") and "complete" in r["recovery"] for r in runs)
    assert cli.main(["--data-dir", str(driver.layout.folder.parent), "--connectors-dir", str(driver.spec.path.parent),
                     "history", "--connector", "loss_items"]) == 0
    assert "rebuild" in capsys.readouterr().out

    # It streams on: later changes arrive as usual.
    driver.sql("INSERT INTO public.loss_items VALUES (500, 'later', 0)")
    assert driver.drain_until_equal("id") == driver.destiny()


def test_retention_that_deleted_unread_segments_is_detected_and_healed(stack_services, tmp_path):
    """retention.ms with small segments: the broker's own retention deletes the burst's segment (the local broker
    checks every 30 s); the next run finds its resume point below the log start and rebuilds."""
    driver = _driver(stack_services, tmp_path, "retained_items")
    resume = driver.history.runs.resume_point().ends
    driver.alter_topic({"retention.ms": "1000", "segment.ms": "1000"})
    _unread_burst(driver, "retained_items")

    def deleted_past_resume() -> bool:
        # Each write after segment.ms rolls a new segment, so the older ones become eligible for deletion.
        driver.sql("UPDATE public.retained_items SET v = v || '.' WHERE id = 1")
        with driver.kafka("test.peek") as kafka:
            partitions = topic_partitions(kafka, driver.spec.topic) or []
            return any(watermarks(kafka, driver.spec.topic, p)[0] > resume.get(p, 0) for p in partitions)

    wait_until(deleted_past_resume, what="retention to delete the unread segments", timeout=150, interval=3)
    consumed, _ = driver.run_once()
    assert "Rebuilding from a new snapshot" in consumed["recovery"], consumed
    driver.alter_topic({"retention.ms": None, "segment.ms": None})  # keep what the rebuild reads
    expected = driver.converge("id")
    assert driver.destiny().decode() == expected.decode()


def test_several_pipelines_losing_events_at_once_all_rebuild_at_the_same_moment(stack_services, tmp_path):
    """Three pipelines find their events deleted and start their rebuilds in the same instant: each stops its
    connector, deletes its source offsets (KIP-875) and resumes it on the one Kafka Connect worker at once, which
    the standalone worker could deadlock on. Every REST call answers and every table ends identical."""
    drivers = [_driver(stack_services, tmp_path, f"many_loss_{i}") for i in range(3)]
    for driver in drivers:
        _unread_burst(driver, driver.spec.qualified_table.split(".")[1])
        driver.delete_records()
    barrier = threading.Barrier(len(drivers))
    outcomes: dict[str, object] = {}

    def rebuild_now(driver: PipelineDriver) -> None:
        try:
            barrier.wait(30)
            outcomes[driver.spec.name] = driver.run_once()[0]
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcomes[driver.spec.name] = exc

    threads = [threading.Thread(target=rebuild_now, args=(d,)) for d in drivers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert not any(t.is_alive() for t in threads), "a rebuild hung: Kafka Connect stopped answering"
    for driver in drivers:
        consumed = outcomes[driver.spec.name]
        assert isinstance(consumed, dict) and "Rebuilding from a new snapshot" in consumed["recovery"], consumed
    for driver in drivers:
        expected = driver.converge("id")
        assert driver.destiny().decode() == expected.decode()


def test_a_new_pipeline_on_a_topic_that_lost_its_first_offsets_reports_the_loss(stack_services, tmp_path):
    """A pipeline set up on a topic whose log start is above 0 (retention took the snapshot) does not start from
    the later point silently: it says what is missing and takes a new snapshot."""
    driver = _driver(stack_services, tmp_path, "late_items")
    driver.delete_records()
    driver.sql("INSERT INTO public.late_items VALUES (700, 'after', 0)")
    fresh = PipelineDriver(driver.settings, driver.spec.path, tmp_path / "fresh", group="test.late_items.fresh")
    fresh.register()
    consumed, _ = fresh.run_once()
    assert "no longer starts at offset 0" in consumed["recovery"] and consumed["lost"], consumed
    expected = fresh.converge("id")
    assert fresh.destiny().decode() == expected.decode()


def test_reset_to_the_beginning_or_to_a_date_before_deleted_records_reports_the_loss(stack_services, tmp_path,
                                                                                     capsys):
    """A reset must not start from a later point than asked without saying so: records deleted before the log
    start may include the snapshot, or changes after the date."""
    driver = _driver(stack_services, tmp_path, "reset_gone")
    a_while_ago = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    driver.delete_records()
    driver.sql("INSERT INTO public.reset_gone VALUES (900, 'after the deletion', 0)")
    driver.wait_for_records(1)
    point = driver.history.runs.resume_point()
    s = driver.settings
    for target in (["--to-beginning"], ["--to-date", a_while_ago]):
        assert cli.main(["--data-dir", str(driver.layout.folder.parent), "--connectors-dir", str(driver.spec.path.parent),
                         "--bootstrap-servers", s.kafka_bootstrap, "--group-prefix", "test", "--connect-url",
                         s.connect_url, "reset", "--connector", "reset_gone", *target, "--yes"]) == 1, target
        error = capsys.readouterr().err
        assert "no longer" in error and "resnapshot --connector reset_gone" in error, error
    assert driver.history.runs.resume_point().seq == point.seq  # nothing moved
    assert driver.layout.destiny.exists()
    # A new pipeline told to start from that date says the same instead of starting at the log start.
    fresh = PipelineDriver(driver.settings, driver.spec.path, tmp_path / "fresh", group="test.reset_gone.fresh")
    fresh.register()
    consumed = fresh.consume(fresh.next_run(), start_from=datetime.fromisoformat(a_while_ago))
    assert "newer than the start date" in (consumed.get("recovery") or ""), consumed


def test_a_deleted_consumer_group_is_noted_and_the_run_history_wins(stack_services, tmp_path):
    """The group's committed offsets are a mirror: gone (deleted on the real broker), the run says so, reads from the
    history's resume point, loses nothing and rebuilds nothing; its commit writes the mirror again."""
    driver = _driver(stack_services, tmp_path, "group_items")
    before = driver.published_count()
    driver.sql("UPDATE public.group_items SET v = 'after the group went' WHERE id <= 5")
    driver.wait_for_records(before + 5)
    with driver.kafka() as kafka:
        group = kafka.group_id
        assert kafka.admin.delete_consumer_groups([group], request_timeout=30)[group].result() is None

    consumed, _ = driver.run_once()
    assert consumed["events"] == 5 and not consumed.get("recovery"), consumed
    assert any("no committed offsets although the run history has a resume point" in n for n in consumed["notes"])
    assert driver.history.incidents.recoveries() == []
    assert driver.destiny().decode() == driver.copy_csv("id").decode()
    with driver.kafka() as kafka:
        mirrored = committed_offsets(kafka, driver.spec.topic, topic_partitions(kafka, driver.spec.topic))
    assert mirrored == driver.history.runs.resume_point().ends


def test_with_on_data_loss_fail_the_run_fails_and_names_the_remedy(stack_services, tmp_path):
    driver = _driver(stack_services, tmp_path, "fail_items", on_data_loss="fail")
    _unread_burst(driver, "fail_items")
    driver.delete_records()
    last_good = driver.destiny()
    with pytest.raises(DataLossError, match=r"on_data_loss is 'fail'.*resnapshot --connector fail_items"):
        driver.run_once()
    assert driver.destiny() == last_good
    failed = driver.history.runs.recent_runs(1)[0]
    assert "on_data_loss=fail" in failed["recovery"]


def test_a_folder_of_the_previous_version_is_rebuilt_once_keeping_its_destiny_until_then(stack_services, tmp_path):
    """An upgrade: the old whole-table Parquet state and a schema-1 run history are in the folder."""
    import sqlite3

    path = write_connector(tmp_path / "connectors", "old_items", "public.old_items", "olditems")
    driver = PipelineDriver(stack_services.settings, path, tmp_path / "data")
    driver.sql("DROP TABLE IF EXISTS public.old_items")
    driver.sql("CREATE TABLE public.old_items (id int PRIMARY KEY, v text)")
    driver.sql("INSERT INTO public.old_items SELECT g, 'v' || g FROM generate_series(1, 20) g")
    folder = driver.layout.folder
    folder.mkdir(parents=True)
    old_destiny = b"id,v\n1,as the old version wrote it\n"
    driver.layout.destiny.write_bytes(old_destiny)
    driver.layout.legacy_state.write_bytes(b"PAR1 the previous version's state")
    with sqlite3.connect(driver.layout.history) as db:
        db.executescript(V1_SCHEMA.read_text())
        db.execute("INSERT INTO runs (run_id, status) VALUES ('scheduled__old', 'merged')")
    driver.register()
    consumed, _ = driver.run_once()
    assert consumed["recovery"].startswith("upgrade:")
    assert driver.destiny() == old_destiny  # kept until the rebuilt state is complete
    expected = driver.converge("id")
    assert driver.destiny().decode() == expected.decode()
    assert not driver.layout.legacy_state.exists() and (driver.layout.archive_dir / "destiny.state.parquet").exists()
    assert driver.history.runs.get_run("scheduled__old")["status"] == "merged"  # the old history is kept


def test_a_state_restored_from_before_the_last_batches_is_rebuilt_not_read_on(stack_services, tmp_path):
    """state/ restored from a backup older than runs.sqlite (or lost): reading on would keep a partial table
    forever, since the history's resume point is past the events the state lacks. The next run finds it and
    rebuilds from a new snapshot, ending identical to COPY."""
    import shutil

    driver = drained_pipeline(stack_services.settings, tmp_path, "state_restored", count=20)
    backup = tmp_path / "state-backup"
    shutil.copytree(driver.layout.state_dir, backup)
    before = driver.published_count()
    driver.sql("UPDATE public.state_restored SET v = 'after the backup' WHERE id <= 5")
    driver.sql("DELETE FROM public.state_restored WHERE id > 15")
    driver.wait_for_records(before + 10)
    driver.converge("id")
    shutil.rmtree(driver.layout.state_dir)
    shutil.copytree(backup, driver.layout.state_dir)  # destiny.csv is the live generation's: it follows the state
    consumed, _ = driver.run_once()
    assert "restored from an earlier time than runs.sqlite" in consumed["recovery"]
    expected = driver.converge("id")
    assert driver.destiny().decode() == expected.decode() and b"after the backup" in expected
    assert driver.history.incidents.recoveries()[0]["reason"] == "state_lost"
