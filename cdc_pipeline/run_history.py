"""The run history: a SQLite file per pipeline, ``runs.sqlite`` beside destiny.csv.

``runs`` has one row per DAG run: its logical interval, the offset range it read (the resume point),
counts per operation, the merge's result and each task's duration. ``task_tries`` has one row per task
try, with its status, times and summary, so a retried or failed try stays visible. SQLite because it
is in the standard library, survives crashes mid-write, and anyone can query it:
``sqlite3 runs.sqlite 'select * from runs order by seq desc limit 5'``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id            TEXT NOT NULL UNIQUE,
    logical_start     TEXT,
    logical_end       TEXT,
    started_at        TEXT,
    ended_at          TEXT,
    status            TEXT NOT NULL,         -- started | buffered | committed | merged | failed
    topic             TEXT,
    offset_ranges     TEXT,                  -- JSON {"partition": [start, end)}: the resume point
    offsets_committed INTEGER NOT NULL DEFAULT 0,
    creates           INTEGER, updates INTEGER, deletes INTEGER, reads INTEGER,
    tombstones        INTEGER, other_tables INTEGER, dead_lettered INTEGER, before_start INTEGER,
    max_lsn           INTEGER,
    max_source_ts     TEXT,
    merge_inserted    INTEGER, merge_updated INTEGER, merge_deleted INTEGER, merge_stale INTEGER,
    destiny_rows      INTEGER,
    register_seconds  REAL, consume_seconds REAL, merge_seconds REAL,
    notes             TEXT,
    error             TEXT
);
CREATE TABLE IF NOT EXISTS pipeline_settings (   -- what outlives one run, e.g. start_from_ms
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS task_tries (
    run_id           TEXT NOT NULL,
    task_id          TEXT NOT NULL,
    try_number       INTEGER NOT NULL,
    started_at       TEXT NOT NULL,
    ended_at         TEXT,
    status           TEXT NOT NULL,          -- running | success | failed
    duration_seconds REAL,
    summary          TEXT,                   -- JSON: what the task logged as its summary
    error            TEXT,
    PRIMARY KEY (run_id, task_id, try_number)
);
"""

RUN_FIELDS = frozenset(
    {
        "logical_start", "logical_end", "started_at", "ended_at", "status", "topic", "offset_ranges",
        "offsets_committed", "creates", "updates", "deletes", "reads", "tombstones", "other_tables",
        "dead_lettered", "before_start", "max_lsn", "max_source_ts", "merge_inserted", "merge_updated",
        "merge_deleted", "merge_stale", "destiny_rows", "register_seconds", "consume_seconds",
        "merge_seconds", "notes", "error",
    }
)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class RunRef:
    """Which run and try a task is working for (the Airflow edge fills it from the task context)."""

    run_id: str
    try_number: int = 1
    logical_start: str | None = None
    logical_end: str | None = None


class RunHistory:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            db.row_factory = sqlite3.Row
            with db:  # one transaction: committed on success, rolled back on error
                yield db

    def ensure_run(self, run: RunRef) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO runs (run_id, logical_start, logical_end, started_at, status) VALUES (?, ?, ?, ?, 'started')"
                " ON CONFLICT(run_id) DO NOTHING",
                (run.run_id, run.logical_start, run.logical_end, utc_now()),
            )

    def update_run(self, run_id: str, **fields: Any) -> None:
        unknown = set(fields) - RUN_FIELDS
        if unknown:
            raise ValueError(f"unknown run history fields {sorted(unknown)}")
        values = {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in fields.items()}
        assignments = ", ".join(f"{k} = ?" for k in values)
        with self._connect() as db:
            db.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", (*values.values(), run_id))

    def get_setting(self, name: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT value FROM pipeline_settings WHERE name = ?", (name,)).fetchone()
        return row["value"] if row else None

    def set_setting(self, name: str, value: str) -> None:
        with self._connect() as db:
            db.execute("INSERT INTO pipeline_settings (name, value) VALUES (?, ?)"
                       " ON CONFLICT(name) DO UPDATE SET value = excluded.value", (name, value))

    def clear_error(self, run_id: str, task_id: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE runs SET error = NULL WHERE run_id = ? AND error LIKE ?", (run_id, f"{task_id}:%"))

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return dict(row) if row else None

    def recorded_ranges(self, run_id: str) -> dict[int, tuple[int, int]] | None:
        """The offset range an earlier try of this run read, so a retry re-reads exactly that."""
        run = self.get_run(run_id)
        if not run or not run["offset_ranges"] or run["offset_ranges"] == "{}":
            return None
        return {int(p): (int(r[0]), int(r[1])) for p, r in json.loads(run["offset_ranges"]).items()}

    def last_committed_ends(self, topic: str) -> dict[int, int]:
        """End offsets of the newest run that committed, on ``topic``: what the broker should hold."""
        with self._connect() as db:
            row = db.execute(
                "SELECT offset_ranges FROM runs WHERE topic = ? AND offsets_committed = 1 AND offset_ranges IS NOT NULL"
                " ORDER BY seq DESC LIMIT 1",
                (topic,),
            ).fetchone()
        if not row:
            return {}
        return {int(p): int(r[1]) for p, r in json.loads(row["offset_ranges"]).items()}

    def start_try(self, run: RunRef, task_id: str) -> str:
        started = utc_now()
        with self._connect() as db:
            db.execute(
                "INSERT INTO task_tries (run_id, task_id, try_number, started_at, status) VALUES (?, ?, ?, ?, 'running')"
                " ON CONFLICT(run_id, task_id, try_number) DO UPDATE SET started_at = excluded.started_at, status = 'running'",
                (run.run_id, task_id, run.try_number, started),
            )
        return started

    def end_try(self, run: RunRef, task_id: str, *, status: str, duration: float, summary: dict | None = None, error: str | None = None) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE task_tries SET ended_at = ?, status = ?, duration_seconds = ?, summary = ?, error = ?"
                " WHERE run_id = ? AND task_id = ? AND try_number = ?",
                (utc_now(), status, round(duration, 3), json.dumps(summary) if summary else None, error, run.run_id, task_id, run.try_number),
            )

    def recent_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM runs ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [dict(r) for r in rows]

    def tries(self, run_id: str) -> list[dict[str, Any]]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM task_tries WHERE run_id = ? ORDER BY started_at", (run_id,)).fetchall()
        return [dict(r) for r in rows]
