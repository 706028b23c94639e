"""finish_run sums up the run's sinks in its summary and its one line (cdc_pipeline.sinks.results)."""

from __future__ import annotations

import pytest

from cdc_pipeline.errors import RunFailedError
from cdc_pipeline.history import RunRef
from cdc_pipeline.sinks.results import sinks_line
from cdc_pipeline.state import StateStore
from cdc_pipeline.tasks.finish import finish_run
from cdc_pipeline.tasks.sink import render_sink
from tests.unit.test_sinks_support import change_events, column, pipeline, table

ITEMS = table(column("id", "integer", not_null=True), column("v", "text"))


def test_the_runs_line_and_summary_name_each_sink(tmp_path):
    pipe = pipeline(tmp_path, [{"type": "csv"}, {"type": "parquet"}, {"type": "postgres", "table": "public.r"}])
    store = StateStore(pipe.layout)
    store.create(ITEMS)
    store.apply(change_events(ITEMS, [("c", {"id": "1", "v": "a"}), ("c", {"id": "2", "v": "b"})]))
    run = RunRef("manual__finish", 1, 1)
    render_sink(pipe, pipe.spec.settings.sinks[1], run)
    summary = finish_run(pipe, run)
    assert summary["line"].endswith("sinks: parquet full 2 rows")
    assert summary["sinks"]["parquet"]["status"] == "full" and summary["sinks"]["parquet"]["rows"] == 2

    pipe.history.incidents.record_sink(run.run_id, "postgres:public.r", status="failed", generation=None, rows=None,
                                       seconds=0.1, error="cannot connect")
    with pytest.raises(RunFailedError, match=r"sinks: parquet full 2 rows, postgres:public.r FAILED"):
        finish_run(pipe, run, ["sink_postgres_public_r"])


def test_a_run_without_sinks_says_nothing_about_them():
    assert sinks_line([]) == ""
