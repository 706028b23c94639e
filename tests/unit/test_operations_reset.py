"""operations.reset against a scripted broker: where it moves the pipeline, and when it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdc_pipeline.commands import operations
from cdc_pipeline.errors import DataLossError
from tests.unit.scripted_kafka import ScriptedConsumer, clients_for, log
from tests.unit.test_sinks_support import pipeline


@pytest.fixture
def pipe(tmp_path):
    pipe = pipeline(tmp_path, [{"type": "csv"}])
    pipe.layout.destiny.parent.mkdir(parents=True, exist_ok=True)
    pipe.layout.destiny.write_text("id,v\n1,kept\n")
    return pipe


def kafka_for(pipe, logs, **kw) -> ScriptedConsumer:
    return ScriptedConsumer(logs, topic=pipe.spec.topic, **kw)


def committed(consumer: ScriptedConsumer) -> list:
    return [call[1] for call in consumer.calls if call[0] == "commit"]


def test_to_the_beginning_refuses_a_topic_whose_oldest_events_retention_deleted_and_changes_nothing(pipe):
    consumer = kafka_for(pipe, {0: log(range(0, 10)), 1: log(range(40, 50), start=40)})
    with pytest.raises(DataLossError) as refused:
        operations.reset(pipe, clients_for(consumer), to="beginning", origin="test")
    message = str(refused.value)
    assert "no longer starts at offset 0 ({1: 40})" in message, message
    assert f"python -m cdc_pipeline resnapshot --connector {pipe.spec.name}" in message, message
    assert pipe.layout.destiny.read_text() == "id,v\n1,kept\n"  # nothing moved aside
    assert committed(consumer) == [] and pipe.history.runs.resume_point() is None
    [operation] = pipe.history.incidents.operations()
    assert (operation["kind"], operation["status"]) == ("reset", "failed") and "retention" in operation["detail"]


def test_to_the_beginning_of_a_whole_topic_moves_the_files_aside_and_commits_offset_zero(pipe):
    consumer = kafka_for(pipe, {0: log(range(0, 10)), 1: log(range(0, 5))})
    result = operations.reset(pipe, clients_for(consumer), to="beginning", origin="test")
    assert committed(consumer) == [[(pipe.spec.topic, 0, 0), (pipe.spec.topic, 1, 0)]]
    assert result.detail["starts"] == {0: 0, 1: 0}
    assert not pipe.layout.destiny.exists()
    aside = result.detail["aside"]
    assert aside and Path(aside, "destiny.csv").read_text() == "id,v\n1,kept\n"
    [operation] = pipe.history.incidents.operations()
    assert (operation["kind"], operation["status"]) == ("reset", "done")
    resume = pipe.history.runs.resume_point()
    assert resume.ends == {0: 0, 1: 0} and resume.epoch == result.detail["epoch"]
