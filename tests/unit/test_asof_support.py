"""Helpers for the as-of, changes and retention tests (no tests here): a synthetic pipeline folder whose merges
write the change log and the run history as the merge task does, and an independent model of the table."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cdc_pipeline.changelog import ChangeLog
from cdc_pipeline.pgtext.copy_csv import format_row
from cdc_pipeline.history import History, RunRef
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.state import StateStore
from tests.unit.test_state_support import CLIENTES

HEADER = ("operacion", "id", "nombre", "email", "timestamp", "_topic", "_partition", "_offset", "_lsn",
          "_incarnation", "_txid")


@dataclass
class Event:
    op: str
    id: str | None
    nombre: str | None
    email: str | None
    timestamp: str              # PostgreSQL timestamptz text in UTC, e.g. "2026-11-24 10:00:00.5+00"
    partition: int = 0
    offset: int = -1            # filled by SyntheticPipeline.merge
    lsn: int = -1
    incarnation: int = 1

    def buffer_row(self) -> dict[str, str | None]:
        return {"operacion": self.op, "id": self.id, "nombre": self.nombre, "email": self.email,
                "timestamp": self.timestamp, "_topic": "t", "_partition": str(self.partition),
                "_offset": str(self.offset), "_lsn": str(self.lsn), "_incarnation": str(self.incarnation),
                "_txid": str(1000 + self.lsn)}


def r(id_, nombre, ts, partition=0):
    return Event("r", str(id_), nombre, f"{nombre}@example.com", ts, partition)


def c(id_, nombre, ts, partition=0):
    return Event("c", str(id_), nombre, f"{nombre}@example.com", ts, partition)


def u(id_, nombre, ts, partition=0):
    return Event("u", str(id_), nombre, f"{nombre}@example.com", ts, partition)


def d(id_, ts, partition=0):
    return Event("d", str(id_), None, None, ts, partition)


def t(ts, partition=0):
    return Event("t", None, None, None, ts, partition)


@dataclass
class SyntheticPipeline:
    """A pipeline folder built without Kafka: each merge applies a batch to the live state, writes the change log
    before the commit (as tasks/merge.py does) and records a complete, merged run whose read started at
    ``read_started``."""

    folder: Path
    epoch: int = 0
    merged: list[Event] = field(default_factory=list)
    runs: int = 0

    def __post_init__(self) -> None:
        self.layout = PipelineLayout(self.folder / "clientes")
        self.store = StateStore(self.layout)
        self.store.create(CLIENTES, lineage="live", epoch=self.epoch)
        self.history = History.open(self.layout.history)
        self._next_offset: dict[tuple[int, int], int] = {}
        self._lsn = 100

    def merge(self, events: list[Event], *, read_started: str, complete: bool = True) -> str:
        for event in events:
            key = (event.incarnation, event.partition)
            event.offset = self._next_offset.get(key, 0)
            self._next_offset[key] = event.offset + 1
            self._lsn += 10
            event.lsn = self._lsn
        frame = pd.DataFrame([e.buffer_row() for e in events], columns=list(HEADER), dtype=object)
        changelog = ChangeLog(self.layout)
        epoch = self.store.live().epoch

        def log_changes(applied, generation):
            changelog.append(applied, epoch=epoch, generation=generation)

        self.store.apply(frame, before_commit=log_changes)
        self.merged.extend(events)
        return self.record_run(read_started, complete=complete, reads=sum(e.op == "r" for e in events))

    def record_run(self, read_started: str, *, complete: bool = True, reads: int = 0) -> str:
        self.runs += 1
        run = RunRef(f"scheduled__run-{self.runs:04d}")
        runs = self.history.runs
        runs.ensure_run(run)
        runs.start_try(run, "consume_batch")
        runs.update_run(run.run_id, epoch=self.epoch, batch_complete=int(complete), reads=reads,
                        destiny_rows=self.store.live().rows, status="merged")
        with sqlite3.connect(self.layout.history) as db:
            db.execute("UPDATE task_tries SET started_at = ? WHERE run_id = ?", (read_started, run.run_id))
        return run.run_id

    def outage(self, service: str, down: str, back: str | None) -> None:
        with sqlite3.connect(self.layout.history) as db:
            db.execute("INSERT INTO outages (service, first_seen_down_at, last_seen_down_at, back_at) VALUES (?, ?, ?, ?)",
                       (service, down, down, back))


def model_as_of(events: list[Event], at: str, snapshot_instant: str | None = None) -> bytes:
    """The table as of ``at`` from the events in position order, by hand: the oracle for as-of snapshots."""
    rows: dict[int, tuple] = {}
    for event in events:
        when = snapshot_instant if event.op == "r" and snapshot_instant else event.timestamp
        if _ms(when) > _ms(at):
            continue
        if event.op == "t":
            rows.clear()
        elif event.op == "d":
            rows.pop(int(event.id), None)
        else:
            rows[int(event.id)] = (event.id, event.nombre, event.email)
    return ("id,nombre,email\n" + "".join(format_row(list(rows[k])) for k in sorted(rows))).encode()


def model_changes(events: list[Event], start: str, end: str, snapshot_instant: str | None = None) -> list[Event]:
    chosen = []
    for event in events:
        when = snapshot_instant if event.op == "r" and snapshot_instant else event.timestamp
        if _ms(start) <= _ms(when) < _ms(end):
            chosen.append(event)
    return chosen


def _ms(text: str) -> int:
    from datetime import datetime

    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(moment.timestamp() * 1000 + 0.5)
