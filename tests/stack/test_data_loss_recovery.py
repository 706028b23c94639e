"""The broker forgets (the local broker keeps memory only): the next run says so and recovers by itself.

A burst of changes is published but not yet read when the broker restarts: those events are gone. The run
that notices records what was lost, starts a rebuild from a new snapshot, and destiny.csv keeps its last
good content until the rebuilt state replaces it in one step, identical to the table. With
on_data_loss=fail the run fails instead, naming the command that recovers.
"""

from __future__ import annotations

import json

import pytest

from cdc_pipeline import cli
from cdc_pipeline.errors import DataLossError
from cdc_pipeline.kafka.offsets import committed_offsets
from cdc_pipeline.kafka.topic import topic_partitions
from cdc_pipeline.waiting import wait_until
from tests.stack.pipeline_driver import REPO, PipelineDriver, write_connector

pytestmark = pytest.mark.stack

V1_SCHEMA = REPO / "tests" / "fixtures" / "runs_schema_v1.sql"


def _driver(stack, tmp_path, name, **settings) -> PipelineDriver:
    path = write_connector(tmp_path / "connectors", name, f"public.{name}", name.replace("_", ""), **settings)
    driver = PipelineDriver(stack.settings, path, tmp_path / "data")
    driver.sql(f"DROP TABLE IF EXISTS public.{name}")
    driver.sql(f"CREATE TABLE public.{name} (id int PRIMARY KEY, v text, n numeric)")
    driver.sql(f"INSERT INTO public.{name} SELECT g, 'v' || g, g * 1.5 FROM generate_series(1, 40) g")
    driver.register()
    assert driver.drain_until_equal("id") == driver.destiny()
    return driver


def _unread_burst(driver: PipelineDriver, table: str) -> None:
    """Changes the broker acknowledges but the pipeline does not read before the broker forgets them."""
    before = driver.topic_record_count()
    driver.sql(f"UPDATE public.{table} SET v = 'burst ' || id WHERE id % 3 = 0")
    driver.sql(f"DELETE FROM public.{table} WHERE id % 7 = 0")
    driver.sql(f"INSERT INTO public.{table} SELECT g, 'new ' || g, g FROM generate_series(100, 120) g")
    driver.wait_for_records(before + 14 + 5 + 21)


def _restart_broker(stack) -> None:
    stack.stop(["broker"])
    stack.start(["broker"])


def test_a_broker_that_lost_unread_events_is_detected_and_the_table_is_rebuilt_atomically(stack_services, tmp_path,
                                                                                          capsys):
    driver = _driver(stack_services, tmp_path, "loss_items")
    _unread_burst(driver, "loss_items")
    _restart_broker(stack_services)
    driver.sql("UPDATE public.loss_items SET v = 'after the restart' WHERE id IN (1, 2)")
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

    def rebuilt() -> bool:
        driver.register()  # confirms the snapshot from the connector's committed offsets
        driver.run_once()
        return driver.history.incidents.active_recovery() is None

    wait_until(rebuilt, what="the rebuild to go live", timeout=180, interval=1.0)
    assert driver.destiny().decode() == expected.decode()
    (done,) = [r for r in driver.history.incidents.recoveries() if r["step"] == "promoted"]
    assert done["reason"] == "data_loss" and json.loads(done["lost"])
    runs = driver.history.runs.recent_runs(50)
    assert any((r["recovery"] or "").startswith("rebuild") and "complete" in r["recovery"] for r in runs)
    # No run saw the broker down (it restarted between two runs): the outage log still says it was, and what it cost.
    (outage,) = [o for o in driver.history.incidents.outages() if o["service"] == "broker"]
    assert outage["data_lost"] == 1 and outage["recovery_id"] == done["id"] and outage["back_at"]
    assert cli.main(["--data-dir", str(driver.layout.folder.parent), "--connectors-dir", str(driver.spec.path.parent),
                     "outages", "--connector", "loss_items"]) == 0
    assert f"data lost, recovered by rebuild {done['id']}" in capsys.readouterr().out

    # It streams on: later changes arrive as usual.
    driver.sql("INSERT INTO public.loss_items VALUES (500, 'later', 0)")
    assert driver.drain_until_equal("id") == driver.destiny()


def test_a_deleted_consumer_group_is_noted_and_the_run_history_wins(stack_services, tmp_path):
    """The group's committed offsets are a mirror: gone (deleted on the real broker), the run says so, reads from the
    history's resume point, loses nothing and rebuilds nothing; its commit writes the mirror again."""
    driver = _driver(stack_services, tmp_path, "group_items")
    before = driver.topic_record_count()
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
    _restart_broker(stack_services)
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
