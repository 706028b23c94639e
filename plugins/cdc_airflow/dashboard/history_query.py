"""The dashboard's read-only questions to runs.sqlite: a filtered page of runs, their task tries, and what
happened beside the runs (outages, recoveries, verifications, operator commands) within a time span.

Opened with ``mode=ro`` on every request (cdc_pipeline.history.db.connect): no DDL, no mkdir, no write.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdc_pipeline.history import RunStatus, TryStatus
from cdc_pipeline.history.runs import CARRIED_DATA
from cdc_pipeline.history.db import connect

UNFINISHED = (RunStatus.STARTED.value, RunStatus.BUFFERED.value, RunStatus.COMMITTED.value)
# The filters a user can pick; "running" means Airflow has not finished the run (the history writes the final
# status only at the end), "retried" that one of its tasks needed, or is waiting for, another try.
STATUS_FILTERS = ("all", RunStatus.FAILED.value, "running", "retried", RunStatus.MERGED.value, RunStatus.SKIPPED.value,
                  RunStatus.SUCCEEDED.value)
MAX_PAGE = 500


@dataclass(frozen=True)
class RunFilter:
    status: str = "all"
    with_data: bool = False

    @classmethod
    def parse(cls, status: str | None, with_data: str | bool | None) -> RunFilter:
        """Lenient: an unknown status shows every run rather than an error page."""
        chosen = (status or "all").strip().lower()
        if chosen not in STATUS_FILTERS:
            chosen = "all"
        data = with_data if isinstance(with_data, bool) else str(with_data or "").lower() in ("1", "true", "yes", "on")
        return cls(chosen, data)

    def where(self) -> tuple[str, tuple]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.status == "running":
            clauses.append(f"status IN ({', '.join('?' for _ in UNFINISHED)})")
            params += UNFINISHED
        elif self.status == "retried":
            clauses.append("(coalesce(tries, 1) > 1 OR run_id IN (SELECT run_id FROM task_tries WHERE try_number > 1"
                           " OR (status = ? AND try_number < coalesce(max_tries, 1))))")
            params.append(TryStatus.FAILED.value)
        elif self.status != "all":
            clauses.append("status = ?")
            params.append(self.status)
        if self.with_data:
            clauses.append(CARRIED_DATA)
        return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), tuple(params)


def clamp_page(limit: Any, offset: Any, *, default: int = 50) -> tuple[int, int]:
    """Any limit and offset a URL can carry, turned into a valid page (never an error)."""
    def number(value: Any, fallback: int) -> int:
        try:
            return int(str(value).strip())
        except (TypeError, ValueError):
            return fallback

    return min(max(number(limit, default), 1), MAX_PAGE), max(number(offset, 0), 0)


def select_runs(path: Path, run_filter: RunFilter, limit: int, offset: int) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first: the page, and the start of the first run of the next (older) page, or None if there is
    none (pages of incidents are cut at the runs' starts, so each incident shows on exactly one page)."""
    where, params = run_filter.where()
    with connect(path, readonly=True) as db:
        rows = db.execute(f"SELECT * FROM runs {where} ORDER BY seq DESC LIMIT ? OFFSET ?",
                          (*params, limit + 1, offset)).fetchall()
    runs = [dict(row) for row in rows]
    older = runs[limit]["started_at"] or "" if len(runs) > limit else None
    return runs[:limit], older


def count_runs(path: Path, run_filter: RunFilter) -> int:
    where, params = run_filter.where()
    with connect(path, readonly=True) as db:
        return db.execute(f"SELECT count(*) FROM runs {where}", params).fetchone()[0]


def select_run(path: Path, run_id: str) -> dict[str, Any] | None:
    with connect(path, readonly=True) as db:
        row = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return dict(row) if row else None


def tries_of(path: Path, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every task try of these runs, in the order they started."""
    found: dict[str, list[dict[str, Any]]] = {run_id: [] for run_id in run_ids}
    if not run_ids:
        return found
    marks = ", ".join("?" for _ in run_ids)
    with connect(path, readonly=True) as db:
        rows = db.execute(f"SELECT * FROM task_tries WHERE run_id IN ({marks}) ORDER BY started_at, try_number",
                          tuple(run_ids)).fetchall()
    for row in rows:
        found.setdefault(row["run_id"], []).append(dict(row))
    return found


def sink_results_of(path: Path, run_id: str) -> list[dict[str, Any]]:
    with connect(path, readonly=True) as db:
        return [dict(r) for r in db.execute("SELECT * FROM sink_results WHERE run_id = ? ORDER BY sink", (run_id,))]


def incidents_between(path: Path, since: str | None, until: str | None, limit: int = 100) -> list[dict[str, Any]]:
    """Outages, recoveries, verifications and operator commands that began in [since, until), newest first;
    ``None`` leaves that side open. Each as ``{"kind", "at", ...the row}``."""
    queries = (
        ("outage", "outages", "first_seen_down_at"),
        ("recovery", "recoveries", "started_at"),
        ("verify", "verifications", "started_at"),
        ("operation", "operations", "started_at"),
    )
    found: list[dict[str, Any]] = []
    with connect(path, readonly=True) as db:
        for kind, table, column in queries:
            clauses, params = [], []
            if since:
                clauses.append(f"{column} >= ?")
                params.append(since)
            if until:
                clauses.append(f"{column} < ?")
                params.append(until)
            where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
            rows = db.execute(f"SELECT * FROM {table} {where} ORDER BY {column} DESC LIMIT ?", (*params, limit))
            for row in rows:
                entry = dict(row)
                if kind == "operation":
                    entry["command"] = entry.get("kind")  # the operations table's own kind: reset, verify, ...
                found.append({**entry, "kind": kind, "at": row[column]})
    found.sort(key=lambda item: item["at"] or "", reverse=True)
    return found[:limit]
