"""./stack status, up and stop on a connector of several tables: a status block and a destiny.csv per table, and
every table drained (one that fails is named, the others are drained all the same)."""

from __future__ import annotations

import contextlib

import pytest

from cdc_pipeline.errors import CdcError
from cdc_pipeline.commands.operations import OperationResult
from cdc_pipeline.commands.status import Probes
from devstack.__main__ import destiny_paths, pipeline_lines
from devstack.drain import drain_pipelines
from devstack.settings import StackSettings
from tests.devstack.status_output import pipeline_states
from tests.unit.many_tables_fixture import write_connectors, write_histories


@pytest.fixture()
def settings(tmp_path):
    settings = StackSettings.load(env={}, stack_home=tmp_path, connectors_dir=write_connectors(tmp_path / "connectors"))
    write_histories(settings.data_dir)
    return settings


def test_stack_status_shows_each_table_of_a_connector(settings, monkeypatch):
    topics = []

    @contextlib.contextmanager
    def probes(env, spec):
        yield lambda scoped: topics.append(scoped.topic) or Probes()

    monkeypatch.setattr("cdc_pipeline.commands.cli.connector_probes", probes)
    healthy, lines = pipeline_lines(settings)
    assert pipeline_states("\n".join(lines)) == {"clientes": "OK", "shop/public.a": "OK", "shop/public.b": "FAILING"}
    assert not healthy
    assert topics == ["pgserver1.public.clientes", "pgserver1.public.a", "pgserver1.public.b"]


def test_stack_up_prints_each_tables_destiny_csv(settings):
    data = settings.data_dir
    assert destiny_paths(settings) == [data / "clientes" / "destiny.csv", data / "shop" / "public.a" / "destiny.csv",
                                       data / "shop" / "public.b" / "destiny.csv"]


def test_stack_stop_drains_every_table_that_ran(settings, monkeypatch):
    (settings.connectors_dir / "clientes.json").unlink()
    drained = []

    def drain(pipe, kafka, **_):
        if pipe.spec.qualified_table == "public.b":
            raise CdcError("broker down")
        drained.append(pipe.layout.folder)
        return OperationResult(f"{pipe.label}: drained", {})

    monkeypatch.setattr("cdc_pipeline.commands.operations.drain", drain)
    monkeypatch.setattr("cdc_pipeline.kafka.client.KafkaClients.for_pipeline",
                        classmethod(lambda cls, config, name: contextlib.nullcontext(name)))
    reported = []
    failures = drain_pipelines(settings, reported.append)
    assert drained == [settings.data_dir / "shop" / "public.a"] and reported == ["shop/public.a: drained"]
    assert failures == ["could not drain pipeline shop/public.b: broker down"]
