"""Airflow standalone started by the launcher: health, login, every DAG file parsed, the CLI status.

These tests change nothing in Airflow: no DAG is unpaused or triggered (an unpaused DAG runs at once and would
touch data other tests own), and each DAG's paused flag is left as found.
"""

import json
import os
import subprocess
import sys

import pytest

from devstack.__main__ import unpause_paused
from devstack.airflow import dag_files
from devstack.stack import PART_NAMES
from tests.devstack.status_output import expected_exit_code, pipeline_states

pytestmark = [pytest.mark.stack, pytest.mark.airflow]


def test_airflow_is_healthy_and_the_configured_user_can_log_in(airflow_stack):
    health = airflow_stack.health()
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health
    assert airflow_stack.token()
    assert airflow_stack.base_url == airflow_stack.settings.airflow_url
    status = airflow_stack.stack["airflow"].status()
    assert status.healthy, status.line()


def test_every_connector_file_has_its_dag_and_no_dag_file_fails_to_import(airflow_stack):
    s = airflow_stack.settings
    assert dag_files(s), f"no DAG file in {s.dags_folder}"
    assert airflow_stack.import_errors() == []
    dag_ids = {dag["dag_id"] for dag in airflow_stack.list_dags()}
    connectors = [json.loads(path.read_text())["name"] for path in sorted(s.connectors_dir.glob("*.json"))]
    assert connectors, f"no connector file in {s.connectors_dir}"
    assert {f"cdc_{name}" for name in connectors} <= dag_ids, dag_ids


def test_the_pause_flag_round_trips_through_the_api_and_is_left_as_found(airflow_stack):
    before = {dag["dag_id"]: dag["is_paused"] for dag in airflow_stack.list_dags()}
    for dag_id, paused in before.items():
        airflow_stack.set_paused(dag_id, paused)  # the PATCH ./stack up sends, without changing anything
    assert {dag["dag_id"]: dag["is_paused"] for dag in airflow_stack.list_dags()} == before


def test_up_unpauses_exactly_the_paused_dags():
    class Recorder:
        def __init__(self):
            self.unpaused = []

        def unpause(self, dag_id):
            self.unpaused.append(dag_id)

    client = Recorder()
    dags = [{"dag_id": "a", "is_paused": True}, {"dag_id": "b", "is_paused": False}, {"dag_id": "c", "is_paused": True}]
    assert unpause_paused(client, dags) == ["a", "c"] == client.unpaused


def test_status_with_every_part_up_exits_zero_unless_a_connector_or_pipeline_is_not_ok(airflow_stack):
    s = airflow_stack.settings
    result = subprocess.run([sys.executable, "-m", "devstack", "status"], env={**os.environ, **s.as_env()},
                            capture_output=True, text=True, timeout=120)
    for name in PART_NAMES:
        pid = airflow_stack.stack[name].pid()
        assert f"{name:9} running pid {pid}" in result.stdout, result.stdout
    assert "NOT READY" not in result.stdout, result.stdout
    # Other tests leave connectors stopped and pipelines paused or failing: then, and only then, the exit code is 1.
    assert pipeline_states(result.stdout), result.stdout
    assert result.returncode == expected_exit_code(result.stdout), result.stdout + result.stderr
