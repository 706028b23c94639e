"""Session fixtures for tests that need the real local services (markers ``stack`` and ``airflow``).

Lazy: a test that asks for none of them starts nothing. The services run once per session, on free
ports, in a temporary CDC_STACK_HOME, and are stopped at the end of the session whatever happened.

- ``stack_settings``  -> StackSettings (free ports, temporary home)
- ``stack_services``  -> devstack.Stack with postgres, broker and connect running
- ``airflow_stack``   -> AirflowStack: the above plus Airflow; base_url, user, password, the REST helper
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
from collections.abc import Iterator

import pytest

from devstack.airflow_api import AirflowClient
from devstack.settings import StackSettings
from devstack.stack import SERVICES, Stack
from devstack.testing import AirflowStack, make_test_settings


@pytest.fixture(scope="session")
def stack_settings(request: pytest.FixtureRequest) -> Iterator[StackSettings]:
    """Free ports and a temporary CDC_STACK_HOME (deleted at the end unless a test failed)."""
    settings = make_test_settings()
    settings = dataclasses.replace(settings, connectors_dir=_test_connectors(settings.stack_home / "connectors"))
    yield settings
    if request.session.testsfailed or os.environ.get("CDC_KEEP_TEST_STACK"):
        print(f"\nlocal stack state kept for inspection in {settings.stack_home}")
    else:
        shutil.rmtree(settings.stack_home, ignore_errors=True)


def _test_connectors(folder):
    """The shipped connector files, plus ``af_types`` (every promised column type) and ``af_dash`` (the
    dashboard's browser test) for tests/airflow."""
    from tests.stack.pipeline_driver import REPO, write_connector

    folder.mkdir(parents=True)
    for path in (REPO / "include" / "connectors").glob("*.json"):
        shutil.copy2(path, folder / path.name)
    write_connector(folder, "af_types", "public.af_types", "af")
    write_connector(folder, "af_dash", "public.af_dash", "afdash")
    return folder


@pytest.fixture(scope="session")
def _session_stack(stack_settings: StackSettings) -> Iterator[Stack]:
    """The one Stack object of the session; its finalizer stops every part it may have started."""
    stack = Stack(stack_settings)

    # CI cancels a job with SIGTERM, which skips finalizers: stop the parts first, then die of the signal.
    def stop_then_die(signum: int, frame: object) -> None:
        signal.signal(signum, signal.SIG_IGN)  # a second SIGTERM (timeout(1) forwards one) must not cut the stop short
        stack.stop()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    previous = signal.signal(signal.SIGTERM, stop_then_die)
    try:
        yield stack
    finally:
        signal.signal(signal.SIGTERM, previous)
        stack.stop()


@pytest.fixture(scope="session")
def stack_services(_session_stack: Stack) -> Stack:
    """postgres, broker and connect running (Airflow not); ``stack.settings`` says where."""
    _session_stack.start(SERVICES)
    return _session_stack


@pytest.fixture(scope="session")
def airflow_stack(stack_services: Stack) -> Iterator[AirflowStack]:
    """The services plus Airflow standalone, with a logged-in REST helper."""
    stack_services.start(["airflow"])
    s = stack_services.settings
    with AirflowClient(s.airflow_url, s.airflow_user, s.airflow_password) as client:
        client.token()
        yield AirflowStack(stack_services, client)

