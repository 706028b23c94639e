"""Runs, task tries, pipeline settings and resume points in runs.sqlite."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cdc_pipeline.history.db import connect
from cdc_pipeline.history.statuses import RunKind, RunStatus, TryStatus

RUN_FIELDS = frozenset(
    {
        "kind", "logical_start", "logical_end", "started_at", "ended_at", "status", "tries", "topic", "incarnation",
        "epoch", "offset_ranges", "offsets_committed", "batch_complete", "creates", "updates", "deletes", "reads",
        "truncates", "tombstones", "other_tables", "dead_lettered", "before_start", "max_lsn", "max_source_ts",
        "backlog", "merge_inserted", "merge_updated", "merge_deleted", "merge_truncated", "merge_stale",
        "destiny_rows", "register_seconds", "consume_seconds", "merge_seconds", "notes", "recovery",
        "schema_change", "error",
    }
)


# A run that carried data: it moved events, or recovered, or saw a schema change (the dashboard's filter too).
CARRIED_DATA = ("(coalesce(creates,0) + coalesce(updates,0) + coalesce(deletes,0) + coalesce(reads,0)"
                " + coalesce(truncates,0) > 0 OR recovery IS NOT NULL OR schema_change IS NOT NULL)")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _update_run(db, run_id: str, fields: dict[str, Any]) -> None:
    unknown = set(fields) - RUN_FIELDS
    if unknown:
        raise ValueError(f"unknown run history fields {sorted(unknown)}")
    values = {k: _encode(v) for k, v in fields.items()}
    assignments = ", ".join(f"{k} = ?" for k in values)
    db.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", (*values.values(), run_id))


def _encode(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict | list | tuple) else value


@dataclass(frozen=True)
class RunRef:
    """Which run and try a task is working for (the Airflow edge fills it from the task context)."""

    run_id: str
    try_number: int = 1
    max_tries: int = 1
    logical_start: str | None = None
    logical_end: str | None = None

    @property
    def kind(self) -> RunKind:
        return RunKind.from_run_id(self.run_id)

    @property
    def last_try(self) -> bool:
        return self.try_number >= self.max_tries


@dataclass(frozen=True)
class ResumePoint:
    """Where the next batch starts: per partition the next offset to read, on one topic incarnation
    (None: the next topic that appears, from its beginning), for one state lineage (epoch)."""

    seq: int
    reason: str
    incarnation: int | None
    epoch: int
    ends: dict[int, int]
    run_id: str | None


class RunHistory:
    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._shared = threading.local()

    def _db(self):
        shared = getattr(self._shared, "db", None)
        return nullcontext(shared) if shared is not None else connect(self.path, readonly=self.readonly)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The calls made inside (in this thread) share one transaction: committed together at the end, rolled
        back together on an error. Each write transaction costs runs.sqlite's journal its syncs (four), so a
        task's bookkeeping is grouped (cdc_pipeline.tasks.tracking). Nested, the inner one joins the outer."""
        if getattr(self._shared, "db", None) is not None:
            yield
            return
        with connect(self.path, readonly=self.readonly) as db:
            self._shared.db = db
            try:
                yield
            finally:
                self._shared.db = None

    # --- runs -------------------------------------------------------------------------------------
    def ensure_run(self, run: RunRef) -> None:
        with self._db() as db:
            db.execute(
                "INSERT INTO runs (run_id, kind, logical_start, logical_end, started_at, status, tries)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id) DO UPDATE SET tries = max(coalesce(tries, 0), excluded.tries)",
                (run.run_id, run.kind.value, run.logical_start, run.logical_end, utc_now(), RunStatus.STARTED.value,
                 run.try_number),
            )

    def update_run(self, run_id: str, **fields: Any) -> None:
        with self._db() as db:
            _update_run(db, run_id, fields)

    def add_note(self, run_id: str, note: str) -> None:
        run = self.get_run(run_id) or {}
        notes = json.loads(run.get("notes") or "[]")
        if note not in notes:
            self.update_run(run_id, notes=[*notes, note])

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return dict(row) if row else None

    def recent_runs(self, limit: int = 20, *, offset: int = 0, status: str | None = None,
                    with_data: bool = False) -> list[dict[str, Any]]:
        where, params = [], []
        if status:
            where.append("status = ?")
            params.append(status)
        if with_data:
            where.append(CARRIED_DATA)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._db() as db:
            rows = db.execute(f"SELECT * FROM runs {clause} ORDER BY seq DESC LIMIT ? OFFSET ?",
                              (*params, limit, offset)).fetchall()
        return [dict(r) for r in rows]

    def count_runs(self, *, status: str | None = None) -> int:
        with self._db() as db:
            if status:
                return db.execute("SELECT count(*) FROM runs WHERE status = ?", (status,)).fetchone()[0]
            return db.execute("SELECT count(*) FROM runs").fetchone()[0]

    def last_run_where(self, condition: str, params: tuple = ()) -> dict[str, Any] | None:
        with self._db() as db:
            row = db.execute(f"SELECT * FROM runs WHERE {condition} ORDER BY seq DESC LIMIT 1", params).fetchone()
        return dict(row) if row else None

    # --- task tries ---------------------------------------------------------------------------------
    def start_try(self, run: RunRef, task_id: str) -> None:
        with self._db() as db:
            db.execute(
                "INSERT INTO task_tries (run_id, task_id, try_number, max_tries, started_at, status)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, task_id, try_number)"
                " DO UPDATE SET started_at = excluded.started_at, status = excluded.status",
                (run.run_id, task_id, run.try_number, run.max_tries, utc_now(), TryStatus.RUNNING.value),
            )

    def end_try(self, run: RunRef, task_id: str, *, status: TryStatus, duration: float,
                summary: dict | None = None, error: str | None = None) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE task_tries SET ended_at = ?, status = ?, duration_seconds = ?, summary = ?, error = ?"
                " WHERE run_id = ? AND task_id = ? AND try_number = ?",
                (utc_now(), status.value, round(duration, 3), json.dumps(summary, default=str) if summary else None,
                 error, run.run_id, task_id, run.try_number),
            )

    def tries(self, run_id: str) -> list[dict[str, Any]]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM task_tries WHERE run_id = ? ORDER BY started_at", (run_id,)).fetchall()
        return [dict(r) for r in rows]

    # --- settings -----------------------------------------------------------------------------------
    def get_setting(self, name: str) -> str | None:
        with self._db() as db:
            row = db.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return row["value"] if row else None

    def set_setting(self, name: str, value: str | None) -> None:
        with self._db() as db:
            if value is None:
                db.execute("DELETE FROM settings WHERE name = ?", (name,))
            else:
                db.execute("INSERT INTO settings (name, value) VALUES (?, ?)"
                           " ON CONFLICT(name) DO UPDATE SET value = excluded.value", (name, value))

    # --- resume points ------------------------------------------------------------------------------
    def resume_point(self) -> ResumePoint | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM resume_points ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return ResumePoint(row["seq"], row["reason"], row["incarnation"], row["epoch"],
                           {int(p): int(o) for p, o in json.loads(row["ends"]).items()}, row["run_id"])

    def record_batch(self, run_id: str, *, incarnation: int, epoch: int, ranges: dict[int, tuple[int, int]],
                     **run_fields: Any) -> None:
        """The batch is durable in buffer.csv: record its range on the run and as the new resume point, in one
        transaction, so a crash never leaves one without the other."""
        fields = {"offset_ranges": {str(p): list(r) for p, r in sorted(ranges.items())}, "incarnation": incarnation,
                  "epoch": epoch, "status": RunStatus.BUFFERED.value, **run_fields}
        with self._db() as db:
            _update_run(db, run_id, fields)
            db.execute("INSERT INTO resume_points (run_id, at, reason, incarnation, epoch, ends) VALUES (?, ?, 'batch', ?, ?, ?)",
                       (run_id, utc_now(), incarnation, epoch, json.dumps({str(p): r[1] for p, r in sorted(ranges.items())})))

    def set_resume_point(self, *, reason: str, incarnation: int | None, epoch: int, ends: dict[int, int],
                         run_id: str | None = None) -> None:
        """A new starting point that is not a batch: a reset, a rebuild start, a new topic incarnation."""
        with self._db() as db:
            db.execute("INSERT INTO resume_points (run_id, at, reason, incarnation, epoch, ends) VALUES (?, ?, ?, ?, ?, ?)",
                       (run_id, utc_now(), reason, incarnation, epoch, json.dumps({str(p): o for p, o in sorted(ends.items())})))

    def current_epoch(self) -> int:
        point = self.resume_point()
        return point.epoch if point else 0
