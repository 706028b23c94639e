"""verify_every (on in the shipped connector files): a scheduled verify with nothing to compare yet (no first
run, a rebuild under way) is skipped with a line, not a red run; one triggered by hand still fails saying why."""

from __future__ import annotations

from types import SimpleNamespace

from cdc_airflow.ops_runner import _scheduled
from cdc_pipeline.commands.operation_table import nothing_to_verify_yet
from tests.unit.test_asof_support import SyntheticPipeline, r


def test_a_pipeline_that_has_not_run_has_nothing_to_verify_yet(tmp_path):
    from cdc_pipeline.connector_spec import load_connector_spec
    from cdc_pipeline.pipeline import Pipeline
    from tests.stack.pipeline_driver import REPO

    pipe = Pipeline.under(tmp_path, load_connector_spec(REPO / "include" / "connectors" / "clientes.json"))
    assert nothing_to_verify_yet(pipe) == "clientes has not run yet"


def test_a_pipeline_with_a_live_table_is_verified(tmp_path):
    synthetic = SyntheticPipeline(tmp_path)
    synthetic.merge([r(1, "ana", "2026-12-06 10:00:00+00")], read_started="2026-12-06T10:00:05+00:00")
    pipe = SimpleNamespace(label="clientes", layout=synthetic.layout, history=synthetic.history,
                           table_description=lambda: synthetic.store.live().description)
    assert nothing_to_verify_yet(pipe) is None


def test_only_scheduled_runs_skip():
    from airflow.sdk.api.datamodels._generated import DagRunType

    assert _scheduled({"dag_run": SimpleNamespace(run_type=DagRunType("scheduled"))})
    assert not _scheduled({"dag_run": SimpleNamespace(run_type=DagRunType("manual"))})
