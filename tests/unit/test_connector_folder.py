"""A connector's folder as its table list changes: adopt a one-table folder, retire, find joining tables."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cdc_pipeline.connector_folder import (ADOPTING, adopt_one_table_folder, joining_tables, prepare_connector_folder,
                                           refuse_flat_over_nested, retire_missing_tables)
from cdc_pipeline.connector_spec import load_connector_spec
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.history import History
from cdc_pipeline.pipeline import Pipeline, connector_pipelines

REPO = Path(__file__).resolve().parents[2]


def connector(tmp_path: Path, tables: str) -> Path:
    document = json.loads((REPO / "include" / "connectors" / "clientes.json").read_text())
    document["config"]["table.include.list"] = tables
    path = tmp_path / "connectors" / "shop.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document | {"name": "shop"}))
    return path


def one_table_folder(data: Path, table: str = "public.a") -> Path:
    """What a one-table pipeline leaves: history, destiny.csv hard-linked into state/, table.json."""
    folder = data / "shop"
    History.open(folder / "runs.sqlite").runs.set_setting("marker", "kept")
    (folder / "state").mkdir()
    (folder / "state" / "g1.csv").write_text("id\n1\n")
    os.link(folder / "state" / "g1.csv", folder / "destiny.csv")
    schema, name = table.split(".")
    (folder / "table.json").write_text(json.dumps({"schema": schema, "table": name}))
    return folder


def test_a_one_table_folder_moves_into_its_tables_folder_and_keeps_its_history(tmp_path):
    data = tmp_path / "data"
    folder = one_table_folder(data)
    spec = load_connector_spec(connector(tmp_path, "public.a,public.b"))
    assert "moved into" in adopt_one_table_folder(data, spec)
    moved = folder / "public.a"
    assert sorted(p.name for p in moved.iterdir()) == ["destiny.csv", "runs.sqlite", "state", "table.json"]
    assert History.open(moved / "runs.sqlite").runs.get_setting("marker") == "kept"
    assert os.path.samefile(moved / "destiny.csv", moved / "state" / "g1.csv")  # still the state's file
    assert not (folder / "runs.sqlite").exists()
    assert adopt_one_table_folder(data, spec) is None  # twice is once
    pipes = connector_pipelines(data, spec)
    assert [p.layout.folder for p in pipes] == [folder / "public.a", folder / "public.b"]


def test_an_adoption_cut_short_is_finished_by_the_next_call(tmp_path):
    data = tmp_path / "data"
    folder = one_table_folder(data)
    spec = load_connector_spec(connector(tmp_path, "public.a,public.b"))
    stage = folder / f"{ADOPTING}public.a"
    stage.mkdir()
    os.rename(folder / "runs.sqlite", stage / "runs.sqlite")  # the crash: one file moved, the rest not
    adopt_one_table_folder(data, spec)
    assert sorted(p.name for p in (folder / "public.a").iterdir()) == ["destiny.csv", "runs.sqlite", "state",
                                                                      "table.json"]
    assert not stage.exists()


def test_two_histories_of_one_table_are_refused_naming_both(tmp_path):
    data = tmp_path / "data"
    folder = one_table_folder(data)
    History.open(folder / "public.a" / "runs.sqlite")
    spec = load_connector_spec(connector(tmp_path, "public.a,public.b"))
    with pytest.raises(ConfigError, match="another history of it; keep one"):
        adopt_one_table_folder(data, spec)
    assert (folder / "runs.sqlite").exists()  # nothing moved


def test_back_to_one_table_over_a_folder_of_several_is_refused_with_the_move(tmp_path):
    data = tmp_path / "data"
    History.open(data / "shop" / "public.a" / "runs.sqlite")
    spec = load_connector_spec(connector(tmp_path, "public.a"))
    with pytest.raises(ConfigError, match="move them up: mv"):
        refuse_flat_over_nested(data, spec)
    with pytest.raises(ConfigError):
        prepare_connector_folder(Pipeline.under(data, spec))


def test_a_table_that_left_is_marked_retired_and_unmarked_when_it_comes_back(tmp_path):
    data = tmp_path / "data"
    for table in ("public.a", "public.b"):
        History.open(data / "shop" / table / "runs.sqlite")
    only_a = load_connector_spec(connector(tmp_path, "public.a,public.c"))
    notes = retire_missing_tables(data, only_a)
    assert len(notes) == 1 and "public.b left" in notes[0]
    assert (data / "shop" / "public.b" / "retired.json").exists()
    assert retire_missing_tables(data, only_a) == []  # said once
    assert (data / "shop" / "public.b" / "runs.sqlite").exists()  # files kept
    retire_missing_tables(data, load_connector_spec(connector(tmp_path, "public.a,public.b")))
    assert not (data / "shop" / "public.b" / "retired.json").exists()


def test_tables_the_registered_connector_does_not_capture_yet_are_joining(tmp_path):
    spec = load_connector_spec(connector(tmp_path, "public.a,public.b,public.c"))
    assert [t.qualified for t in joining_tables(spec, {"table.include.list": "public.a, public.b"})] == ["public.c"]
    assert joining_tables(spec, None) == []  # not registered: its first snapshot covers every table
    assert joining_tables(spec, {"table.include.list": "public.a,public.b,public.c"}) == []


def test_when_connect_forgot_the_connector_the_tables_last_sent_decide(tmp_path):
    """Connect may lose a connector's config and keep its offsets: Debezium then resumes without a snapshot, so a
    table added meanwhile must still be found as joining, from the list recorded when Connect last accepted one."""
    from cdc_pipeline.sent_tables import SENT_TABLES, record_sent_tables, sent_tables

    folder = tmp_path / "data" / "shop"
    before = load_connector_spec(connector(tmp_path, "public.a,public.b"))
    assert sent_tables(folder) is None
    record_sent_tables(folder, before.name, before.table_names)
    assert sent_tables(folder) == ["public.a", "public.b"]
    written = (folder / SENT_TABLES).stat().st_mtime_ns
    record_sent_tables(folder, before.name, before.table_names)  # unchanged: not rewritten every run
    assert (folder / SENT_TABLES).stat().st_mtime_ns == written

    now = load_connector_spec(connector(tmp_path, "public.a,public.b,public.c"))
    assert [t.qualified for t in joining_tables(now, None, sent_tables(folder))] == ["public.c"]
    # Connect's own config wins when it has one.
    assert joining_tables(now, {"table.include.list": "public.a,public.b,public.c"}, sent_tables(folder)) == []

    (folder / SENT_TABLES).write_text("{not json")
    with pytest.raises(ConfigError, match="cannot be read .* Delete it only if Kafka Connect still knows"):
        sent_tables(folder)


def test_adopting_a_one_table_folder_leaves_the_sent_tables_record_and_the_owner_in_the_connector_folder(tmp_path):
    from cdc_pipeline.sent_tables import SENT_TABLES, record_sent_tables
    from cdc_pipeline.ownership import OWNER_FILE, Worker, check_owner

    data = tmp_path / "data"
    folder = one_table_folder(data)
    one = load_connector_spec(connector(tmp_path, "public.a"))
    record_sent_tables(folder, one.name, one.table_names)
    check_owner(folder, one, Worker("q", None, "h"), read_before=lambda: None)
    adopt_one_table_folder(data, load_connector_spec(connector(tmp_path, "public.a,public.b")))
    assert (folder / SENT_TABLES).exists() and not (folder / "public.a" / SENT_TABLES).exists()
    assert (folder / OWNER_FILE).exists() and not (folder / "public.a" / OWNER_FILE).exists()


def test_adopting_a_one_table_folder_leaves_a_marked_stop_of_the_connector_in_the_connector_folder(tmp_path):
    """A whole rebuild killed with the connector stopped, then tables added: the marker stays the connector's, so
    the next registration still finds it (recovery/connector_stop.py)."""
    from cdc_pipeline.pipeline_lock import CONNECTOR_STOPPED, connector_stop_lock

    data = tmp_path / "data"
    folder = one_table_folder(data)
    with connector_stop_lock(folder):
        pass
    (folder / CONNECTOR_STOPPED).write_text('{"purpose": "whole_rebuild", "table": "public.a"}')
    adopt_one_table_folder(data, load_connector_spec(connector(tmp_path, "public.a,public.b")))
    assert (folder / CONNECTOR_STOPPED).exists() and (folder / ".connector-stop.lock").exists()
    assert sorted(p.name for p in (folder / "public.a").iterdir()) == ["destiny.csv", "runs.sqlite", "state", "table.json"]
