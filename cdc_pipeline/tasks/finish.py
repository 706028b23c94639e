"""finish_run: the run's final status and its one-line summary; fails the run when one of its tasks failed."""

from __future__ import annotations

import logging
from typing import Any

from cdc_pipeline.errors import RunFailedError
from cdc_pipeline.formatting import hhmm_utc, one_line, service_name
from cdc_pipeline.history import RunRef, RunStatus, TryStatus, utc_now
from cdc_pipeline.pipeline import Pipeline
from cdc_pipeline.sinks.results import sinks_line, sinks_summary

log = logging.getLogger(__name__)

SUMMARY_FIELDS = (
    "status", "offset_ranges", "creates", "updates", "deletes", "reads", "truncates", "tombstones", "dead_lettered",
    "before_start", "max_lsn", "max_source_ts", "backlog", "merge_inserted", "merge_updated", "merge_deleted",
    "merge_truncated", "merge_stale", "destiny_rows", "register_seconds", "consume_seconds", "merge_seconds",
    "recovery", "schema_change", "error",
)


def finish_run(pipe: Pipeline, run: RunRef, failed_tasks: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Close the run in the history and answer its summary; raise if one of its tasks failed.

    ``failed_tasks`` are what the orchestrator saw fail: a task can fail before it reaches the history (a
    missing connection, say), so both sources count.
    """
    history = pipe.history
    history.runs.ensure_run(run)
    record = history.runs.get_run(run.run_id) or {}
    error = record.get("error")
    failed = bool(failed_tasks) or (error is not None and "retrying" not in error.split(":", 1)[0])
    if failed and not error:
        error = f"{', '.join(failed_tasks)} failed: see their task logs"
    status = RunStatus.FAILED if failed else _final(record.get("status"))
    history.runs.update_run(run.run_id, status=status.value, ended_at=utc_now(), error=error if failed else None)
    summary = {k: record.get(k) for k in SUMMARY_FIELDS}
    sinks = history.incidents.sink_results(run.run_id)
    summary.update(status=status.value, error=error if failed else None, history=str(pipe.layout.history),
                   destiny=str(pipe.layout.destiny), sinks=sinks_summary(sinks),
                   line=" · ".join(p for p in (run_line({**record, "status": status.value}), sinks_line(sinks)) if p))
    if failed:
        message = "; ".join(p for p in (failure_line(pipe, record, error or ""), sinks_line(sinks)) if p)
        summary["line"] = message
        raise RunFailedError(message)
    log.info("run %s: %s", run.run_id, summary["line"])
    return summary


def _final(status: str | None) -> RunStatus:
    if status in (RunStatus.SKIPPED.value, RunStatus.MERGED.value):
        return RunStatus(status)
    if status == RunStatus.COMMITTED.value:  # nothing was buffered: nothing to merge
        return RunStatus.MERGED
    return RunStatus.SUCCEEDED if status in (None, RunStatus.STARTED.value) else RunStatus(status)


def run_line(record: dict[str, Any]) -> str:
    """What the run did, in one line: ``+60 events (c 10 · u 40 · d 10) · 27 rows · backlog 0``."""
    events = sum(record.get(k) or 0 for k in ("creates", "updates", "deletes", "reads", "truncates"))
    parts = [f"+{events} events"]
    detail = [f"{label} {record[key]}" for key, label in (("creates", "c"), ("updates", "u"), ("deletes", "d"),
                                                          ("reads", "r"), ("truncates", "t")) if record.get(key)]
    if detail:
        parts[0] += f" ({' · '.join(detail)})"
    if record.get("destiny_rows") is not None:
        parts.append(f"{record['destiny_rows']} rows")
    if record.get("backlog") is not None:
        parts.append(f"backlog {record['backlog']}")
    if record.get("recovery"):
        parts.append("recovery: " + record["recovery"].split(". ")[0])
    if record.get("schema_change"):
        parts.append("schema change")
    if record.get("status") == RunStatus.SKIPPED.value:
        parts = ["skipped (an operator command was running)"]
    return " · ".join(parts)


def failure_line(pipe: Pipeline, record: dict[str, Any], error: str) -> str:
    """One line for a failed run: the outage that explains it if there is one, and what was drained anyway."""
    events = sum(record.get(k) or 0 for k in ("creates", "updates", "deletes", "reads", "truncates"))
    drained = f"drained {events} events into {pipe.layout.destiny.name}" if record.get("status") in (
        RunStatus.MERGED.value, RunStatus.COMMITTED.value) else "nothing drained"
    outages = pipe.history.incidents.open_outages()
    if outages:
        down = "; ".join(f"{service_name(o['service'])} unreachable since {hhmm_utc(o['first_seen_down_at'])}"
                         for o in outages)
        return f"{down}; {drained}"
    return f"{one_line(error, 400)}; {drained}"



def finish_tables(pipes: list[Pipeline], run: RunRef, failed_tasks: dict[str, list[str]]) -> dict[str, Any]:
    """Close the run of every table of a connector; one line per table, and the run fails when one table did.

    ``failed_tasks`` maps a table to the tasks the orchestrator saw fail that may concern it (a connector-wide
    task, or a task shared by several tables): one whose last try for this table succeeded, as its own history
    says, does not count against it."""
    tables: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    for pipe in pipes:
        name = pipe.spec.qualified_table
        try:
            tables[name] = finish_run(pipe, run, _not_done(pipe, run, failed_tasks.get(name, ())))
        except RunFailedError as exc:
            tables[name] = {"status": RunStatus.FAILED.value, "line": str(exc)}
            failures.append(name)
    merged = sum(1 for t in tables.values() if t["status"] != RunStatus.FAILED.value)
    moved = [f"{name}: {t['line']}" for name, t in tables.items() if t["status"] == RunStatus.FAILED.value
             or not t["line"].startswith("+0 events")]
    line = f"{merged}/{len(pipes)} tables ok" + (f"; FAILED {', '.join(failures)}" if failures else "")
    if moved:
        line += " · " + " · ".join(moved)
    summary = {"status": RunStatus.FAILED.value if failures else RunStatus.MERGED.value, "line": line,
               "tables": tables}
    if failures:
        raise RunFailedError(line)
    log.info("run %s: %s", run.run_id, line)
    return summary


def _not_done(pipe: Pipeline, run: RunRef, tasks) -> list[str]:
    last = {t["task_id"]: t["status"] for t in pipe.history.runs.tries(run.run_id)}  # in start order: the last wins
    return [task for task in tasks if last.get(task) != TryStatus.SUCCESS.value]
