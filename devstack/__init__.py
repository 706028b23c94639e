"""The local, Docker-free stack (PostgreSQL, Tansu, Kafka Connect, Airflow) for the Quickstart and the tests."""

from devstack.errors import PortInUseError, ReadinessTimeout, StackError
from devstack.settings import SETTINGS, StackSettings
from devstack.stack import Stack

__all__ = ["SETTINGS", "PortInUseError", "ReadinessTimeout", "Stack", "StackError", "StackSettings"]
