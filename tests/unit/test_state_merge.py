"""Merge rules of the state store: ported from tests/unit/test_merge.py, plus TRUNCATE, incarnations, replays."""

from __future__ import annotations

import pytest

from cdc_pipeline.errors import BatchFileError, StateError
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.state import StateStore
from cdc_pipeline.state.resolve import UNAVAILABLE_VALUE
from tests.unit.test_state_support import describe, events, frame


# ``layout`` and ``store`` (chunks of 2 rows): tests/unit/conftest.py


def destiny(layout: PipelineLayout) -> str:
    return layout.destiny.read_text(encoding="utf-8")


def test_inserts_updates_and_deletes_give_the_current_state(store, layout):
    result = store.apply(events(
        ("r", "2", "Bruno", "b@x", 100, 0, 0),
        ("c", "1", "Ana", "a@x", 200, 0, 1),
        ("u", "1", "Ana María", "a@x", 300, 0, 2),
        ("c", "3", "Carla", None, 400, 1, 0),
        ("d", "2", None, None, 500, 0, 3),
    ))
    assert destiny(layout) == "id,nombre,email\n1,Ana María,a@x\n3,Carla,\n"
    assert (result.inserted, result.updated, result.deleted, result.destiny_rows) == (2, 0, 0, 2)


def test_rows_are_ordered_by_numeric_key_not_text(store, layout):
    store.apply(events(("c", "10", "x", "", 1, 0, 0), ("c", "9", "y", "", 2, 0, 1)))
    assert destiny(layout) == 'id,nombre,email\n9,y,""\n10,x,""\n'


def test_merging_the_same_batch_twice_changes_nothing(store, layout):
    batch = events(("c", "1", "Ana", "a@x", 200, 0, 0), ("u", "1", "Ana2", None, 300, 0, 1))
    store.apply(batch)
    first, generation = destiny(layout), store.live().id
    second = store.apply(batch)
    assert destiny(layout) == first == "id,nombre,email\n1,Ana2,\n"
    assert second.stale == 2 and second.replay and not second.written
    assert (second.inserted, second.updated, second.deleted) == (0, 0, 0)
    assert store.live().id == generation
    assert second.applied.num_rows == 0


def test_an_older_batch_merged_late_never_regresses_a_row(store, layout):
    store.apply(events(("u", "1", "new", "n@x", 500, 0, 5)))
    result = store.apply(events(("c", "1", "old", "o@x", 100, 0, 1), ("c", "2", "two", "t@x", 120, 0, 2)))
    assert destiny(layout) == "id,nombre,email\n1,new,n@x\n2,two,t@x\n"
    assert result.stale == 1 and result.inserted == 1


def test_a_deleted_key_stays_deleted_when_an_older_insert_arrives_late(store, layout):
    store.apply(events(("c", "7", "x", "x@x", 100, 0, 0), ("d", "7", None, None, 200, 0, 1)))
    # Another partition, so the replay shortcut cannot answer: the tombstone's position must.
    result = store.apply(events(("c", "7", "x", "x@x", 100, 1, 0)))
    assert destiny(layout) == "id,nombre,email\n"
    assert result.stale == 1 and not result.replay and not result.written


def test_a_deleted_key_can_be_inserted_again(store, layout):
    store.apply(events(("c", "7", "x", "x@x", 100, 0, 0), ("d", "7", None, None, 200, 0, 1)))
    result = store.apply(events(("c", "7", "again", None, 300, 0, 2)))
    assert destiny(layout) == "id,nombre,email\n7,again,\n"
    assert result.inserted == 1


def test_several_updates_of_one_key_in_one_transaction_keep_the_last(store, layout):
    store.apply(events(("u", "1", "a", "1", 300, 2, 10), ("u", "1", "b", "2", 301, 2, 11), ("u", "1", "c", "3", 302, 2, 12)))
    assert destiny(layout) == "id,nombre,email\n1,c,3\n"


