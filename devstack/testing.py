"""Helpers for tests that run real parts: free ports, throwaway settings, the Airflow handle of the fixtures."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from devstack.airflow_api import AirflowClient
from devstack.ports import free_port, port_in_use
from devstack.settings import StackSettings
from devstack.stack import Stack


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports; the last one also has its +1 and +2 free (Airflow's log servers)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port in ports:
            continue
        if len(ports) == count - 1 and (port + 2 > 65535 or any(port_in_use(port + i) for i in (1, 2))
                                         or {port + 1, port + 2} & set(ports)):
            continue
        ports.append(port)
    return ports


def make_test_settings(prefix: str = "cdc-stack-test-", **overrides: object) -> StackSettings:
    """Settings for a throwaway stack: a fresh temporary home and free ports; the caller's CDC_* are ignored,
    except CDC_JARS_DIR (where the fetched jars are).

    ``overrides`` set any other field (e.g. ``connectors_dir=...``).
    """
    home = Path(tempfile.mkdtemp(prefix=prefix))
    home.chmod(0o755)  # the postgres OS user must traverse it (mkdtemp makes it 0700)
    pg, kafka, controller, connect, airflow = free_ports(5)
    overrides.setdefault("jars_dir", os.environ.get("CDC_JARS_DIR"))
    overrides.setdefault("new_dags_paused", True)  # a test unpauses the DAGs it runs, and only those
    return StackSettings.load(env={}, stack_home=home, pg_port=pg, kafka_port=kafka, kafka_controller_port=controller,
                              connect_port=connect,
                              airflow_port=airflow, **overrides)


@dataclass
class AirflowStack:
    """What ``airflow_stack`` yields: where Airflow is, how to log in, and the REST helper (``api``).

    The helper's methods are also reachable directly: ``airflow_stack.trigger(dag_id, conf={...})``.
    """

    stack: Stack
    api: AirflowClient

    @property
    def settings(self) -> StackSettings:
        return self.stack.settings

    @property
    def base_url(self) -> str:
        return self.api.base_url

    @property
    def user(self) -> str:
        return self.api.user

    @property
    def password(self) -> str:
        return self.api.password

    def __getattr__(self, name: str):
        return getattr(self.api, name)
