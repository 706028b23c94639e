"""A connector's folder belongs to one queue (and worker): tasks elsewhere refuse, claim moves it on purpose."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from cdc_pipeline.commands.claim import claim
from cdc_pipeline.connector_spec import load_connector_spec
from cdc_pipeline.errors import ConfigError, WrongWorkerError
from cdc_pipeline.ownership import OWNER_FILE, Worker, check_owner, describe_group_read, read_owner

REPO = Path(__file__).resolve().parents[2]
SPEC = load_connector_spec(REPO / "include" / "connectors" / "clientes.json")
READ = "Kafka's consumer group cdc-csv.clientes has read pgserver1.public.clientes up to p0:120"


def worker(queue="default", name=None) -> Worker:
    return Worker(queue=queue, name=name, host="host-1")


def never_asked() -> str | None:
    raise AssertionError("Kafka must not be asked while the folder is here")


def with_history(folder: Path) -> Path:
    folder.mkdir(parents=True)
    sqlite3.connect(folder / "runs.sqlite").close()
    return folder


def test_a_new_connectors_folder_becomes_the_workers_own_after_kafka_says_nothing_was_read(tmp_path):
    asked = []
    owner = check_owner(tmp_path / "clientes", SPEC, worker("host-a", "w1"), read_before=lambda: asked.append(1))
    assert asked == [1] and (owner.queue, owner.worker, owner.host) == ("host-a", "w1", "host-1")
    recorded = json.loads((tmp_path / "clientes" / OWNER_FILE).read_text())
    assert recorded["connector"] == "clientes" and recorded["queue"] == "host-a" and recorded["since"]
    # From then on only the file is read.
    assert check_owner(tmp_path / "clientes", SPEC, worker("host-a", "w1"), read_before=never_asked) == owner


def test_a_folder_of_another_queue_is_refused_naming_both_queues_and_the_move(tmp_path):
    folder = tmp_path / "clientes"
    check_owner(folder, SPEC, worker("host-a"), read_before=lambda: None)
    with pytest.raises(WrongWorkerError) as refused:
        check_owner(folder, SPEC, worker("host-b"), read_before=never_asked)
    message = str(refused.value)
    assert "belongs to queue host-a" in message and "queue host-b" in message
    assert "\"queue\": \"host-a\"" in message and "claim --connector clientes --yes" in message
    assert refused.value.retry_helps is False and refused.value.expected is True


def test_a_folder_of_another_named_worker_on_the_same_queue_is_refused(tmp_path):
    folder = tmp_path / "clientes"
    check_owner(folder, SPEC, worker("q", "w1"), read_before=lambda: None)
    with pytest.raises(WrongWorkerError, match="belongs to worker w1.*two workers serve queue q"):
        check_owner(folder, SPEC, worker("q", "w2"), read_before=never_asked)
    # A worker without a name (one host, several processes) is not told apart.
    check_owner(folder, SPEC, worker("q", None), read_before=never_asked)


def test_a_folder_from_before_owners_were_recorded_is_adopted_without_asking_kafka(tmp_path):
    folder = with_history(tmp_path / "clientes")
    check_owner(folder, SPEC, worker("host-a"), read_before=never_asked)
    assert read_owner(folder).queue == "host-a"
    nested = with_history(tmp_path / "tienda" / "public.pedidos")  # a connector of several tables
    check_owner(nested.parent, SPEC, worker(), read_before=never_asked)
    assert read_owner(nested.parent).queue == "default"


def test_no_folder_while_kafka_remembers_reading_is_refused_and_creates_nothing(tmp_path):
    folder = tmp_path / "clientes"
    with pytest.raises(WrongWorkerError) as refused:
        check_owner(folder, SPEC, worker("host-b", "w2"), read_before=lambda: READ)
    message = str(refused.value)
    assert "no folder on worker w2 on host-1 (queue host-b)" in message and READ in message
    assert "claim --connector clientes --yes" in message and "--fresh --yes" in message
    assert not folder.exists()


def test_an_unreadable_owner_file_names_the_fix(tmp_path):
    (tmp_path / "clientes").mkdir()
    (tmp_path / "clientes" / OWNER_FILE).write_text("{")
    with pytest.raises(ConfigError, match="owner.json cannot be read.*claim --connector clientes --yes"):
        check_owner(tmp_path / "clientes", SPEC, worker(), read_before=never_asked)


def test_the_witness_is_what_the_group_committed(tmp_path):
    assert describe_group_read("g", {}) is None
    assert describe_group_read("g", {"t": {1: 5, 0: 7}}) == "Kafka's consumer group g has read t up to p0:7, p1:5"


def test_claim_takes_over_a_whole_copy_and_records_the_new_owner(tmp_path):
    folder = with_history(tmp_path / "clientes")
    check_owner(folder, SPEC, worker("host-a", "w1"), read_before=never_asked)
    message = claim(SPEC, tmp_path, worker("host-b", "w2"), fresh=False, out_of_step=lambda: [],
                    forget=never_asked)
    assert "now belongs to worker w2 on host-1 (queue host-b)" in message and "was: queue host-a, worker w1" in message
    assert (read_owner(folder).queue, read_owner(folder).worker) == ("host-b", "w2")
    check_owner(folder, SPEC, worker("host-b", "w2"), read_before=never_asked)


def test_claim_refuses_a_partial_copy_and_leaves_the_owner_as_it_was(tmp_path):
    folder = with_history(tmp_path / "clientes")
    check_owner(folder, SPEC, worker("host-a"), read_before=never_asked)
    with pytest.raises(ConfigError, match="not a whole copy.*state/ holds no table.*Copy the folder again"):
        claim(SPEC, tmp_path, worker("host-b"), fresh=False,
              out_of_step=lambda: ["clientes: state/ holds no table"], forget=never_asked)
    assert read_owner(folder).queue == "host-a"


def test_claim_without_files_needs_fresh_which_forgets_the_group_and_starts_afresh(tmp_path):
    with pytest.raises(ConfigError, match="holds no run history.*--fresh"):
        claim(SPEC, tmp_path, worker("host-b"), fresh=False, out_of_step=lambda: [], forget=never_asked)
    forgot = []
    message = claim(SPEC, tmp_path, worker("host-b"), fresh=True, out_of_step=lambda: [],
                    forget=lambda: forgot.append(1) or {"pgserver1.public.clientes": {0: 120}})
    assert forgot == [1] and "starts afresh" in message and "pgserver1.public.clientes {0: 120}" in message
    assert read_owner(tmp_path / "clientes").queue == "host-b"


def test_claim_fresh_never_discards_files_that_are_here(tmp_path):
    with_history(tmp_path / "clientes")
    with pytest.raises(ConfigError, match="--fresh starts clientes afresh only where it has no files"):
        claim(SPEC, tmp_path, worker(), fresh=True, out_of_step=lambda: [], forget=never_asked)
    assert (tmp_path / "clientes" / "runs.sqlite").exists()


def test_the_status_of_a_connector_on_a_queue_whose_folder_is_elsewhere_says_so_and_is_that_hosts_to_judge(tmp_path):
    import json as _json

    from cdc_pipeline.pipeline import connector_pipelines
    from cdc_pipeline.commands.status import table_statuses

    document = _json.loads((REPO / "include" / "connectors" / "clientes.json").read_text())
    path = tmp_path / "remote.json"
    path.write_text(_json.dumps({**document, "name": "remote", "queue": "host-b"}))
    on_queue = load_connector_spec(path)
    [status] = table_statuses(connector_pipelines(tmp_path / "data", on_queue))
    assert status.state == "on another host" and "worker serving queue host-b" in status.headline
    assert status.healthy  # `python -m cdc_pipeline status` on this host does not fail for it
    [plain] = table_statuses(connector_pipelines(tmp_path / "data", SPEC))  # default queue: its files belong here
    assert plain.state == "not started" and not plain.healthy
