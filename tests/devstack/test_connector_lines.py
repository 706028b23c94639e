"""./stack status's connector lines say which part is not running: the connector, or which of its tasks."""

from cdc_pipeline.kafka_connect import ConnectorStatus
from devstack.__main__ import _connector_mark


def status(state, *tasks):
    return ConnectorStatus(name="c", state=state, trace=None,
                           tasks=tuple({"id": i, "state": t} for i, t in enumerate(tasks)))


def test_a_running_connector_with_running_tasks_is_ok():
    assert _connector_mark(status("RUNNING", "RUNNING")) == "ok connector RUNNING"


def test_a_failed_task_of_a_running_connector_is_named():
    assert _connector_mark(status("RUNNING", "RUNNING", "FAILED")) == "NOT RUNNING: task 1 FAILED (connector RUNNING)"
    assert _connector_mark(status("RUNNING")) == "NOT RUNNING: no tasks (connector RUNNING)"


def test_a_paused_connector_is_named():
    assert _connector_mark(status("PAUSED", "PAUSED")) == "NOT RUNNING connector PAUSED"