def test_within_a_partition_the_offset_orders_events_not_the_lsn(store, layout):
    # A transaction straddling the snapshot: its change streams with a lower LSN than the snapshot read.
    store.apply(events(("r", "1", "snapshot", "", 50, 0, 1), ("u", "1", "streamed", "", 40, 0, 2)))
    assert destiny(layout) == 'id,nombre,email\n1,streamed,""\n'


def test_same_lsn_is_ordered_by_partition_offset(store, layout):
    store.apply(events(("r", "1", "second", "", 50, 0, 2), ("r", "1", "first", "", 50, 0, 1)))
    assert destiny(layout) == 'id,nombre,email\n1,second,""\n'


def test_across_incarnations_the_lsn_decides(store, layout):
    store.apply(events(("c", "1", "v1", "", 100, 0, 5), ("u", "1", "v2", "", 200, 0, 6), incarnation=0))
    # The broker lost its data; Connect re-sent the older event at a low offset, then a new change came.
    resent = store.apply(events(("c", "1", "v1", "", 100, 3, 0), incarnation=1))
    assert resent.stale == 1 and destiny(layout) == 'id,nombre,email\n1,v2,""\n'
    store.apply(events(("u", "1", "v3", "", 300, 3, 1), incarnation=1))
    # Within the new incarnation, offsets order the key's events again.
    store.apply(events(("u", "1", "v4", "", 290, 3, 2), incarnation=1))
    assert destiny(layout) == 'id,nombre,email\n1,v4,""\n'


def test_unchanged_toast_placeholder_keeps_the_previous_value(store, layout):
    store.apply(events(("c", "1", "long text", "a@x", 100, 0, 0)))
    result = store.apply(events(("u", "1", UNAVAILABLE_VALUE, "b@x", 200, 0, 1)))
    assert destiny(layout) == "id,nombre,email\n1,long text,b@x\n"
    assert result.applied.column("nombre").to_pylist() == ["long text"]


def test_toast_placeholder_takes_the_value_of_an_earlier_event_in_the_same_batch(store, layout):
    store.apply(events(("c", "1", "v1", "a", 100, 0, 0), ("u", "1", "v2", "b", 200, 0, 1), ("u", "1", UNAVAILABLE_VALUE, "c", 300, 0, 2)))
    assert destiny(layout) == "id,nombre,email\n1,v2,c\n"


def test_toast_placeholder_never_turns_a_null_into_an_old_value(store, layout):
    store.apply(events(("c", "1", "v1", "a", 100, 0, 0), ("u", "1", None, "b", 200, 0, 1), ("u", "1", "v3", UNAVAILABLE_VALUE, 300, 0, 2)))
    assert destiny(layout) == "id,nombre,email\n1,v3,b\n"
    store.apply(events(("u", "1", UNAVAILABLE_VALUE, "z", 400, 0, 3)))
    assert destiny(layout) == "id,nombre,email\n1,v3,z\n"
    store.apply(events(("u", "1", None, "z", 500, 0, 4)))
    store.apply(events(("u", "1", UNAVAILABLE_VALUE, "y", 600, 0, 5)))
    assert destiny(layout) == "id,nombre,email\n1,,y\n"


def test_toast_placeholder_with_no_earlier_value_is_kept_visible_and_counted(store, layout):
    result = store.apply(events(("u", "1", UNAVAILABLE_VALUE, "b", 200, 0, 1)))
    assert destiny(layout) == f"id,nombre,email\n1,{UNAVAILABLE_VALUE},b\n"
    assert result.unavailable_values == 1


def test_null_and_empty_string_stay_apart_through_the_state(store, layout):
    store.apply(events(("c", "1", None, "", 100, 0, 0)))
    store.apply(events(("c", "2", "x", "y", 200, 0, 1)))
    assert destiny(layout) == 'id,nombre,email\n1,,""\n2,x,y\n'
    store.apply(events(("u", "1", UNAVAILABLE_VALUE, UNAVAILABLE_VALUE, 300, 0, 2)))
    assert destiny(layout) == 'id,nombre,email\n1,,""\n2,x,y\n'


