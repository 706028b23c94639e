"""The session stack (postgres, broker, connect): real health checks, idempotent start, port guard, CLI status."""

import os
import subprocess
import sys

import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from devstack.connect import POSTGRES_CONNECTOR
from devstack.errors import PortInUseError
from devstack.jars import debezium_version, kafka_version
from devstack.postgres import REPLICATION_SLOTS
from devstack.stack import SERVICES, Stack
from devstack.settings import StackSettings
from tests.devstack.status_output import expected_exit_code

pytestmark = pytest.mark.stack


def test_postgres_runs_with_logical_decoding_and_the_demo_table(stack_services):
    with psycopg.connect(stack_services.settings.pg_conninfo) as conn:
        assert conn.execute("SHOW wal_level").fetchone()[0] == "logical"
        assert conn.execute("SHOW max_replication_slots").fetchone()[0] == str(REPLICATION_SLOTS)
        assert conn.execute("SELECT count(*) FROM public.clientes").fetchone()[0] >= 1


def test_status_reports_every_service_healthy_from_real_checks(stack_services):
    status = {st.name: st for st in stack_services.status()}
    for name in SERVICES:
        assert status[name].running and status[name].healthy, status[name].line()
    assert "wal_level=logical" in status["postgres"].detail
    assert f"Apache Kafka {kafka_version()}" in status["broker"].detail
    assert f"PostgresConnector {debezium_version()} available" in status["connect"].detail
    assert not status["airflow"].running or status["airflow"].healthy


def test_broker_answers_metadata(stack_services):
    metadata = AdminClient({"bootstrap.servers": stack_services.settings.kafka_bootstrap}).list_topics(timeout=5)
    assert len(metadata.brokers) == 1


def test_connect_lists_the_debezium_postgres_plugin(stack_services):
    import httpx

    plugins = httpx.get(f"{stack_services.settings.connect_url}/connector-plugins", timeout=5).json()
    assert POSTGRES_CONNECTOR in {p["class"] for p in plugins}


def test_the_connect_rest_api_asks_for_its_user_and_password(stack_services):
    """Kafka's basic-auth REST extension guards the worker (as in docker-compose.yml): no answer without the
    credentials, and the pipeline's client names the fix instead of reading 401 as "no such connector"."""
    import httpx

    from cdc_pipeline.errors import ConnectorError
    from cdc_pipeline.kafka_connect import KafkaConnectClient

    s = stack_services.settings
    assert httpx.get(f"{s.connect_address}/connectors", timeout=10).status_code == 401
    assert httpx.get(f"{s.connect_address}/connectors", auth=(s.connect_user, "wrong"), timeout=10).status_code == 401
    assert httpx.get(f"{s.connect_url}/connectors", timeout=10).status_code == 200
    with KafkaConnectClient(s.connect_address) as anonymous, pytest.raises(ConnectorError) as refused:
        anonymous.get_config("clientes")
    assert "401" in str(refused.value) and "CDC_CONNECT_PASSWORD" in str(refused.value)
    assert s.connect_password not in str(refused.value)
    with KafkaConnectClient(s.connect_address, auth=(s.connect_user, s.connect_password)) as client:
        assert client.status("no_such_connector") is None


def test_starting_again_reuses_the_running_parts(stack_services):
    before = {name: stack_services[name].pid() for name in SERVICES}
    again = Stack(stack_services.settings).start(SERVICES)  # a second launcher, as `./stack up` twice would be
    assert all(result.reused for result in again)
    assert {result.name: result.pid for result in again} == before


def test_another_stack_on_the_same_port_is_refused_with_the_variable_named(stack_services, tmp_path):
    other = StackSettings.load(env={}, stack_home=tmp_path, kafka_port=stack_services.settings.kafka_port)
    with pytest.raises(PortInUseError, match=r"\(CDC_KAFKA_PORT\) is already in use"):
        Stack(other).start(["broker"])


def test_cli_status_prints_the_settings_source_and_each_part(stack_services):
    env = {**os.environ, **stack_services.settings.as_env()}
    result = subprocess.run([sys.executable, "-m", "devstack", "status"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.startswith("settings: "), result.stdout + result.stderr
    for name in SERVICES:
        assert f"{name:9} running pid {stack_services[name].pid()}" in result.stdout
    assert "wal_level=logical" in result.stdout
    assert f"database {stack_services.settings.sink_db} present" in result.stdout
    assert "connectors:" in result.stdout
    # The exit code follows what it printed (exit 1 with a part down: tests/devstack/test_stop_start.py).
    assert result.returncode == expected_exit_code(result.stdout), result.stdout


def test_the_sink_database_exists_beside_the_source(stack_services):
    s = stack_services.settings
    with psycopg.connect(s.pg_conninfo.replace(f"dbname={s.pg_db}", f"dbname={s.sink_db}")) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == s.sink_db
