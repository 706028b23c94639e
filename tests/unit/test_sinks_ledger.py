"""Which generations the merge keeps for lagging sinks, and when a sink renders in full instead (sinks.ledger)."""

from __future__ import annotations

import shutil

import pytest

from cdc_pipeline.sinks import ledger as ledger_module
from cdc_pipeline.sinks import retained_generations
from cdc_pipeline.sinks.ledger import AppliedGeneration, LedgerEntry, SinkLedger, catch_up_base
from cdc_pipeline.state import StateStore
from tests.unit.test_sinks_support import change_events, column, pipeline, table

ITEMS = table(column("id", "integer", not_null=True), column("v", "text"))
SINKS = [{"type": "csv"}, {"type": "parquet"}, {"type": "postgres", "table": "public.items_replica"}]


@pytest.fixture
def pipe(tmp_path):
    return pipeline(tmp_path, SINKS)


def merge(pipe, store: StateStore, key: int, value: str) -> str:
    store.apply(change_events(ITEMS, [("c", {"id": str(key), "v": value})]), retain=retained_generations(pipe))
    return store.live().id


def postgres_ledger(pipe) -> SinkLedger:
    return SinkLedger(pipe.layout, pipe.spec.settings.sinks[2])


def test_the_generation_a_lagging_postgres_sink_holds_is_kept_while_the_state_moves_on(pipe):
    store = StateStore(pipe.layout)
    store.create(ITEMS)
    held = merge(pipe, store, 1, "a")
    postgres_ledger(pipe).write(LedgerEntry(applied=AppliedGeneration.of(store.live())))
    for key in range(2, 6):
        merge(pipe, store, key, "more")
    assert retained_generations(pipe) == {held}
    base, why = catch_up_base(store.folder, postgres_ledger(pipe).read().applied, store.live())
    assert base.id == held and "catching up from" in why
    assert [row for _, row in store.diff(base, store.live())] == [(str(k), "more") for k in range(2, 6)]


def test_only_diffing_sinks_keep_generations(tmp_path):
    pipe = pipeline(tmp_path, [{"type": "csv"}, {"type": "parquet"}])
    store = StateStore(pipe.layout)
    store.create(ITEMS)
    merge(pipe, store, 1, "a")
    SinkLedger(pipe.layout, pipe.spec.settings.sinks[1]).write(LedgerEntry(applied=AppliedGeneration.of(store.live())))
    merge(pipe, store, 2, "b")
    assert retained_generations(pipe) == frozenset()
    assert len(list((pipe.layout.state_dir).glob("lineage-*/gen-*"))) == 1


def test_a_pending_generation_is_kept_too(pipe):
    store = StateStore(pipe.layout)
    store.create(ITEMS)
    merge(pipe, store, 1, "a")
    second = merge(pipe, store, 2, "b")
    postgres_ledger(pipe).write(LedgerEntry(applied=None, pending=AppliedGeneration.of(store.live())))
    merge(pipe, store, 3, "c")
    assert retained_generations(pipe) == {second}


def test_a_sink_too_far_behind_is_no_longer_kept_and_renders_in_full(pipe, monkeypatch):
    monkeypatch.setattr(ledger_module, "MAX_GENERATIONS_BEHIND", 2)
    store = StateStore(pipe.layout)
    store.create(ITEMS)
    held = merge(pipe, store, 1, "a")
    postgres_ledger(pipe).write(LedgerEntry(applied=AppliedGeneration.of(store.live())))
    merge(pipe, store, 2, "b")
    assert retained_generations(pipe) == {held}
    merge(pipe, store, 3, "c")
    merge(pipe, store, 4, "d")  # three behind: no longer kept
    assert retained_generations(pipe) == frozenset()
    base, why = catch_up_base(store.folder, postgres_ledger(pipe).read().applied, store.live())
    assert base is None and "3 generations behind" in why and "renders in full" in why
    merge(pipe, store, 5, "e")  # the next merge removes it
    assert not (pipe.layout.state_dir / held).exists()


def test_at_most_max_retained_generations_are_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(ledger_module, "MAX_RETAINED", 2)
    sinks = [{"type": "csv"}] + [{"type": "postgres", "table": f"public.r{i}"} for i in range(3)]
    pipe = pipeline(tmp_path, sinks)
    store = StateStore(pipe.layout)
    store.create(ITEMS)
    held = []
    for i, sink in enumerate(pipe.spec.settings.sinks[1:]):
        held.append(merge(pipe, store, i, "x"))
        SinkLedger(pipe.layout, sink).write(LedgerEntry(applied=AppliedGeneration.of(store.live())))
    merge(pipe, store, 10, "y")
    assert retained_generations(pipe) == set(held[1:])


def test_after_a_reset_the_new_state_is_rendered_in_full_even_where_generation_ids_repeat(pipe):
    store = StateStore(pipe.layout)
    store.create(ITEMS, epoch=1)
    merge(pipe, store, 1, "a")
    old = AppliedGeneration.of(store.live())
    postgres_ledger(pipe).write(LedgerEntry(applied=old))
    # reset moves the state aside (PipelineLayout.derived_files); the sinks folder stays.
    aside = pipe.layout.folder.with_name("items.before-reset")
    aside.mkdir()
    for name in ("state", "destiny.csv"):
        shutil.move(str(pipe.layout.folder / name), str(aside / name))
    store = StateStore(pipe.layout)
    store.create(ITEMS, epoch=2)
    merge(pipe, store, 1, "a")
    assert postgres_ledger(pipe).read().applied == old
    assert store.live().id.split("/")[0] == old.generation.split("/")[0]  # lineage-0001 again
    assert retained_generations(pipe) == frozenset()
    base, why = catch_up_base(store.folder, old, store.live())
    assert base is None and "a new one" in why and "epoch 1" in why


def test_an_unreadable_ledger_never_fails_the_merge(pipe):
    store = StateStore(pipe.layout)
    store.create(ITEMS)
    merge(pipe, store, 1, "a")
    postgres_ledger(pipe).path.parent.mkdir(parents=True, exist_ok=True)
    postgres_ledger(pipe).path.write_text("{not json")
    assert retained_generations(pipe) == frozenset()
    merge(pipe, store, 2, "b")


def test_nothing_is_kept_before_the_first_state(pipe):
    assert retained_generations(pipe) == frozenset()