def test_composite_key_and_text_key_order(tmp_path):
    store = StateStore(PipelineLayout(tmp_path / "t"), chunk_rows=2)
    store.create(describe({"k1": "integer", "k2": "text", "v": "text"}, ("k1", "k2"), "t"))
    store.apply(frame([
        {"operacion": "c", "k1": "2", "k2": "b", "v": "1", "_lsn": "1", "_partition": "0", "_offset": "0"},
        {"operacion": "c", "k1": "2", "k2": "a,b", "v": "2", "_lsn": "2", "_partition": "1", "_offset": "0"},
        {"operacion": "c", "k1": "-1", "k2": "z", "v": "3", "_lsn": "3", "_partition": "0", "_offset": "1"},
        {"operacion": "d", "k1": "2", "k2": "b", "v": None, "_lsn": "4", "_partition": "0", "_offset": "2"},
        {"operacion": "c", "k1": "2", "k2": "a", "v": "4", "_lsn": "5", "_partition": "0", "_offset": "3"},
    ]))
    assert (tmp_path / "t" / "destiny.csv").read_text() == 'k1,k2,v\n-1,z,3\n2,a,4\n2,"a,b",2\n'


def test_a_batch_with_a_column_the_state_does_not_have_is_refused(store, layout):
    batch = events(("c", "2", "b", "b@x", 200, 0, 1))
    batch.insert(4, "phone", ["555"])
    with pytest.raises(StateError, match=r"\['phone'\]"):
        store.apply(batch)


def test_an_empty_batch_writes_nothing_and_a_deleted_destiny_is_relinked(store, layout):
    store.apply(events(("c", "1", "a", "b", 1, 0, 0)))
    generation = store.live().id
    layout.destiny.unlink()
    reopened = StateStore(layout)
    result = reopened.apply(frame([]))
    assert destiny(layout) == "id,nombre,email\n1,a,b\n"
    assert result.events == 0 and not result.written and reopened.live().id == generation
    assert any("was missing" in note for note in reopened.notes)


def test_a_replayed_batch_after_a_reopen_keeps_nulls(store, layout):
    batch = events(("c", "1", None, "", 100, 0, 0))
    store.apply(batch)
    StateStore(layout).apply(batch)
    assert destiny(layout) == 'id,nombre,email\n1,,""\n'


def test_date_keys_order_by_time_including_bc_and_long_years(tmp_path):
    store = StateStore(PipelineLayout(tmp_path / "t"), chunk_rows=3)
    store.create(describe({"d": "date", "v": "text"}, ("d",), "t"))
    days = ["2026-01-01", "0044-03-15 BC", "10000-01-01", "0043-01-01", "0001-01-01 BC", "infinity", "-infinity"]
    store.apply(frame([{"operacion": "c", "d": d, "v": "x", "_lsn": str(i + 1), "_partition": "0", "_offset": str(i)}
                       for i, d in enumerate(days)]))
    ordered = [line.split(",")[0] for line in (tmp_path / "t" / "destiny.csv").read_text().splitlines()[1:]]
    assert ordered == ["-infinity", "0044-03-15 BC", "0001-01-01 BC", "0043-01-01", "2026-01-01", "10000-01-01", "infinity"]


def test_a_column_missing_from_the_batch_keeps_its_value(store, layout):
    store.apply(events(("c", "1", "a", "a@x", 100, 0, 0)))
    store.apply(events(("u", "1", "b", None, 200, 0, 1), ("c", "2", "new", None, 210, 0, 2)).drop(columns=["email"]))
    assert destiny(layout) == "id,nombre,email\n1,b,a@x\n2,new,\n"


