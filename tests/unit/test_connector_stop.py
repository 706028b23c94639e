"""The marker of a connector the pipeline stopped, and how registration heals what a killed step left.

Kafka Connect is a fake here (it records the calls); the history and the locks are real. The kills themselves, on
the real stack: tests/stack/test_crash_matrix.py.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from cdc_pipeline.connector_spec import load_connector_spec
from cdc_pipeline.errors import ConnectorError
from cdc_pipeline.pipeline import connector_pipelines
from cdc_pipeline.pipeline_lock import CONNECTOR_STOPPED
from cdc_pipeline.recovery.connector_stop import (CONFIRM, WHOLE_REBUILD, heal_interrupted_stop, marked_stop,
                                                  read_marker)

REPO = Path(__file__).resolve().parents[2]


class FakeConnect:
    def __init__(self, state: str = "RUNNING") -> None:
        self.state, self.calls = state, []

    def status(self, name):
        from cdc_pipeline.kafka_connect import ConnectorStatus

        return ConnectorStatus(name, self.state, None, ({"id": 0, "state": self.state},))

    def stop(self, name):
        self.calls.append(("stop", name))
        self.state = "STOPPED"

    def resume(self, name):
        self.calls.append(("resume", name))
        self.state = "RUNNING"


@pytest.fixture(params=["one table", "three tables"])
def pipes(request, tmp_path):
    document = json.loads((REPO / "include" / "connectors" / "clientes.json").read_text())
    if request.param == "three tables":
        document["config"]["table.include.list"] = "public.a,public.b,public.c"
    path = tmp_path / "connectors" / "shop.json"
    path.parent.mkdir()
    path.write_text(json.dumps(document))
    pipes = connector_pipelines(tmp_path / "data", load_connector_spec(path))
    for pipe in pipes:
        pipe.layout.folder.mkdir(parents=True, exist_ok=True)
    return pipes


def never(*_args):
    raise AssertionError("no whole rebuild should start again here")


class Killed(Exception):
    """Stands for the kill: the step's body ends early, its lock is released, nothing after it runs."""


def killed_while_stopped(pipe, connect, purpose: str, **detail) -> None:
    with pytest.raises(Killed):
        with marked_stop(pipe, connect, purpose, **detail):
            raise Killed


def test_a_stop_of_the_pipeline_is_marked_until_it_is_cleared(pipes):
    connect = FakeConnect()
    with marked_stop(pipes[-1], connect, CONFIRM):
        marker = read_marker(pipes[0])  # one marker per connector, whichever table wrote it
        assert marker["purpose"] == CONFIRM and marker["table"] == pipes[-1].spec.qualified_table
        assert connect.calls == [("stop", pipes[0].spec.name)]
    assert read_marker(pipes[0]) is None


def test_a_confirmation_killed_while_stopped_is_resumed_by_the_next_registration(pipes):
    connect = FakeConnect()
    killed_while_stopped(pipes[-1], connect, CONFIRM)
    healed = heal_interrupted_stop(pipes, connect, restart_whole_rebuild=never)
    assert "resumed" in healed and connect.state == "RUNNING" and read_marker(pipes[0]) is None
    assert heal_interrupted_stop(pipes, connect, restart_whole_rebuild=never) is None  # nothing left to heal


def test_a_whole_rebuild_killed_before_it_resumed_is_started_again(pipes):
    connect = FakeConnect()
    pipe = pipes[-1]
    dead_command = pipe.history.incidents.begin_operation("resnapshot", {}, "cli")  # its process was killed
    recovery_id = pipe.history.incidents.start_recovery(run_id="r1", reason="operator", detail="asked", lost=None,
                                                         epoch=1)
    killed_while_stopped(pipe, connect, WHOLE_REBUILD, rebuild=recovery_id)
    started = []

    def again(which, recovery):
        started.append((which.spec.qualified_table, recovery.id, recovery.step))
        with marked_stop(which, connect, WHOLE_REBUILD):  # as start_whole_rebuild does
            connect.resume(which.spec.name)
        return recovery

    healed = heal_interrupted_stop(pipes, connect, restart_whole_rebuild=again)
    assert started == [(pipe.spec.qualified_table, recovery_id, "requested")]
    assert f"rebuild {recovery_id} of {pipe.spec.qualified_table} was interrupted" in healed
    # The operator's resnapshot is done once its rebuild started again: the runs no longer step aside for it.
    assert pipe.history.incidents.running_operation() is None
    (command,) = [op for op in pipe.history.incidents.operations(5) if op["id"] == dead_command]
    assert command["status"] == "done" and "started its rebuild again" in command["detail"]


def test_a_whole_rebuild_killed_after_it_recorded_resumed_only_clears_its_marker(pipes):
    connect = FakeConnect()
    pipe = pipes[0]
    recovery_id = pipe.history.incidents.start_recovery(run_id="r1", reason="operator", detail="asked", lost=None,
                                                         epoch=1)
    with pytest.raises(Killed):
        with marked_stop(pipe, connect, WHOLE_REBUILD, rebuild=recovery_id):
            connect.resume(pipe.spec.name)
            pipe.history.incidents.recovery_step(recovery_id, "resumed")
            raise Killed  # ... before the marker was cleared
    assert "resumed" in heal_interrupted_stop(pipes, connect, restart_whole_rebuild=never)
    assert read_marker(pipe) is None and connect.calls[-1] == ("resume", pipe.spec.name)


def test_a_connector_stopped_by_someone_else_is_refused_with_how_to_resume_it(pipes):
    connect = FakeConnect(state="STOPPED")
    with pytest.raises(ConnectorError, match=rf"STOPPED in Kafka Connect, and not by this pipeline \(no {CONNECTOR_STOPPED}.*"
                                             r"PUT /connectors/\w+/resume.*or pause the DAG"):
        heal_interrupted_stop(pipes, connect, restart_whole_rebuild=never)
    assert connect.calls == []  # not resumed behind the operator's back


def test_a_marker_whose_step_still_runs_is_left_to_that_step(pipes):
    """The stop lock is held from the stop to the resume: registration waits for it, then finds the marker gone."""
    connect = FakeConnect()
    holding, release = threading.Event(), threading.Event()

    def step():
        with marked_stop(pipes[0], connect, CONFIRM):
            holding.set()
            release.wait(10)
            connect.resume(pipes[0].spec.name)

    worker = threading.Thread(target=step)
    worker.start()
    assert holding.wait(10)
    threading.Timer(0.5, release.set).start()
    began = time.monotonic()
    assert heal_interrupted_stop(pipes, connect, restart_whole_rebuild=never) is None
    worker.join(10)
    assert time.monotonic() - began >= 0.4 and connect.calls.count(("resume", pipes[0].spec.name)) == 1
