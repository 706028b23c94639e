"""A part refuses a port that something else holds, and the error names the variable to change."""

import socket

import pytest

from devstack.errors import PortInUseError
from devstack.ports import port_in_use
from devstack.settings import StackSettings
from devstack.stack import Stack

PARTS = [("postgres", "pg_port", "CDC_PG_PORT"), ("broker", "kafka_port", "CDC_KAFKA_PORT"),
         ("connect", "connect_port", "CDC_CONNECT_PORT"), ("airflow", "airflow_port", "CDC_AIRFLOW_PORT")]


@pytest.fixture
def occupied_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize(("part", "field", "variable"), PARTS)
def test_start_refuses_a_taken_port_and_names_the_variable(tmp_path, occupied_port, part, field, variable):
    settings = StackSettings.load(env={}, stack_home=tmp_path, **{field: occupied_port})
    with pytest.raises(PortInUseError) as info:
        Stack(settings)[part].start()
    message = str(info.value)
    assert f"port {occupied_port} ({variable}) is already in use" in message
    assert f"Set {variable} to a free port or stop it" in message
    assert not (tmp_path / "pgdata").exists()  # refused before doing anything


def test_port_in_use_sees_a_listener_and_not_a_free_port(occupied_port):
    assert port_in_use(occupied_port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    assert not port_in_use(free)
