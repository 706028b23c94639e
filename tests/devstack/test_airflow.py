"""Airflow standalone started by the launcher: health green, login with the configured user, DAGs parsed."""

import pytest

from devstack.airflow import dag_files

pytestmark = [pytest.mark.stack, pytest.mark.airflow]


def test_airflow_is_healthy_and_the_configured_user_can_log_in(airflow_stack):
    health = airflow_stack.health()
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health
    assert airflow_stack.token()
    assert airflow_stack.base_url == airflow_stack.settings.airflow_url
    status = airflow_stack.stack["airflow"].status()
    assert status.healthy, status.line()


def test_every_dag_file_is_parsed_and_can_be_unpaused(airflow_stack):
    if not dag_files(airflow_stack.settings):
        pytest.skip("no DAG files in dags/ yet")
    assert airflow_stack.import_errors() == []
    dags = airflow_stack.list_dags()
    assert dags, "the dag-processor parsed dags/ but found no DAG"
    for dag in dags:
        airflow_stack.unpause(dag["dag_id"])
    assert not any(d["is_paused"] for d in airflow_stack.list_dags())
