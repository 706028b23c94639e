"""The operator's operations, one table (cdc_pipeline.commands.operation_table): the fields each needs, the refusals, which
tables of a connector an operation runs on, and start_from refused once a pipeline has read something."""

from __future__ import annotations

import logging

import pytest

from cdc_pipeline.connector_spec import find_connector_spec
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.services import Services
from cdc_pipeline.commands.operation_table import (ALL_TABLES, CHANGING, OPERATIONS, Operation, OperationOutcome,
                                          OperationRequest, check_start_from, needing,
                                          operation_named, run_on_connector)
from cdc_pipeline.pipeline import connector_pipelines
from tests.unit.many_tables_fixture import write_connectors, write_histories

NO_SERVICES = Services(kafka=None, connect=None, source=None)


@pytest.fixture()
def folders(tmp_path):
    connectors, data = write_connectors(tmp_path / "connectors"), tmp_path / "data"
    write_histories(data)
    return connectors, data


def spec_named(folders, name: str):
    connectors, data = folders
    return find_connector_spec(connectors, name, data)


def recording(calls: list, *, changes: bool = False) -> Operation:
    def run(pipe, services, request):
        calls.append((pipe.label, request.whole))
        return OperationOutcome(f"did {pipe.label}", {"label": pipe.label})

    return Operation("resnapshot", "test", changes, run)


def test_the_fields_few_operations_read_are_named_by_those_operations():
    assert needing("date") == ["reset_to_date"] and needing("run_id") == ["reset_to_run"]
    assert CHANGING == {"reset_to_beginning", "reset_to_date", "reset_to_run", "resnapshot",
                        "clear_unfinished_operation"}
    assert list(OPERATIONS)[:3] == ["status", "history", "verify"]


def test_an_unknown_operation_or_a_missing_field_is_refused_with_an_example():
    with pytest.raises(ConfigError, match="'explode' is not one of status, history, verify"):
        operation_named("explode")
    request = OperationRequest(origin="test", run_label="test")
    with pytest.raises(ConfigError, match=r"reset_to_date needs 'date', e\.g\. 2026-11-24 or 2026-11-24T08:00:00Z"):
        OPERATIONS["reset_to_date"].check(request)
    with pytest.raises(ConfigError, match=r"reset_to_run needs 'run_id', e\.g\. scheduled__"):
        OPERATIONS["reset_to_run"](None, NO_SERVICES, request)


def test_history_reads_the_run_history_only(folders):
    [pipe] = connector_pipelines(folders[1], spec_named(folders, "clientes"))
    outcome = OPERATIONS["history"](pipe, NO_SERVICES, OperationRequest(origin="test", run_label="test"))
    assert outcome.message.startswith("scheduled__1 merged: ")
    assert [run["run_id"] for run in outcome.result["runs"]] == ["scheduled__1"]


def test_a_connector_of_several_tables_runs_on_each_table_or_the_one_picked(folders, caplog):
    spec, calls = spec_named(folders, "shop"), []
    request = OperationRequest(origin="test", run_label="test")
    with caplog.at_level(logging.INFO, logger="cdc_pipeline.commands.operation_table"):
        each = run_on_connector(recording(calls), spec, folders[1], NO_SERVICES, request, table="public.b")
    assert each == {"tables": {"public.b": {"label": "shop/public.b"}}}
    assert "did shop/public.b" in caplog.text
    calls.clear()
    operation = Operation("verify", "test", False, recording(calls).run)
    assert set(run_on_connector(operation, spec, folders[1], NO_SERVICES, request)["tables"]) == {"public.a", "public.b"}
    assert calls == [("shop/public.a", False), ("shop/public.b", False)]


def test_a_resnapshot_of_every_table_is_the_connectors_own_snapshot_once(folders):
    calls = []
    result = run_on_connector(recording(calls, changes=True), spec_named(folders, "shop"), folders[1], NO_SERVICES,
                              OperationRequest(origin="test", run_label="test"), table=ALL_TABLES)
    assert result == {"tables": {ALL_TABLES: {"label": "shop/public.a"}}} and calls == [("shop/public.a", True)]


def test_start_from_is_only_for_a_pipeline_that_has_not_read_anything(folders, tmp_path):
    spec = spec_named(folders, "shop")
    with pytest.raises(ConfigError) as refused:
        check_start_from(spec, connector_pipelines(folders[1], spec), "2026-11-24")
    assert "start_from=2026-11-24 is only for a pipeline that has not read anything yet; in shop, public.a resumes" \
        in str(refused.value)
    assert "trigger cdc_shop_ops with operation=reset_to_date and date=2026-11-24" in str(refused.value)
    fresh = connector_pipelines(tmp_path / "empty", spec)
    assert check_start_from(spec, fresh, "2026-11-24").isoformat() == "2026-11-24T00:00:00+00:00"
    assert check_start_from(spec, connector_pipelines(folders[1], spec), None) is None
