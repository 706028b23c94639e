"""Merge rules: latest source position wins per key, deletes as tombstones, TOAST placeholders, replays."""

from __future__ import annotations

import pandas as pd
import pytest

from cdc_pipeline.batch_buffer import BufferMeta
from cdc_pipeline.debezium.events import UNAVAILABLE_VALUE
from cdc_pipeline.merge import DestinyTable, merge_batch

META = BufferMeta("public.clientes", ("id", "nombre", "email"), ("id",))
KEY_TYPES = {"id": "integer"}


def events(*rows: tuple) -> pd.DataFrame:
    """Rows of (op, id, nombre, email, lsn, partition, offset) as buffer.csv holds them (all text)."""
    records = [
        {"operacion": op, "id": id_, "nombre": nombre, "email": email, "timestamp": "2026-11-24 00:00:00+00",
         "_topic": "t", "_partition": str(p), "_offset": str(o), "_lsn": str(lsn)}
        for op, id_, nombre, email, lsn, p, o in rows
    ]
    return pd.DataFrame(records, dtype=object)


@pytest.fixture
def table(tmp_path) -> DestinyTable:
    return DestinyTable(tmp_path)


def destiny(table: DestinyTable) -> str:
    return table.csv_path.read_text(encoding="utf-8")


def test_inserts_updates_and_deletes_give_the_current_state(table):
    result = merge_batch(table, META, events(
        ("r", "2", "Bruno", "b@x", 100, 0, 0),
        ("c", "1", "Ana", "a@x", 200, 0, 1),
        ("u", "1", "Ana María", "a@x", 300, 0, 2),
        ("c", "3", "Carla", None, 400, 1, 0),
        ("d", "2", None, None, 500, 0, 3),
    ), KEY_TYPES)
    assert destiny(table) == "id,nombre,email\n1,Ana María,a@x\n3,Carla,\n"
    assert (result.inserted, result.updated, result.deleted, result.destiny_rows) == (2, 0, 0, 2)


def test_rows_are_ordered_by_numeric_key_not_text(table):
    merge_batch(table, META, events(("c", "10", "x", "", 1, 0, 0), ("c", "9", "y", "", 2, 0, 1)), KEY_TYPES)
    assert destiny(table) == 'id,nombre,email\n9,y,""\n10,x,""\n'


def test_merging_the_same_batch_twice_changes_nothing(table):
    batch = events(("c", "1", "Ana", "a@x", 200, 0, 0), ("u", "1", "Ana2", None, 300, 0, 1))
    merge_batch(table, META, batch, KEY_TYPES)
    first = destiny(table)
    second_result = merge_batch(table, META, batch, KEY_TYPES)
    assert destiny(table) == first == "id,nombre,email\n1,Ana2,\n"
    assert second_result.stale == 2
    assert (second_result.inserted, second_result.updated, second_result.deleted) == (0, 0, 0)


def test_an_older_batch_merged_late_never_regresses_a_row(table):
    newer = events(("u", "1", "new", "n@x", 500, 0, 5))
    older = events(("c", "1", "old", "o@x", 100, 0, 1), ("c", "2", "two", "t@x", 120, 0, 2))
    merge_batch(table, META, newer, KEY_TYPES)
    result = merge_batch(table, META, older, KEY_TYPES)
    assert destiny(table) == "id,nombre,email\n1,new,n@x\n2,two,t@x\n"
    assert result.stale == 1 and result.inserted == 1


def test_a_deleted_key_stays_deleted_when_an_older_insert_arrives_late(table):
    merge_batch(table, META, events(("c", "7", "x", "x@x", 100, 0, 0), ("d", "7", None, None, 200, 0, 1)), KEY_TYPES)
    merge_batch(table, META, events(("c", "7", "x", "x@x", 100, 0, 0)), KEY_TYPES)
    assert destiny(table) == "id,nombre,email\n"


def test_a_deleted_key_can_be_inserted_again(table):
    merge_batch(table, META, events(("c", "7", "x", "x@x", 100, 0, 0), ("d", "7", None, None, 200, 0, 1)), KEY_TYPES)
    result = merge_batch(table, META, events(("c", "7", "again", None, 300, 0, 2)), KEY_TYPES)
    assert destiny(table) == "id,nombre,email\n7,again,\n"
    assert result.inserted == 1


def test_several_updates_of_one_key_in_one_transaction_keep_the_last(table):
    merge_batch(table, META, events(
        ("u", "1", "a", "1", 300, 2, 10), ("u", "1", "b", "2", 301, 2, 11), ("u", "1", "c", "3", 302, 2, 12),
    ), KEY_TYPES)
    assert destiny(table) == "id,nombre,email\n1,c,3\n"


def test_same_lsn_is_ordered_by_partition_offset(table):
    merge_batch(table, META, events(("r", "1", "second", "", 50, 0, 2), ("r", "1", "first", "", 50, 0, 1)), KEY_TYPES)
    assert destiny(table) == 'id,nombre,email\n1,second,""\n'


def test_unchanged_toast_placeholder_keeps_the_previous_value(table):
    merge_batch(table, META, events(("c", "1", "long text", "a@x", 100, 0, 0)), KEY_TYPES)
    merge_batch(table, META, events(("u", "1", UNAVAILABLE_VALUE, "b@x", 200, 0, 1)), KEY_TYPES)
    assert destiny(table) == "id,nombre,email\n1,long text,b@x\n"


