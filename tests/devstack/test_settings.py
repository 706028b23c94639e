"""Settings precedence, the variable table, and the environment Airflow gets."""

import json
import re

import pytest

from devstack.airflow import airflow_environment
from devstack.errors import SettingsError
from devstack.settings import REPO_ROOT, SETTINGS, StackSettings, settings_table_markdown


def test_defaults_match_the_documented_table():
    s = StackSettings.load(env={})
    assert s.stack_home == REPO_ROOT / ".stack"
    assert s.data_dir == REPO_ROOT / ".stack" / "data"
    assert s.connectors_dir == REPO_ROOT / "include" / "connectors"
    assert (s.pg_host, s.pg_port, s.pg_db, s.pg_user) == ("127.0.0.1", 55432, "testdb", "postgres")
    assert s.sink_db == "cdc_sink"
    assert (s.kafka_port, s.connect_port, s.airflow_port) == (19092, 18083, 18080)
    assert (s.airflow_user, s.airflow_password, s.kafka_group_id) == ("admin", "admin", "cdc-csv")


def test_without_a_password_a_new_uncommon_one_is_generated_each_time():
    first, second = StackSettings.load(env={}).pg_password, StackSettings.load(env={}).pg_password
    assert re.fullmatch(r"cdc-[0-9a-f]{16}", first) and re.fullmatch(r"cdc-[0-9a-f]{16}", second)
    assert first != second


def test_environment_beats_recorded_beats_default():
    recorded = {"CDC_PG_PASSWORD": "cdc-recorded", "CDC_KAFKA_PORT": "29092", "CDC_PG_PORT": "25432"}
    s = StackSettings.load(env={"CDC_PG_PORT": "35432"}, recorded=recorded)
    assert s.pg_port == 35432                 # environment
    assert s.kafka_port == 29092              # recorded
    assert s.pg_password == "cdc-recorded"    # recorded, not generated
    assert s.connect_port == 18083            # default
    assert StackSettings.load(env={"CDC_PG_PASSWORD": "cdc-env"}, recorded=recorded).pg_password == "cdc-env"


def test_argument_beats_environment_beats_default(tmp_path):
    env = {"CDC_KAFKA_PORT": "29092", "CDC_CONNECT_PORT": "28083"}
    s = StackSettings.load(env=env, kafka_port=39092)
    assert s.kafka_port == 39092        # argument
    assert s.connect_port == 28083      # environment, parsed to int
    assert s.airflow_port == 18080      # default


def test_data_dir_follows_stack_home_unless_set(tmp_path):
    assert StackSettings.load(env={"CDC_STACK_HOME": str(tmp_path)}).data_dir == tmp_path / "data"
    other = tmp_path / "elsewhere"
    assert StackSettings.load(env={"CDC_STACK_HOME": str(tmp_path), "CDC_DATA_DIR": str(other)}).data_dir == other


@pytest.mark.parametrize("value", ["abc", "0", "70000"])
def test_a_bad_port_names_the_variable(value):
    with pytest.raises(SettingsError, match="CDC_PG_PORT"):
        StackSettings.load(env={"CDC_PG_PORT": value})


def test_every_field_has_exactly_one_variable_and_round_trips_through_as_env():
    fields = {f.name for f in StackSettings.__dataclass_fields__.values()}
    assert {s.field for s in SETTINGS} == fields
    settings = StackSettings.load(env={}, pg_port=1234)
    assert StackSettings.load(env=settings.as_env()) == settings


def test_the_docs_hold_the_generated_settings_table():
    doc = (REPO_ROOT / "docs" / "local-stack.md").read_text()
    assert settings_table_markdown() in doc


