"""Generations: pointers, the public hard link, retention, leftovers, damage, rebuild aside, rows and diffs."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from cdc_pipeline.errors import StateError
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.state import StateStore
from tests.unit.test_state_support import CLIENTES, describe, events


@pytest.fixture
def chunk_rows() -> int:
    """The ``store`` of tests/unit/conftest.py with chunks of 3 rows."""
    return 3


def generations(layout: PipelineLayout) -> list[str]:
    return sorted(f"{p.parent.name}/{p.name}" for p in layout.state_dir.glob("lineage-*/gen-*"))


def test_create_links_destiny_to_a_read_only_generation(store, layout):
    live = store.live()
    assert layout.destiny.read_text() == "id,nombre,email\n"
    assert os.stat(layout.destiny).st_ino == os.stat(live.destiny_path).st_ino
    assert (layout.state_dir / "LIVE").read_text().strip() == live.id == "lineage-0001/gen-000001"
    for name in ("destiny.csv", "keys.npy", "rows.npy", "manifest.json"):
        assert stat.S_IMODE(os.stat(live.path / name).st_mode) == 0o440  # owner and group only
    assert (live.rows, live.tombstones, live.columns, live.key_columns) == (0, 0, ("id", "nombre", "email"), ("id",))
    assert store.create(CLIENTES).id == live.id  # idempotent while empty


def test_a_live_state_with_keys_is_not_replaced_by_create(store):
    store.apply(events(("c", "1", "a", "b", 1, 0, 0)))
    with pytest.raises(StateError, match="rebuild"):
        store.create(describe({"id": "integer", "x": "text"}, ("id",)))


def test_each_commit_moves_live_and_deletes_old_generations_unless_retained(store, layout):
    first = store.live().id
    second = store.apply(events(("c", "1", "a", "b", 1, 0, 0))).generation
    assert generations(layout) == [second]
    third = store.apply(events(("c", "2", "a", "b", 2, 0, 1)), retain={second}).generation
    assert generations(layout) == [second, third] and first not in generations(layout)
    assert os.stat(layout.destiny).st_ino == os.stat(store.live().destiny_path).st_ino
    fourth = store.apply(events(("c", "3", "a", "b", 3, 0, 2))).generation
    assert generations(layout) == [fourth]
    index = np.load(store.live().keys_path)
    assert len(index) == 3 and list(index) == sorted(index)
    rows = np.load(store.live().rows_path)
    assert list(rows["offset"]) == [16, 22, 28] and not rows["deleted"].any()


def test_a_destiny_replaced_by_hand_is_relinked_with_a_note(store, layout):
    store.apply(events(("c", "1", "a", "b", 1, 0, 0)))
    expected = layout.destiny.read_bytes()
    replacement = layout.folder / "edited.csv"
    replacement.write_text("id,nombre,email\n1,hand,edit\n")
    os.replace(replacement, layout.destiny)
    reopened = StateStore(layout)
    assert reopened.live() is not None
    assert layout.destiny.read_bytes() == expected
    assert any("not the live generation's file" in note for note in reopened.notes)


def test_a_generation_file_changed_in_place_is_refused_with_the_remedy(store, layout):
    store.apply(events(("c", "1", "a", "b", 1, 0, 0)))
    path = store.live().destiny_path
    os.chmod(path, 0o644)
    with open(path, "a") as handle:
        handle.write("2,x,y\n")
    with pytest.raises(StateError, match="resnapshot --connector clientes"):
        StateStore(layout).live()


def test_leftovers_of_an_interrupted_merge_are_removed_by_the_next_merge(store, layout):
    live = store.apply(events(("c", "1", "a", "b", 1, 0, 0))).generation
    lineage = live.split("/")[0]
    (layout.state_dir / lineage / "gen-000007").mkdir()  # no manifest: a merge died writing it
    result = store.apply(events(("c", "2", "a", "b", 2, 0, 1)))
    assert generations(layout) == [result.generation]


def test_a_key_longer_than_any_before_widens_the_index(tmp_path):
    layout = PipelineLayout(tmp_path / "t")
    store = StateStore(layout, chunk_rows=2)
    store.create(describe({"k": "text", "v": "text"}, ("k",), "t"))
    for n, key in enumerate(["m", "b", "zzzzzzzzzzzz", "a", "mmmmmmmmmmmmmmmmmmmmmmmm", "c"]):
        store.apply(events(("c", key, "v", None, 10 + n, 0, n)).rename(columns={"id": "k", "nombre": "v"}).drop(columns=["email"]))
    assert [line.split(",")[0] for line in layout.destiny.read_text().splitlines()[1:]] == \
        ["a", "b", "c", "m", "mmmmmmmmmmmmmmmmmmmmmmmm", "zzzzzzzzzzzz"]
    assert np.load(store.live().keys_path).dtype.itemsize == len("mmmmmmmmmmmmmmmmmmmmmmmm") + 1


def test_a_rebuild_is_built_aside_and_promoted_in_one_step(store, layout):
    old = store.apply(events(("c", "1", "old", "x", 10, 0, 0), ("c", "2", "gone", "x", 11, 0, 1)))
    before = layout.destiny.read_bytes()
    store.create(CLIENTES, lineage="rebuild")
    rebuilt = store.apply(events(("r", "1", "new", "x", 50, 0, 0), ("r", "3", "three", "x", 50, 1, 0)), lineage="rebuild")
    assert layout.destiny.read_bytes() == before  # the live table is untouched while the rebuild grows
    assert store.rebuild().id == rebuilt.generation and store.live().id == old.generation
    promoted = store.promote_rebuild(retain={old.generation})
    assert store.live().id == promoted.id == rebuilt.generation and store.rebuild() is None
    assert layout.destiny.read_text() == "id,nombre,email\n1,new,x\n3,three,x\n"
    assert list(store.diff(old.generation, promoted)) == [(("1",), ("1", "new", "x")), (("2",), None), (("3",), ("3", "three", "x"))]
    store.apply(events(("u", "3", "3b", "x", 60, 1, 1)))
    assert old.generation not in generations(layout)


def test_a_promotion_interrupted_after_moving_live_is_finished_on_open(store, layout):
    store.create(CLIENTES, lineage="rebuild")
    rebuilt = store.apply(events(("r", "5", "e", "x", 50, 0, 0)), lineage="rebuild").generation
    (layout.state_dir / "LIVE").write_text(rebuilt + "\n")  # the crash: LIVE moved, REBUILD not cleared
    reopened = StateStore(layout)
    assert reopened.live().id == rebuilt and reopened.rebuild() is None
    assert layout.destiny.read_text() == "id,nombre,email\n5,e,x\n"


def test_a_discarded_rebuild_leaves_nothing_behind(store, layout):
    live = store.apply(events(("c", "1", "a", "b", 1, 0, 0))).generation
    store.create(CLIENTES, lineage="rebuild")
    store.apply(events(("r", "1", "z", "z", 9, 0, 0)), lineage="rebuild")
    store.discard_rebuild()
    assert store.rebuild() is None and generations(layout) == [live]


def test_rows_keep_nulls_empty_strings_and_newlines_and_diff_skips_unchanged_keys(store, layout):
    first = store.apply(events(("c", "1", None, "", 1, 0, 0), ("c", "2", "a\nb", 'q"', 2, 0, 1), ("c", "3", "same", "s", 3, 0, 2),
                               ("c", "4", "x", "y", 4, 0, 3)))
    assert list(store.rows(first.generation)) == [("1", None, ""), ("2", "a\nb", 'q"'), ("3", "same", "s"), ("4", "x", "y")]
    second = store.apply(events(("u", "3", "same", "s", 5, 0, 4), ("d", "4", None, None, 6, 0, 5), ("c", "5", "n", None, 7, 0, 6),
                                ("u", "1", "", None, 8, 0, 7)), retain={first.generation})
    assert list(store.diff(first.generation, second.generation)) == [
        (("1",), ("1", "", None)), (("4",), None), (("5",), ("5", "n", None)),
    ]
    assert [key for key, _ in store.diff(None, second.generation)] == [("1",), ("2",), ("3",), ("5",)]
    batches = list(store.row_batches(second.generation))
    assert sum(b.num_rows for b in batches) == 4 and batches[0].column("email").to_pylist()[0] is None


def test_a_one_column_table_keeps_its_rows(tmp_path):
    layout = PipelineLayout(tmp_path / "one")
    store = StateStore(layout, chunk_rows=2)
    store.create(describe({"k": "text"}, ("k",), "one"))
    batch = events(("c", "\\.", None, None, 1, 0, 0), ("c", "", None, None, 2, 0, 1), ("c", "b", None, None, 3, 0, 2))
    store.apply(batch.rename(columns={"id": "k"}).drop(columns=["nombre", "email"]))
    assert layout.destiny.read_text() == 'k\n""\n"\\."\nb\n'
    assert list(store.rows(store.live())) == [("",), ("\\.",), ("b",)]


def test_a_new_rebuild_replaces_the_one_in_progress_and_keeps_its_epoch(store, layout):
    live = store.apply(events(("c", "1", "a", "b", 1, 0, 0))).generation
    store.create(CLIENTES, lineage="rebuild", epoch=3)
    store.apply(events(("r", "1", "z", "z", 9, 0, 0)), lineage="rebuild")
    replacement = store.create(CLIENTES, lineage="rebuild", epoch=4)
    assert generations(layout) == sorted([live, replacement.id])
    grown = store.apply(events(("r", "2", "y", "y", 9, 0, 0)), lineage="rebuild").generation
    assert store.generation(grown).epoch == 4 and store.live().epoch == 0



def test_no_file_the_state_writes_is_readable_by_everyone(tmp_path):
    """A table's rows may be confidential: the live generation's files, destiny.csv's hard link among them, are
    readable by owner and group only (and written once)."""
    import stat

    from tests.unit.test_asof_support import SyntheticPipeline, r

    pipe = SyntheticPipeline(tmp_path)
    pipe.merge([r(1, "ana", "2026-12-06 10:00:00+00")], read_started="2026-12-06T10:00:05+00:00")
    live = pipe.store.live()
    for path in (live.destiny_path, live.keys_path, live.rows_path, live.manifest_path, pipe.layout.destiny):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o440, (path.name, oct(mode))
