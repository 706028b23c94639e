"""What happened to a pipeline beyond its runs: topic incarnations, outages, recoveries, operator commands,
verifications and sink results, all in runs.sqlite."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cdc_pipeline.history.db import connect
from cdc_pipeline.history.runs import utc_now
from cdc_pipeline.history.statuses import OperationStatus

SERVICES = ("postgres", "connect", "broker")


@dataclass(frozen=True)
class Incarnation:
    seq: int
    topic: str
    topic_id: str | None
    clean_end: dict[int, int] | None


@dataclass(frozen=True)
class Recovery:
    id: int
    reason: str
    detail: str
    epoch: int
    step: str
    started_at: str
    snapshot_confirmed_at: str | None
    run_id: str | None
    signal_id: str | None = None  # set when the table re-snapshots alone (an incremental snapshot)
    signals: int = 0

    @property
    def incremental(self) -> bool:
        return self.signal_id is not None

    @property
    def active(self) -> bool:
        return self.step not in ("promoted", "superseded")


class Incidents:
    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly

    def _db(self):
        return connect(self.path, readonly=self.readonly)

    # --- topic incarnations -------------------------------------------------------------------------
    def incarnation(self, seq: int) -> Incarnation | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM incarnations WHERE seq = ?", (seq,)).fetchone()
        return _incarnation(row)

    def latest_incarnation(self) -> Incarnation | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM incarnations ORDER BY seq DESC LIMIT 1").fetchone()
        return _incarnation(row)

    def add_incarnation(self, topic: str, topic_id: str | None, run_id: str | None) -> int:
        with self._db() as db:
            return db.execute("INSERT INTO incarnations (topic, topic_id, first_seen_at, first_run_id) VALUES (?, ?, ?, ?)",
                              (topic, topic_id, utc_now(), run_id)).lastrowid

    def end_incarnation(self, seq: int, reason: str) -> None:
        with self._db() as db:
            db.execute("UPDATE incarnations SET ended_at = coalesce(ended_at, ?), end_reason = coalesce(end_reason, ?)"
                       " WHERE seq = ?", (utc_now(), reason, seq))

    def mark_clean_end(self, seq: int, ends: dict[int, int]) -> None:
        """Everything this incarnation held up to ``ends`` was merged and its producer was stopped first."""
        with self._db() as db:
            db.execute("UPDATE incarnations SET clean_end = ?, clean_end_at = ? WHERE seq = ?",
                       (json.dumps({str(p): o for p, o in sorted(ends.items())}), utc_now(), seq))

    def clear_clean_end(self, seq: int) -> None:
        """The incarnation goes on after all (the broker kept it): a later stop records a new clean end."""
        with self._db() as db:
            db.execute("UPDATE incarnations SET clean_end = NULL, clean_end_at = NULL WHERE seq = ?", (seq,))

    # --- outages ------------------------------------------------------------------------------------
    def seen_down(self, service: str, run_id: str | None, error: str) -> int:
        """Open an outage of ``service`` or extend the open one; answer its id."""
        now = utc_now()
        with self._db() as db:
            row = db.execute("SELECT id, first_run_id, last_run_id FROM outages WHERE service = ? AND back_at IS NULL"
                             " ORDER BY id DESC LIMIT 1", (service,)).fetchone()
            if row is None:
                return db.execute(
                    "INSERT INTO outages (service, first_seen_down_at, first_run_id, last_run_id, last_seen_down_at,"
                    " last_error) VALUES (?, ?, ?, ?, ?, ?)", (service, now, run_id, run_id, now, error[:2000])).lastrowid
            # A run counts once, however many of its tasks or tries saw the service down.
            new_run = run_id is not None and run_id not in (row["first_run_id"], row["last_run_id"])
            db.execute("UPDATE outages SET last_seen_down_at = ?, last_error = ?, runs_affected = runs_affected + ?,"
                       " last_run_id = coalesce(?, last_run_id) WHERE id = ?",
                       (now, error[:2000], int(new_run), run_id, row["id"]))
            return row["id"]

    def seen_up(self, service: str, run_id: str | None) -> dict[str, Any] | None:
        """Close the open outage of ``service``, if any; answer it."""
        with self._db() as db:
            row = db.execute("SELECT * FROM outages WHERE service = ? AND back_at IS NULL ORDER BY id DESC LIMIT 1",
                             (service,)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE outages SET back_at = ?, back_run_id = ? WHERE id = ?", (utc_now(), run_id, row["id"]))
        return dict(row)

    def open_outages(self) -> list[dict[str, Any]]:
        with self._db() as db:
            return [dict(r) for r in db.execute("SELECT * FROM outages WHERE back_at IS NULL ORDER BY id")]

    def outages(self, limit: int = 50) -> list[dict[str, Any]]:
        with self._db() as db:
            return [dict(r) for r in db.execute("SELECT * FROM outages ORDER BY id DESC LIMIT ?", (limit,))]

    def link_data_loss(self, recovery_id: int, *, run_id: str | None, detail: str, since: str | None) -> int:
        """Charge a loss found now to the broker's latest outage (open, or closed within the day), or, when no run
        saw the broker down (it restarted between two runs), record that outage now: from ``since`` (the last
        run that read from it) to now, no run affected, data lost. Answer the outage's id."""
        now = utc_now()
        day_ago = (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="milliseconds")
        with self._db() as db:
            row = db.execute("SELECT id FROM outages WHERE service = 'broker' AND (back_at IS NULL OR back_at >= ?)"
                             " ORDER BY id DESC LIMIT 1", (day_ago,)).fetchone()
            if row is not None:
                db.execute("UPDATE outages SET data_lost = 1, recovery_id = ? WHERE id = ?", (recovery_id, row["id"]))
                return row["id"]
            return db.execute(
                "INSERT INTO outages (service, first_seen_down_at, first_run_id, last_seen_down_at, back_at, back_run_id,"
                " runs_affected, last_error, data_lost, recovery_id) VALUES ('broker', ?, NULL, ?, ?, ?, 0, ?, 1, ?)",
                (since or now, now, now, run_id, f"not seen down by any run (restarted between runs): {detail}"[:2000],
                 recovery_id)).lastrowid

    # --- recoveries ---------------------------------------------------------------------------------
    def start_recovery(self, *, run_id: str | None, reason: str, detail: str, lost: Any, epoch: int) -> int:
        with self._db() as db:
            db.execute("UPDATE recoveries SET step = 'superseded' WHERE step NOT IN ('promoted', 'superseded')")
            return db.execute(
                "INSERT INTO recoveries (run_id, reason, detail, lost, epoch, step, started_at) VALUES (?, ?, ?, ?, ?, 'requested', ?)",
                (run_id, reason, detail, json.dumps(lost) if lost is not None else None, epoch, utc_now())).lastrowid

    def active_recovery(self) -> Recovery | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM recoveries WHERE step NOT IN ('promoted', 'superseded')"
                             " ORDER BY id DESC LIMIT 1").fetchone()
        return _recovery(row)

    def last_recovery(self) -> Recovery | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM recoveries ORDER BY id DESC LIMIT 1").fetchone()
        return _recovery(row)

    def recovery_step(self, recovery_id: int, step: str, *, run_id: str | None = None) -> None:
        column = {"snapshot_confirmed": "snapshot_confirmed_at", "promoted": "completed_at"}.get(step)
        with self._db() as db:
            db.execute("UPDATE recoveries SET step = ? WHERE id = ?", (step, recovery_id))
            if column:
                db.execute(f"UPDATE recoveries SET {column} = coalesce({column}, ?) WHERE id = ?", (utc_now(), recovery_id))
            if step == "promoted":
                db.execute("UPDATE recoveries SET completed_run_id = ? WHERE id = ?", (run_id, recovery_id))

    def recovery_signaled(self, recovery_id: int, signal_id: str) -> None:
        """An execute-snapshot signal was sent for the table: its id is what Debezium's notifications carry."""
        with self._db() as db:
            # A signal sent again (the table read again) needs a new confirmation, and a batch after it.
            db.execute("UPDATE recoveries SET step = 'signaled', signal_id = ?, signals = signals + 1,"
                       " snapshot_confirmed_at = NULL WHERE id = ?", (signal_id, recovery_id))

    def recoveries(self, limit: int = 50) -> list[dict[str, Any]]:
        with self._db() as db:
            return [dict(r) for r in db.execute("SELECT * FROM recoveries ORDER BY id DESC LIMIT ?", (limit,))]

    # --- operator commands --------------------------------------------------------------------------
    def begin_operation(self, kind: str, params: dict, origin: str) -> int:
        with self._db() as db:
            return db.execute("INSERT INTO operations (kind, params, origin, pid, started_at, status) VALUES (?, ?, ?, ?, ?, ?)",
                              (kind, json.dumps(params, default=str), origin, os.getpid(), utc_now(),
                               OperationStatus.RUNNING.value)).lastrowid

    def end_operation(self, op_id: int, *, ok: bool, detail: str) -> None:
        with self._db() as db:
            db.execute("UPDATE operations SET ended_at = ?, status = ?, detail = ? WHERE id = ?",
                       (utc_now(), (OperationStatus.DONE if ok else OperationStatus.FAILED).value, detail[:4000], op_id))

    def running_operation(self) -> dict[str, Any] | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM operations WHERE status = ? ORDER BY id DESC LIMIT 1",
                             (OperationStatus.RUNNING.value,)).fetchone()
        return dict(row) if row else None

    def operations(self, limit: int = 50) -> list[dict[str, Any]]:
        with self._db() as db:
            return [dict(r) for r in db.execute("SELECT * FROM operations ORDER BY id DESC LIMIT ?", (limit,))]

    # --- verifications and sinks --------------------------------------------------------------------
    def record_verification(self, run_id: str | None, started_at: str, result: str, compared: int, differing: int,
                            detail: Any) -> None:
        with self._db() as db:
            db.execute("INSERT INTO verifications (run_id, started_at, ended_at, result, compared, differing, detail)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (run_id, started_at, utc_now(), result, compared, differing, json.dumps(detail, default=str)))

    def verifications(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._db() as db:
            return [dict(r) for r in db.execute("SELECT * FROM verifications ORDER BY id DESC LIMIT ?", (limit,))]

    def record_sink(self, run_id: str, sink: str, *, status: str, generation: str | None, rows: int | None,
                    seconds: float | None, error: str | None = None) -> None:
        with self._db() as db:
            db.execute("INSERT INTO sink_results (run_id, sink, status, generation, rows, seconds, at, error)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, sink) DO UPDATE SET status = excluded.status,"
                       " generation = excluded.generation, rows = excluded.rows, seconds = excluded.seconds,"
                       " at = excluded.at, error = excluded.error",
                       (run_id, sink, status, generation, rows, seconds, utc_now(), error))

    def sink_results(self, run_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        with self._db() as db:
            if run_id:
                rows = db.execute("SELECT * FROM sink_results WHERE run_id = ? ORDER BY sink", (run_id,))
            else:
                rows = db.execute("SELECT * FROM sink_results ORDER BY at DESC LIMIT ?", (limit,))
            return [dict(r) for r in rows]


def _incarnation(row) -> Incarnation | None:
    if row is None:
        return None
    clean = json.loads(row["clean_end"]) if row["clean_end"] else None
    return Incarnation(row["seq"], row["topic"], row["topic_id"],
                       {int(p): int(o) for p, o in clean.items()} if clean is not None else None)


def _recovery(row) -> Recovery | None:
    if row is None:
        return None
    return Recovery(row["id"], row["reason"], row["detail"], row["epoch"], row["step"], row["started_at"],
                    row["snapshot_confirmed_at"], row["run_id"], row["signal_id"], row["signals"])
