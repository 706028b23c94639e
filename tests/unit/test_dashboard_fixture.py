"""A run history with one of everything the dashboard shows, at fixed times (the dashboard tests share it;
this module holds no test)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cdc_pipeline.history import History, RunRef, RunStatus, TryStatus

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 24, 13, 5, tzinfo=UTC)
LSN = 0x16B374D848  # 16/B374D848 in PostgreSQL's notation
NO_PK = ("table public.clientes has no primary key; the merge keeps one row per key, so it needs one. Add a primary "
         "key (ALTER TABLE ... ADD PRIMARY KEY (...)).")


def at(minute: int) -> str:
    return (datetime(2026, 11, 24, 12, 0, tzinfo=UTC) + timedelta(minutes=minute)).isoformat(timespec="milliseconds")


def run_id(minute: int) -> str:
    return f"scheduled__{(datetime(2026, 11, 24, 12, 0, tzinfo=UTC) + timedelta(minutes=minute)).isoformat()}"


def _run(history: History, minute: int, *, tries: tuple[tuple[str, int, int, str, str | None], ...] = (),
         **fields) -> str:
    rid = run_id(minute)
    history.runs.ensure_run(RunRef(rid, 1, 4))
    for task, number, allowed, status, error in tries:
        ref = RunRef(rid, number, allowed)
        history.runs.start_try(ref, task)
        if status != TryStatus.RUNNING.value:
            history.runs.end_try(ref, task, status=TryStatus(status), duration=1.5, error=error)
    history.runs.update_run(rid, started_at=at(minute), **fields)
    return rid


def build_history(folder: Path) -> History:
    """Oldest to newest: a run that carried data, 14 idle runs, an outage, a failed run after 2 tries, a run
    merged after a retry, a verification, and a run still retrying."""
    history = History.open(folder / "runs.sqlite")
    _run(history, 0, status=RunStatus.MERGED.value, ended_at=at(0.5), offset_ranges={"0": [0, 3], "1": [5, 5]},
         creates=3, merge_inserted=3, merge_updated=0, merge_deleted=0, destiny_rows=3, max_lsn=LSN,
         max_source_ts=at(0), backlog=0, notes=["slot debezium_clientes does not exist yet: the connector creates it"])
    history.runs.record_batch(run_id(0), incarnation=1, epoch=0, ranges={0: (0, 3), 1: (5, 5)})
    history.runs.update_run(run_id(0), status=RunStatus.MERGED.value)
    for minute in range(1, 15):
        _run(history, minute, status=RunStatus.MERGED.value, ended_at=at(minute + 0.2), offset_ranges={"0": [3, 3]},
             creates=0, merge_inserted=0, merge_updated=0, merge_deleted=0, destiny_rows=3, backlog=0)
    history.incidents.seen_down("postgres", run_id(20), "cannot connect to PostgreSQL at 127.0.0.1:5432")
    with_outage_at(history, at(19.5))
    _run(history, 20, status=RunStatus.FAILED.value, ended_at=at(20.6), destiny_rows=3,
         error=f"register_connector: {NO_PK}",
         tries=(("register_connector", 1, 2, "failed", NO_PK), ("register_connector", 2, 2, "failed", NO_PK),
                ("consume_batch", 1, 4, "success", None)))
    _run(history, 30, status=RunStatus.MERGED.value, ended_at=at(31), offset_ranges={"0": [3, 40], "2": [0, 2]},
         updates=37, deletes=2, merge_inserted=0, merge_updated=30, merge_deleted=2, destiny_rows=1,
         tries=(("consume_batch", 1, 4, "failed", "broker timed out"), ("consume_batch", 2, 4, "success", None)))
    history.incidents.record_verification(run_id(30), at(32), "identical", 1, 0, {})
    _run(history, 64, status=RunStatus.BUFFERED.value, offset_ranges={"0": [40, 41]}, updates=1,
         error="consume_batch (try 1 of 4, retrying): broker timed out",
         tries=(("consume_batch", 1, 4, "failed", "broker timed out"),))
    return history


def with_outage_at(history: History, moment: str) -> None:
    from cdc_pipeline.history.db import connect

    with connect(history.path) as db:
        db.execute("UPDATE outages SET first_seen_down_at = ?, last_seen_down_at = ?", (moment, moment))


def write_connectors(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "include" / "connectors" / "clientes.json", folder / "clientes.json")
    (folder / "broken.json").write_text(json.dumps({"name": "broken"}))
    return folder
