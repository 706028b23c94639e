"""Who owns a connector's folder, on the real broker: Kafka's consumer group is the witness that a connector was
read before, so a worker without its folder refuses instead of starting it empty; claim moves or restarts it."""

from __future__ import annotations

import os
import shutil

import pytest

from cdc_pipeline.commands import cli
from cdc_pipeline.errors import WrongWorkerError
from cdc_pipeline.kafka.offsets import group_offsets
from cdc_pipeline.ownership import Worker, check_owner, describe_group_read, read_owner
from tests.stack.pipeline_driver import drained_pipeline

pytestmark = pytest.mark.stack


def witness(driver):
    def read_before():
        with driver.kafka() as kafka:
            return describe_group_read(kafka.group_id, group_offsets(kafka, [driver.spec.topic]))
    return read_before


def cli_args(driver, data_dir, *command: str) -> list[str]:
    s = driver.settings
    return ["--data-dir", str(data_dir), "--connectors-dir", str(driver.spec.path.parent),
            "--bootstrap-servers", s.kafka_bootstrap, "--group-prefix", "test", "--connect-url", s.connect_url,
            *command]


def test_a_worker_without_the_folder_refuses_while_kafka_remembers_and_claim_fresh_starts_it_over(
        stack_services, tmp_path):
    driver = drained_pipeline(stack_services.settings, tmp_path, "owned_fresh", count=25)
    folder = driver.layout.folder
    here = Worker("default", None, "this-host")
    assert check_owner(folder, driver.spec, here, read_before=witness(driver)).queue == "default"  # adopted
    # The folder is on another worker's disk now (moved away): Kafka's group says it was read.
    os.rename(folder, tmp_path / "elsewhere")
    with pytest.raises(WrongWorkerError) as refused:
        check_owner(folder, driver.spec, here, read_before=witness(driver))
    assert f"consumer group test.owned_fresh has read {driver.spec.topic} up to p0:" in str(refused.value)
    assert not folder.exists()
    # Starting afresh on purpose: the group is forgotten, and the pipeline reads its topic as a new one.
    assert cli.main(cli_args(driver, folder.parent, "claim", "--connector", "owned_fresh", "--fresh", "--yes")) == 0
    with driver.kafka() as kafka:
        assert group_offsets(kafka, [driver.spec.topic]) == {}
    check_owner(folder, driver.spec, here, read_before=witness(driver))
    afresh = type(driver)(driver.settings, driver.spec.path, folder.parent)  # its history is new
    driver.sql("UPDATE public.owned_fresh SET v = 'after ' || id WHERE id <= 5")
    assert afresh.converge("id") == afresh.destiny()


def test_claim_takes_over_a_whole_copy_on_another_worker_and_refuses_a_partial_one(stack_services, tmp_path,
                                                                                     monkeypatch):
    driver = drained_pipeline(stack_services.settings, tmp_path, "owned_moved", count=25)
    folder = driver.layout.folder
    check_owner(folder, driver.spec, Worker("default", "w1", "host-1"), read_before=witness(driver))
    other_disk = tmp_path / "other-disk"
    monkeypatch.setenv("CDC_WORKER_NAME", "w2")
    # A copy without its state (say, rsync stopped early) is refused by name, and nothing is claimed.
    shutil.copytree(folder, other_disk / "owned_moved", ignore=shutil.ignore_patterns("state"))
    assert cli.main(cli_args(driver, other_disk, "claim", "--connector", "owned_moved", "--yes")) == 1
    assert read_owner(other_disk / "owned_moved").worker == "w1"
    shutil.rmtree(other_disk / "owned_moved")
    shutil.copytree(folder, other_disk / "owned_moved")  # a whole copy, taken while the pipeline stands still
    assert cli.main(cli_args(driver, other_disk, "claim", "--connector", "owned_moved", "--yes")) == 0
    assert read_owner(other_disk / "owned_moved").worker == "w2"
    # The new owner goes on from the copy's resume point and stays identical.
    moved = type(driver)(driver.settings, driver.spec.path, other_disk)
    check_owner(moved.layout.folder, moved.spec, Worker.here("default"), read_before=witness(moved))
    driver.sql("INSERT INTO public.owned_moved SELECT g, 'moved ' || g FROM generate_series(26, 40) g")
    assert moved.converge("id") == moved.destiny()
    assert moved.history.incidents.recoveries() == []  # went on from the copy: no rebuild