def test_unknown_operations_and_missing_positions_are_refused(store):
    with pytest.raises(BatchFileError, match="unknown operations"):
        store.apply(events(("x", "1", "a", "b", 1, 0, 0)))
    with pytest.raises(BatchFileError, match="_lsn"):
        store.apply(events(("c", "1", "a", "b", 1, 0, 0)).drop(columns=["_lsn"]))


# --- TRUNCATE -------------------------------------------------------------------------------------------


def truncate(lsn: int, partition: int, offset: int) -> tuple:
    return ("t", None, None, None, lsn, partition, offset)


def test_a_truncate_in_the_middle_of_a_batch_keeps_only_the_rows_written_after_it(store, layout):
    store.apply(events(("c", "1", "a", "", 100, 0, 0), ("c", "2", "b", "", 110, 1, 0), ("c", "3", "c", "", 120, 2, 0)))
    result = store.apply(events(
        ("u", "1", "a2", "", 150, 0, 1),
        ("c", "4", "d", "", 160, 3, 0),
        truncate(200, 0, 2),
        ("c", "2", "b-again", "", 250, 1, 1),
        ("c", "5", "e", "", 260, 2, 1),
    ))
    assert destiny(layout) == 'id,nombre,email\n2,b-again,""\n5,e,""\n'
    # 1, 3 were live before the batch and are gone; 4 came and went inside the batch; 2 was replaced.
    assert (result.truncated, result.inserted, result.updated, result.deleted) == (2, 1, 1, 0)
    assert result.applied.column("operacion").to_pylist() == ["u", "c", "t", "c", "c"]


def test_a_truncate_at_a_batch_boundary_removes_every_earlier_row(store, layout):
    store.apply(events(*[("c", str(k), f"n{k}", "", 100 + k, k % 3, k) for k in range(7)]))
    result = store.apply(events(truncate(500, 0, 7)))
    assert destiny(layout) == "id,nombre,email\n"
    assert result.truncated == 7 and result.destiny_rows == 0
    store.apply(events(("c", "3", "after", "", 600, 0, 8)))
    assert destiny(layout) == 'id,nombre,email\n3,after,""\n'


def test_a_replayed_truncate_changes_nothing_and_older_events_stay_deleted(store, layout):
    store.apply(events(("c", "1", "a", "", 100, 0, 0), ("c", "2", "b", "", 110, 1, 0)))
    batch = events(truncate(200, 0, 1), ("c", "3", "c", "", 210, 2, 0))
    store.apply(batch)
    expected = destiny(layout)
    again = store.apply(batch)
    assert destiny(layout) == expected == 'id,nombre,email\n3,c,""\n'
    assert again.replay and again.truncated == 0
    # The events before the truncate, merged late from another partition: older than the tombstones.
    late = store.apply(events(("u", "1", "late", "", 150, 4, 0)))
    assert late.stale == 1 and destiny(layout) == expected


def test_a_truncate_seen_again_outside_the_merged_ranges_is_idempotent(store, layout):
    store.apply(events(("c", "1", "a", "", 100, 0, 0)))
    store.apply(events(truncate(200, 0, 1), ("c", "2", "b", "", 210, 1, 0)))
    expected = destiny(layout)
    result = store.apply(events(truncate(200, 0, 1), ("c", "9", "z", "", 50, 5, 0)), retain=set())
    # Key 9's insert is older than the truncate: it was truncated too.
    assert destiny(layout) == expected and result.truncated == 0 and result.inserted == 0


def test_applied_events_carry_positions_timestamps_and_txids(store):
    batch = events(("c", "1", "a", "", 100, 0, 0), ("u", "1", "b", "", 110, 0, 1))
    batch["_txid"] = ["7", None]
    batch["_incarnation"] = ["2", "2"]
    applied = store.apply(batch).applied
    assert applied.column("_txid").to_pylist() == [7, None]
    assert applied.column("_incarnation").to_pylist() == [2, 2]
    assert applied.column("_offset").to_pylist() == [0, 1]
    assert applied.column("timestamp").to_pylist() == ["2026-11-24 00:00:00+00"] * 2