def test_toast_placeholder_takes_the_value_of_an_earlier_event_in_the_same_batch(table):
    merge_batch(table, META, events(
        ("c", "1", "v1", "a", 100, 0, 0), ("u", "1", "v2", "b", 200, 0, 1), ("u", "1", UNAVAILABLE_VALUE, "c", 300, 0, 2),
    ), KEY_TYPES)
    assert destiny(table) == "id,nombre,email\n1,v2,c\n"


def test_toast_placeholder_never_turns_a_null_into_an_old_value(table):
    merge_batch(table, META, events(("c", "1", "v1", "a", 100, 0, 0), ("u", "1", None, "b", 200, 0, 1),
                                    ("u", "1", "v3", UNAVAILABLE_VALUE, 300, 0, 2)), KEY_TYPES)
    assert destiny(table) == "id,nombre,email\n1,v3,b\n"
    merge_batch(table, META, events(("u", "1", UNAVAILABLE_VALUE, "z", 400, 0, 3)), KEY_TYPES)
    assert destiny(table) == "id,nombre,email\n1,v3,z\n"


def test_toast_placeholder_with_no_earlier_value_is_kept_visible_and_counted(table):
    result = merge_batch(table, META, events(("u", "1", UNAVAILABLE_VALUE, "b", 200, 0, 1)), KEY_TYPES)
    assert destiny(table) == f"id,nombre,email\n1,{UNAVAILABLE_VALUE},b\n"
    assert result.unavailable_values == 1


def test_null_and_empty_string_stay_apart_through_the_state_file(table):
    merge_batch(table, META, events(("c", "1", None, "", 100, 0, 0)), KEY_TYPES)
    merge_batch(table, META, events(("c", "2", "x", "y", 200, 0, 1)), KEY_TYPES)
    assert destiny(table) == 'id,nombre,email\n1,,""\n2,x,y\n'


def test_composite_key_and_text_key_order(tmp_path):
    meta = BufferMeta("public.t", ("k1", "k2", "v"), ("k1", "k2"))
    frame = pd.DataFrame([
        {"operacion": "c", "k1": "2", "k2": "b", "v": "1", "_lsn": "1", "_partition": "0", "_offset": "0"},
        {"operacion": "c", "k1": "2", "k2": "a,b", "v": "2", "_lsn": "2", "_partition": "1", "_offset": "0"},
        {"operacion": "c", "k1": "-1", "k2": "z", "v": "3", "_lsn": "3", "_partition": "0", "_offset": "1"},
        {"operacion": "d", "k1": "2", "k2": "b", "v": None, "_lsn": "4", "_partition": "0", "_offset": "2"},
    ], dtype=object)
    table = DestinyTable(tmp_path)
    merge_batch(table, meta, frame, {"k1": "integer", "k2": "text"})
    assert table.csv_path.read_text() == 'k1,k2,v\n-1,z,3\n2,"a,b",2\n'


def test_a_column_added_at_the_source_is_appended_with_nulls_for_old_rows(table):
    merge_batch(table, META, events(("c", "1", "a", "a@x", 100, 0, 0)), KEY_TYPES)
    wider = BufferMeta("public.clientes", ("id", "nombre", "email", "phone"), ("id",))
    frame = events(("c", "2", "b", "b@x", 200, 0, 1))
    frame.insert(4, "phone", ["555"])
    merge_batch(table, wider, frame, KEY_TYPES)
    assert destiny(table) == "id,nombre,email,phone\n1,a,a@x,\n2,b,b@x,555\n"


def test_empty_batch_renders_existing_state(table):
    merge_batch(table, META, events(("c", "1", "a", "b", 1, 0, 0)), KEY_TYPES)
    table.csv_path.unlink()
    merge_batch(table, META, pd.DataFrame(), KEY_TYPES)
    assert destiny(table) == "id,nombre,email\n1,a,b\n"


def test_a_replayed_batch_after_a_reload_renders_nulls_from_the_state_file(table):
    # All events stale: destiny.csv is rendered straight from the state file, NULLs included.
    batch = events(("c", "1", None, "", 100, 0, 0))
    merge_batch(table, META, batch, KEY_TYPES)
    merge_batch(table, META, batch, KEY_TYPES)
    assert destiny(table) == 'id,nombre,email\n1,,""\n'


def test_date_keys_order_by_time_including_bc_and_long_years(tmp_path):
    meta = BufferMeta("public.t", ("d", "v"), ("d",))
    days = ["2026-01-01", "0044-03-15 BC", "10000-01-01", "0043-01-01", "0001-01-01 BC", "infinity", "-infinity"]
    frame = pd.DataFrame([{"operacion": "c", "d": d, "v": "x", "_lsn": str(i + 1), "_partition": "0", "_offset": str(i)}
                          for i, d in enumerate(days)], dtype=object)
    table = DestinyTable(tmp_path)
    merge_batch(table, meta, frame, {"d": "date"})
    ordered = [line.split(",")[0] for line in table.csv_path.read_text().splitlines()[1:]]
    assert ordered == ["-infinity", "0044-03-15 BC", "0001-01-01 BC", "0043-01-01", "2026-01-01", "10000-01-01", "infinity"]


def test_a_column_missing_from_the_batch_keeps_its_value(table):
    merge_batch(table, META, events(("c", "1", "a", "a@x", 100, 0, 0)), KEY_TYPES)
    narrow = BufferMeta("public.clientes", ("id", "nombre"), ("id",))
    frame = events(("u", "1", "b", None, 200, 0, 1)).drop(columns=["email"])
    merge_batch(table, narrow, frame, KEY_TYPES)
    assert destiny(table) == "id,nombre,email\n1,b,a@x\n"
