"""Randomised: a simulated source table streams through Kafka-like partitions into the state store, with replays,
late batches, TRUNCATEs, TOAST placeholders and a broker that loses its data; after every new batch destiny.csv
must be exactly the source table as of that batch, rendered independently here."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from cdc_pipeline.pgtext.copy_csv import format_rows
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.state import StateStore
from cdc_pipeline.state.resolve import UNAVAILABLE_VALUE
from tests.unit.test_state_support import describe

PARTITIONS = 3


class SourceSimulation:
    """A table (id -> row) changing at the source, and the change events Debezium would publish for it."""

    def __init__(self, rng: random.Random, key_type: str) -> None:
        self.rng = rng
        self.key_type = key_type
        self.table: dict[str, list[str | None]] = {}
        self.lsn = 1000
        self.incarnation = 0
        self.offsets = [0] * PARTITIONS
        self.published: list[dict] = []  # every event of the current incarnation, in publication order

    def key(self) -> str:
        number = self.rng.randrange(40)
        return str(number - 20) if self.key_type == "integer" else ["", "a", "ab", "b", "é", "a,b", 'q"'][number % 7] + str(number // 7)

    def change(self) -> dict:
        self.lsn += self.rng.randrange(1, 5)
        roll = self.rng.random()
        if roll < 0.02:
            self.table.clear()
            return self._publish("t", None, [None, None, None])
        key = self.key()
        if key in self.table and roll < 0.25:
            del self.table[key]
            return self._publish("d", key, [key, None, None])
        note = self.rng.choice([None, "", "x", "y,z", 'say "hi"', "línea\nnueva"])
        toasted = self.rng.choice(["long-1", "long-2", None])
        if key in self.table:
            old = self.table[key]
            keep_toast = self.rng.random() < 0.5
            row = [key, note, old[2] if keep_toast else toasted]
            self.table[key] = row
            return self._publish("u", key, [key, note, UNAVAILABLE_VALUE if keep_toast else toasted])
        row = [key, note, toasted]
        self.table[key] = row
        return self._publish(self.rng.choice("cr"), key, list(row))

    def lose_broker(self, resend: int) -> list[dict]:
        """A new topic incarnation: offsets from 0, Connect re-sends its last ``resend`` events."""
        again = self.published[-resend:] if resend else []
        self.incarnation += 1
        self.offsets = [0] * PARTITIONS
        self.published = []
        return [self._republish(event) for event in again]

    def _publish(self, op: str, key: str | None, values: list) -> dict:
        partition = 0 if key is None else sum(key.encode()) % PARTITIONS
        event = {"operacion": op, "id": values[0], "note": values[1], "toasted": values[2], "_lsn": self.lsn,
                 "_partition": partition, "_offset": self.offsets[partition], "_incarnation": self.incarnation}
        self.offsets[partition] += 1 + (self.rng.random() < 0.2)  # gaps: Kafka tombstones after deletes
        self.published.append(event)
        return event

    def _republish(self, event: dict) -> dict:
        partition = event["_partition"]
        again = {**event, "_offset": self.offsets[partition], "_incarnation": self.incarnation}
        self.offsets[partition] += 1
        self.published.append(again)
        return again

    def expected_destiny(self) -> str:
        if self.key_type == "integer":
            ordered = sorted(self.table, key=int)
        else:
            ordered = sorted(self.table, key=lambda k: k.encode())
        return format_rows(["id", "note", "toasted"], [self.table[k] for k in ordered])


def as_batch(events: list[dict]) -> pd.DataFrame:
    columns = ["operacion", "id", "note", "toasted", "timestamp", "_topic", "_partition", "_offset", "_lsn", "_incarnation"]
    records = [{**e, "timestamp": "2026-11-24 00:00:00+00", "_topic": "t", "_partition": str(e["_partition"]),
                "_offset": str(e["_offset"]), "_lsn": str(e["_lsn"]), "_incarnation": str(e["_incarnation"])} for e in events]
    return pd.DataFrame(records, columns=columns, dtype=object)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("key_type", ["integer", "text"])
def test_destiny_follows_the_source_through_replays_truncates_and_a_lost_broker(tmp_path, seed, key_type):
    rng = random.Random(seed)
    source = SourceSimulation(rng, key_type)
    layout = PipelineLayout(tmp_path / "p")
    store = StateStore(layout, chunk_rows=rng.choice([1, 2, 3, 7, 64]))
    store.create(describe({"id": key_type, "note": "text", "toasted": "text"}, ("id",), "t"))
    delivered: list[list[dict]] = []
    for step in range(40):
        before = {k: list(v) for k, v in source.table.items()}
        if step and rng.random() < 0.08:
            resent = source.lose_broker(rng.randrange(0, 6))
            batch = resent + [source.change() for _ in range(rng.randrange(0, 5))]
        else:
            batch = [source.change() for _ in range(rng.randrange(1, 12))]
        if batch:
            previous = store.live().id
            result = store.apply(as_batch(batch), retain={previous})
            delivered.append(batch)
            if result.written:
                assert list(store.diff(previous, result.generation)) == expected_diff(before, source), f"diff at {step}"
        assert layout.destiny.read_text(encoding="utf-8") == source.expected_destiny(), f"after batch {step}"
        if delivered and rng.random() < 0.3:
            # A retry or a late batch: merging an old batch again changes nothing.
            result = store.apply(as_batch(rng.choice(delivered)))
            assert (result.inserted, result.updated, result.deleted, result.truncated) == (0, 0, 0, 0)
            assert layout.destiny.read_text(encoding="utf-8") == source.expected_destiny(), f"after replay at {step}"
    live = store.live()
    assert live.rows == len(source.table)
    assert list(store.rows(live)) == [tuple(source.table[k]) for k in _ordered(source)]
    assert list(store.diff(None, live)) == [((k,), tuple(source.table[k])) for k in _ordered(source)]


def expected_diff(before: dict[str, list], source: SourceSimulation) -> list[tuple]:
    """(key, new row or None) for every key whose row differs, in destiny.csv's key order."""
    changed = [k for k in set(before) | set(source.table) if before.get(k) != source.table.get(k)]
    order = (lambda k: int(k)) if source.key_type == "integer" else (lambda k: k.encode())
    return [((k,), tuple(source.table[k]) if k in source.table else None) for k in sorted(changed, key=order)]


def _ordered(source: SourceSimulation) -> list[str]:
    return sorted(source.table, key=int) if source.key_type == "integer" else sorted(source.table, key=lambda k: k.encode())