def test_airflow_environment_carries_the_five_connections_and_the_execution_api_url():
    s = StackSettings.load(env={}, kafka_port=1111, connect_port=2222, airflow_port=3333, pg_port=4444)
    env = airflow_environment(s)
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:3333/execution/"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1" and env["AIRFLOW__API__PORT"] == "3333"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO_ROOT / "dags")
    assert env["CDC_DATA_DIR"] == str(s.data_dir)
    kafka = json.loads(env["AIRFLOW_CONN_CDC_KAFKA"])
    assert kafka == {"conn_type": "kafka", "extra": {"bootstrap.servers": "127.0.0.1:1111", "group.id": "cdc-csv",
                                                     "enable.auto.commit": False, "auto.offset.reset": "earliest"}}
    assert json.loads(env["AIRFLOW_CONN_CDC_KAFKA_CONNECT"]) == {"conn_type": "http", "host": "127.0.0.1",
                                                                 "port": 2222, "schema": "http", "login": "cdc",
                                                                 "password": env["CDC_CONNECT_PASSWORD"]}
    pg = json.loads(env["AIRFLOW_CONN_CDC_POSTGRES"])
    # The pipeline and Debezium: the least-privilege role; the administrator keeps the publications.
    assert pg == {"conn_type": "postgres", "host": "127.0.0.1", "port": 4444, "login": "cdc_capture",
                  "password": s.capture_password, "schema": "testdb",
                  "extra": {"connect_password": "${env:CDC_CAPTURE_PASSWORD}"}}
    assert json.loads(env["AIRFLOW_CONN_CDC_POSTGRES_ADMIN"]) == {
        "conn_type": "postgres", "host": "127.0.0.1", "port": 4444, "login": "postgres", "password": s.pg_password,
        "schema": "testdb"}
    sink = json.loads(env["AIRFLOW_CONN_CDC_SINK_POSTGRES"])
    assert sink == {
        "conn_type": "postgres", "host": "127.0.0.1", "port": 4444, "login": "postgres", "password": s.pg_password,
        "schema": "cdc_sink"}
    api = json.loads(env["AIRFLOW_CONN_CDC_AIRFLOW_API"])
    assert api == {"conn_type": "http", "host": "127.0.0.1", "port": 3333, "login": "admin",
                   "password": s.airflow_password, "schema": "http"}
    assert sorted(k for k in env if k.startswith("AIRFLOW_CONN_")) == [
        "AIRFLOW_CONN_CDC_AIRFLOW_API", "AIRFLOW_CONN_CDC_KAFKA", "AIRFLOW_CONN_CDC_KAFKA_CONNECT",
        "AIRFLOW_CONN_CDC_POSTGRES", "AIRFLOW_CONN_CDC_POSTGRES_ADMIN", "AIRFLOW_CONN_CDC_SINK_POSTGRES"]


def test_airflow_parses_the_connection_variables():
    from airflow.models.connection import Connection

    env = airflow_environment(StackSettings.load(env={}))
    kafka = Connection.from_json(env["AIRFLOW_CONN_CDC_KAFKA"], conn_id="cdc_kafka")
    assert kafka.extra_dejson["bootstrap.servers"] == "127.0.0.1:19092"
    assert kafka.extra_dejson["enable.auto.commit"] is False
    connect = Connection.from_json(env["AIRFLOW_CONN_CDC_KAFKA_CONNECT"], conn_id="cdc_kafka_connect")
    assert (connect.host, connect.port, connect.schema) == ("127.0.0.1", 18083, "http")
    assert (connect.login, connect.password) == ("cdc", env["CDC_CONNECT_PASSWORD"])  # the REST API's basic auth
    pg = Connection.from_json(env["AIRFLOW_CONN_CDC_POSTGRES"], conn_id="cdc_postgres")
    assert (pg.login, pg.password, pg.schema, pg.port) == ("cdc_capture", env["CDC_CAPTURE_PASSWORD"], "testdb", 55432)
    assert pg.extra_dejson == {"connect_password": "${env:CDC_CAPTURE_PASSWORD}"}
    sink = Connection.from_json(env["AIRFLOW_CONN_CDC_SINK_POSTGRES"], conn_id="cdc_sink_postgres")
    assert (sink.host, sink.port, sink.login, sink.password, sink.schema) == (
        "127.0.0.1", 55432, "postgres", env["CDC_PG_PASSWORD"], "cdc_sink")
