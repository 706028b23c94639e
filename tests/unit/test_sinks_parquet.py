"""destiny.parquet rendered from the state by the sink task (cdc_pipeline.sinks.parquet_sink, render_sink)."""

from __future__ import annotations

import json
import os
import shutil
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cdc_pipeline.errors import SinkError
from cdc_pipeline.history import RunRef
from cdc_pipeline.sinks import parquet_sink
from cdc_pipeline.state import StateStore
from cdc_pipeline.tasks.sink import render_sink
from tests.unit.test_sinks_support import change_events, column, pipeline, table

ITEMS = table(column("id", "integer", not_null=True), column("name", "text"), column("amount", "numeric(10,2)"),
              column("day", "date"), column("blob", "bytea"), column("tags", "text[]", category="A", element="text"))
SINKS = [{"type": "csv"}, {"type": "parquet"}]


@pytest.fixture
def pipe(tmp_path):
    pipe = pipeline(tmp_path, SINKS)
    StateStore(pipe.layout).create(ITEMS)
    return pipe


def merge(pipe, *rows) -> None:
    StateStore(pipe.layout).apply(change_events(ITEMS, list(rows)))


def render(pipe, number: int = 1) -> dict:
    return render_sink(pipe, pipe.spec.settings.sinks[1], RunRef(f"manual__run-{number}", 1, 1))


def test_the_file_holds_the_live_state_typed_in_key_order(pipe):
    merge(pipe, ("c", {"id": "10", "name": "", "amount": "1.50", "day": "0044-03-15 BC", "blob": "\\x00ff",
                       "tags": '{a,NULL,"b c"}'}),
          ("c", {"id": "2", "name": None, "amount": "NaN", "day": "infinity", "blob": "\\x", "tags": "{}"}),
          ("c", {"id": "7", "name": "gone"}), ("d", {"id": "7"}))
    summary = render(pipe)
    assert summary["status"] == "full" and summary["rows"] == 2 and summary["reason"] == "first render"
    path = pipe.layout.sink_file("parquet")
    got = pq.read_table(path)
    assert got.schema.types == [pa.int32(), pa.string(), pa.decimal128(10, 2), pa.date32(), pa.binary(),
                                pa.list_(pa.string())]
    assert got.column("id").to_pylist() == [2, 10]
    assert got.column("name").to_pylist() == [None, ""]
    assert got.column("amount").to_pylist() == [None, Decimal("1.50")]
    assert got.column("blob").to_pylist() == [b"", b"\x00\xff"]
    assert got.column("tags").to_pylist() == [[], ["a", None, "b c"]]
    metadata = pq.read_metadata(path).metadata
    assert json.loads(metadata[b"cdc.null_values"]) == {"amount": {"NaN/Infinity (a decimal has none)": 1},
                                                         "day": {"infinity/-infinity (date32 has none)": 1}}
    assert metadata[b"cdc.generation"].decode() == StateStore(pipe.layout).live().id
    assert json.loads(metadata[b"cdc.key_columns"]) == ["id"]
    assert any("written as null" in note for note in summary["notes"])
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"  # owner and group, never everyone


def test_an_unchanged_state_is_not_rendered_again_and_a_new_generation_is(pipe):
    merge(pipe, ("c", {"id": "1", "name": "a"}))
    render(pipe, 1)
    first = pipe.layout.sink_file("parquet").stat().st_mtime_ns
    assert render(pipe, 2)["status"] == "unchanged"
    assert pipe.layout.sink_file("parquet").stat().st_mtime_ns == first
    merge(pipe, ("u", {"id": "1", "name": "b"}))
    summary = render(pipe, 3)
    assert summary["status"] == "full" and "the live generation changed" in summary["reason"]
    assert pq.read_table(pipe.layout.sink_file("parquet")).column("name").to_pylist() == ["b"]


def test_a_missing_file_is_rendered_again(pipe):
    merge(pipe, ("c", {"id": "1", "name": "a"}))
    render(pipe, 1)
    pipe.layout.sink_file("parquet").unlink()
    summary = render(pipe, 2)
    assert summary["status"] == "full" and "missing" in summary["reason"]
    assert pipe.layout.sink_file("parquet").exists()


def test_a_failed_render_leaves_the_previous_file_and_no_temporary_and_is_recorded(pipe, monkeypatch):
    merge(pipe, ("c", {"id": "1", "name": "a"}))
    render(pipe, 1)
    before = pipe.layout.sink_file("parquet").read_bytes()
    merge(pipe, ("c", {"id": "2", "name": "b"}))

    def broken(*args, **kwargs):
        raise SinkError("simulated conversion failure")

    monkeypatch.setattr(parquet_sink, "convert_batch", broken)
    with pytest.raises(SinkError, match="simulated"):
        render(pipe, 2)
    assert pipe.layout.sink_file("parquet").read_bytes() == before
    assert [p.name for p in pipe.layout.folder.iterdir() if p.name.startswith(".destiny.parquet")] == []
    (failed,) = pipe.history.incidents.sink_results("manual__run-2")
    assert failed["status"] == "failed" and "simulated" in failed["error"] and failed["sink"] == "parquet"
    record = pipe.history.runs.get_run("manual__run-2")
    assert record["error"].startswith("sink_parquet: simulated")
    monkeypatch.undo()
    assert render(pipe, 2)["status"] == "full"  # the retry
    assert pipe.history.incidents.sink_results("manual__run-2")[0]["status"] == "full"
    assert pipe.history.runs.get_run("manual__run-2")["error"] is None


def test_the_run_history_records_each_render(pipe):
    merge(pipe, ("c", {"id": "1", "name": "a"}), ("c", {"id": "2", "name": "b"}))
    render(pipe, 1)
    (result,) = pipe.history.incidents.sink_results("manual__run-1")
    assert (result["status"], result["rows"], result["generation"]) == ("full", 2, StateStore(pipe.layout).live().id)
    assert result["seconds"] >= 0 and result["error"] is None


def test_before_the_first_merge_the_sink_waits(tmp_path):
    pipe = pipeline(tmp_path, SINKS)
    assert render(pipe)["status"] == "waiting"
    assert not pipe.layout.sink_file("parquet").exists()


def test_a_reset_state_is_rendered_in_full(pipe):
    merge(pipe, ("c", {"id": "1", "name": "old"}))
    render(pipe, 1)
    aside = pipe.layout.folder.with_name("items.before-reset")
    aside.mkdir()
    for name in ("state", "destiny.csv", "destiny.parquet"):  # what operations.reset moves aside
        shutil.move(str(pipe.layout.folder / name), str(aside / name))
    StateStore(pipe.layout).create(ITEMS, epoch=1)
    merge(pipe, ("c", {"id": "1", "name": "new"}))
    summary = render(pipe, 2)
    assert summary["status"] == "full" and summary["epoch"] == 1
    assert pq.read_table(pipe.layout.sink_file("parquet")).column("name").to_pylist() == ["new"]


def test_a_sink_steps_aside_while_an_operator_command_runs(pipe):
    merge(pipe, ("c", {"id": "1", "name": "a"}))
    pipe.history.incidents.begin_operation("reset", {}, "test")
    summary = render(pipe)
    assert summary["status"] == "skipped" and "did not finish" in summary["reason"]
    assert not pipe.layout.sink_file("parquet").exists()
