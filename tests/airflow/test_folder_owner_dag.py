"""In Airflow: a connector's tasks refuse a folder that belongs to another queue, loudly (a red run, one line on
its note, no retries), and run again once the folder is claimed."""

from __future__ import annotations

import json

import pytest

from cdc_pipeline.commands import cli
from cdc_pipeline.ownership import OWNER_FILE, read_owner
from tests.airflow.pipeline_dags import pipeline_dag

pytestmark = pytest.mark.airflow

NAME = "af_owned"
DAG_ID = f"cdc_{NAME}"
TABLE = f"public.{NAME}"


def run_dag(airflow_stack, expect: str = "success") -> str:
    run_id = airflow_stack.trigger(DAG_ID)
    state = airflow_stack.wait_for_run(DAG_ID, run_id, timeout=300)
    assert state == expect, f"{DAG_ID} run {run_id} ended {state}"
    return run_id


def test_a_folder_of_another_queue_fails_the_run_at_once_naming_it_and_claim_lets_it_run(airflow_stack):
    def create(driver):
        driver.sql(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, v text)")
        driver.sql(f"INSERT INTO {TABLE} SELECT g, 'v' || g FROM generate_series(1, 20) g")

    with pipeline_dag(airflow_stack, NAME, TABLE, "afowned", create) as driver:
        run_dag(airflow_stack)
        folder = driver.layout.folder
        assert read_owner(folder).queue == "default"  # the first run made the folder its worker's
        # The folder now says it belongs to queue host-a (a folder copied from another host, say).
        owner = json.loads((folder / OWNER_FILE).read_text())
        (folder / OWNER_FILE).write_text(json.dumps({**owner, "queue": "host-a"}))
        before = driver.destiny()
        driver.sql(f"UPDATE {TABLE} SET v = 'changed' WHERE id = 1")
        run_id = run_dag(airflow_stack, expect="failed")
        states = {ti["task_id"]: (ti["state"], ti["try_number"]) for ti in airflow_stack.task_instances(DAG_ID, run_id)}
        assert states["consume_batch"] == ("failed", 1) and states["register_connector"] == ("failed", 1)
        note = airflow_stack.get_run(DAG_ID, run_id)["note"]
        assert note.startswith("FAILED") and "belongs to queue host-a" in note and "claim --connector af_owned" in note
        log = airflow_stack.task_log(DAG_ID, run_id, "consume_batch")
        assert "belongs to queue host-a" in log and "Traceback" not in log
        assert driver.destiny() == before  # nothing was read or written there
        s = airflow_stack.settings
        assert cli.main(["--data-dir", str(s.data_dir), "--connectors-dir", str(s.connectors_dir),
                         "claim", "--connector", NAME, "--yes"]) == 0
        assert read_owner(folder).queue == "default"
        run_dag(airflow_stack)
        assert driver.destiny() == driver.copy_csv("id")
