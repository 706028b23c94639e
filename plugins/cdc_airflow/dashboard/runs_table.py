"""The runs table as data: one view per run (status with tries, events, offsets moved, merge, rows, duration,
error), idle runs folded, and what happened beside the runs (outages, rebuilds, verifications, operator
commands) as lines between them. The page renders it and the JSON API returns it as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import quote

from cdc_pipeline.formatting import (
    describe_ranges, describe_verify,
    count_text, duration_text, hhmm, lsn_text, notes_list, one_line, parse_time, plural, service_name, time_text,
)
from cdc_pipeline.history import OperationStatus, RunStatus, TryStatus

TABLE_GROUP = "table"  # cdc_airflow.tables_dag's mapped group (not imported: that module needs the Task SDK)
AIRFLOW_RUN_PREFIXES = ("scheduled__", "manual__", "backfill__", "asset_triggered__", "dataset_triggered__")
EVENT_KINDS = (("creates", "c"), ("updates", "u"), ("deletes", "d"), ("reads", "r"), ("truncates", "t"))
# Airflow's own states (DagRunState) of a run that has ended.
AIRFLOW_ENDED = ("failed", "success")
# A run Airflow should long have ended (the DAG's dagrun_timeout is 30 min) but whose end never reached the
# history: the worker died or Airflow timed the run out before finish_run.
UNFINISHED_AFTER_SECONDS = 35 * 60


@dataclass(frozen=True)
class AirflowLinks:
    """URLs of Airflow 3's own pages for one DAG; ``root`` is Airflow's base path ("" at the server root).
    ``table_group``: the pipeline is a table of a connector of several, whose merge and sinks run as instances of
    the mapped group ``table`` (their logs are one click further, on the instance named by the table)."""

    root: str
    dag_id: str
    table_group: bool = False

    def for_kind(self, kind: str | None) -> AirflowLinks:
        """A backfill run is a run of the connector's backfill DAG."""
        if kind == "backfill":
            return replace(self, dag_id=f"{self.dag_id}_backfill", table_group=False)
        return self

    def dag(self) -> str:
        return f"{self.root}/dags/{quote(self.dag_id, safe='')}"

    def run(self, run_id: str) -> str:
        return f"{self.dag()}/runs/{quote(run_id, safe='')}"

    def task_log(self, run_id: str, task_id: str, try_number: int) -> str:
        if self.table_group and (task_id == "merge_batch" or task_id.startswith("sink_")):
            return f"{self.run(run_id)}/tasks/{quote(f'{TABLE_GROUP}.{task_id}', safe='')}/mapped"
        return f"{self.run(run_id)}/tasks/{quote(task_id, safe='')}?try_number={int(try_number)}"

    def dashboard_tab(self) -> str:
        return f"{self.dag()}/plugin/cdc-dashboard"


def is_airflow_run(run_id: str) -> bool:
    return run_id.startswith(AIRFLOW_RUN_PREFIXES)


def run_state(run: dict[str, Any], tries: list[dict[str, Any]], now: datetime,
              airflow_state: str | None = None) -> tuple[str, str]:
    """What to show as the run's status, and its tone (ok, bad, warn, busy, idle).

    The history writes a run's final status only in its last task, as Airflow decides it; until then the
    task tries tell the story: a failed try with tries left is "retrying <task> 2/4" (the try to come).
    ``airflow_state`` is Airflow's own state of the run when it is known: a run Airflow ended without its
    last task (marked failed by hand, timed out, its worker lost) never gets a final status in the history.
    """
    status = run.get("status") or RunStatus.STARTED.value
    most = max([int(t.get("try_number") or 1) for t in tries] + [int(run.get("tries") or 1)])
    final = status in {s.value for s in RunStatus if s.finished}
    if final:
        after = f" after {most} tries" if most > 1 else ""
        tone = {RunStatus.FAILED.value: "bad", RunStatus.SKIPPED.value: "idle"}.get(status, "warn" if most > 1 else "ok")
        return status + after, tone
    if airflow_state in AIRFLOW_ENDED:
        return f"{airflow_state} in Airflow, ended before finish_run", "bad" if airflow_state == "failed" else "warn"
    latest: dict[str, dict[str, Any]] = {}
    for attempt in tries:
        task = attempt["task_id"]
        if task not in latest or int(attempt["try_number"]) >= int(latest[task]["try_number"]):
            latest[task] = attempt
    for attempt in latest.values():
        tried, allowed = int(attempt["try_number"]), int(attempt.get("max_tries") or 1)
        if attempt["status"] == TryStatus.FAILED.value and tried < allowed:
            return f"retrying {attempt['task_id']} {tried + 1}/{allowed}", "warn"
    for attempt in latest.values():
        tried, allowed = int(attempt["try_number"]), int(attempt.get("max_tries") or 1)
        if attempt["status"] == TryStatus.RUNNING.value and tried > 1:
            return f"retrying {attempt['task_id']} {tried}/{allowed}", "warn"
    started = parse_time(run.get("started_at"))
    if started and (now - started).total_seconds() > UNFINISHED_AFTER_SECONDS:
        return "unfinished (no final status recorded)", "warn"
    return "running" if status == RunStatus.STARTED else f"running ({status})", "busy"


def run_view(run: dict[str, Any], tries: list[dict[str, Any]], links: AirflowLinks | None, now: datetime,
             airflow_state: str | None = None) -> dict[str, Any]:
    """One run as the table shows it (and the JSON API returns it)."""
    run_id = run["run_id"]
    links = links.for_kind(run.get("kind")) if links else None
    state_text, tone = run_state(run, tries, now, airflow_state)
    events = {label: int(run.get(key) or 0) for key, label in EVENT_KINDS}
    total = sum(events.values())
    ranges = {int(p): (int(r[0]), int(r[1])) for p, r in json.loads(run["offset_ranges"]).items()} \
        if run.get("offset_ranges") else {}
    moved = {p: r for p, r in ranges.items() if r[1] > r[0]}
    started, ended = parse_time(run.get("started_at")), parse_time(run.get("ended_at"))
    ended_elsewhere = ended is None and airflow_state in AIRFLOW_ENDED  # no end time recorded
    seconds = None if not started or ended_elsewhere else ((ended or now) - started).total_seconds()
    merge = {"inserted": run.get("merge_inserted"), "updated": run.get("merge_updated"),
             "deleted": run.get("merge_deleted"), "truncated": run.get("merge_truncated")}
    airflow = links is not None and is_airflow_run(run_id)
    view = {
        "run_id": run_id,
        "kind": run.get("kind"),
        "status": run.get("status"),
        "state": state_text,
        "tone": tone,
        "started_at": run.get("started_at"),
        "ended_at": run.get("ended_at"),
        "started": time_text(run.get("started_at"), now),
        "duration_seconds": None if seconds is None else round(seconds, 1),
        "duration": duration_text(seconds) + ("" if ended or seconds is None else " so far"),
        "events": events,
        "events_total": total,
        "events_text": " · ".join(f"{label} {count:,}" for label, count in events.items() if count) or "—",
        "offsets": {str(p): list(r) for p, r in sorted(ranges.items())},
        "offsets_text": describe_ranges(moved) if moved else "—",
        "offsets_all_text": describe_ranges(ranges) if ranges else "—",
        "merge": merge,
        "merge_text": _merge_text(merge),
        "destiny_rows": run.get("destiny_rows"),
        "rows_text": count_text(run.get("destiny_rows")),
        "backlog_after": run.get("backlog"),
        "max_lsn": run.get("max_lsn"),
        "max_lsn_text": lsn_text(run.get("max_lsn")),
        "max_source_ts": run.get("max_source_ts"),
        "error": run.get("error"),
        "error_line": one_line(run.get("error")),
        "notes": notes_list(run.get("notes")),
        "recovery": run.get("recovery"),
        "schema_change": run.get("schema_change"),
        "seconds": {"register": run.get("register_seconds"), "consume": run.get("consume_seconds"),
                    "merge": run.get("merge_seconds")},
        "tries": [_try_view(t, run_id, links if airflow else None) for t in tries],
        "airflow_url": links.run(run_id) if airflow else None,
        "airflow_state": airflow_state,
    }
    view["idle"] = is_idle(view)
    return view


def _merge_text(merge: dict[str, Any]) -> str:
    if all(value is None for value in merge.values()):
        return "—"
    parts = [f"+{merge['inserted'] or 0:,}", f"~{merge['updated'] or 0:,}", f"−{merge['deleted'] or 0:,}"]
    if merge.get("truncated"):
        parts.append(f"truncated {merge['truncated']:,}")
    return " ".join(parts)


def _try_view(attempt: dict[str, Any], run_id: str, links: AirflowLinks | None) -> dict[str, Any]:
    return {
        "task_id": attempt["task_id"], "try_number": attempt["try_number"], "max_tries": attempt.get("max_tries"),
        "status": attempt["status"], "started_at": attempt.get("started_at"), "ended_at": attempt.get("ended_at"),
        "duration": duration_text(attempt.get("duration_seconds")), "error_line": one_line(attempt.get("error")),
        "log_url": links.task_log(run_id, attempt["task_id"], attempt["try_number"]) if links else None,
    }


def is_idle(view: dict[str, Any]) -> bool:
    """Nothing to look at: no event, no error, no retry, no rebuild or schema change, and the run is over."""
    return (view["status"] in (RunStatus.MERGED.value, RunStatus.SKIPPED.value, RunStatus.SUCCEEDED.value)
            and view["events_total"] == 0 and not view["error"] and not view["recovery"]
            and not view["schema_change"] and view["tone"] != "warn")


def verify_detail(raw: str | None) -> str | None:
    """A verification's record in words: where it compared, what it explained, which keys differ (keys only)."""
    try:
        record = json.loads(raw) if raw else None
    except ValueError:
        return raw
    if not isinstance(record, dict):
        return raw
    parts = [f"compared at WAL {record['lsn']}"] if record.get("lsn") else []
    if record.get("explained"):
        parts.append(f"{plural(record['explained'], 'key')} changed since the snapshot, compared as of it")
    if record.get("unverifiable"):
        parts.append(f"{plural(record['unverifiable'], 'key')} could not be compared (no earlier change kept)")
    differing = [d.get("problem") or f"key {', '.join(map(str, d.get('key') or []))}"
                 for d in record.get("differing") or []]
    if differing:
        parts.append("differs: " + "; ".join(differing))
    if record.get("action"):
        parts.append(record["action"])
    return " · ".join(parts) or None


def incident_line(item: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An outage, rebuild, verification or operator command as one line between the runs."""
    kind = item["kind"]
    if kind == "outage":
        name = service_name(item["service"])
        when = (f"since {hhmm(item['first_seen_down_at'])}, still down" if not item.get("back_at")
                else f"{hhmm(item['first_seen_down_at'])}–{hhmm(item['back_at'])}")
        text = f"{name} unreachable {when} · {plural(item.get('runs_affected') or 1, 'run')} affected"
        if item.get("data_lost"):
            text += f" · data lost, rebuild {item.get('recovery_id')}"
        tone = "bad" if not item.get("back_at") else "warn"
        detail = item.get("last_error")
    elif kind == "recovery":
        text = f"rebuild {item['id']} ({item['reason'].replace('_', ' ')}): {one_line(item['detail'], 120)} · {item['step']}"
        if item.get("completed_at"):
            text += f" at {hhmm(item['completed_at'])}"
        tone = "warn" if item["step"] not in ("promoted", "superseded") else "info"
        detail = item.get("detail") if one_line(item["detail"], 120) != one_line(item["detail"], 10_000) else None
    elif kind == "verify":
        result = item.get("result") or "running"
        counts, tone = describe_verify(item)
        text = f"verify: {result}{counts}"
        detail = verify_detail(item.get("detail"))
    else:
        text = f"operator command {item.get('command')} ({item.get('origin') or '?'}): {item.get('status')}"
        if item.get("ended_at"):
            text += f" at {hhmm(item['ended_at'])}"
        tone = {OperationStatus.FAILED: "bad", OperationStatus.RUNNING: "busy"}.get(item.get("status"), "info")
        detail = item.get("detail") if (item.get("detail") or "") not in ("", item.get("status")) else None
    return {"type": "line", "kind": kind, "at": item["at"], "time": time_text(item["at"], now), "text": text,
            "tone": tone, "detail": detail}


def table_entries(views: list[dict[str, Any]], incidents: list[dict[str, Any]], now: datetime, *,
                  fold_idle: bool = True) -> list[dict[str, Any]]:
    """Runs (newest first) and incident lines merged by time; two or more idle runs in a row become one fold:
    ``{"type": "fold", "text": "14 idle runs 12:48–13:01", "runs": [...]}``."""
    timeline: list[dict[str, Any]] = [{"type": "run", "at": v["started_at"] or "", **v} for v in views]
    timeline += [incident_line(item, now) for item in incidents]
    timeline.sort(key=lambda entry: entry["at"] or "", reverse=True)
    entries: list[dict[str, Any]] = []
    idle: list[dict[str, Any]] = []

    def flush() -> None:
        if len(idle) >= 2 and fold_idle:
            entries.append(_fold(list(idle)))
        else:
            entries.extend(idle)
        idle.clear()

    for entry in timeline:
        if entry["type"] == "run" and entry["idle"]:
            idle.append(entry)
            continue
        flush()
        entries.append(entry)
    flush()
    return entries


def _fold(runs: list[dict[str, Any]]) -> dict[str, Any]:
    skipped = sum(1 for run in runs if run["status"] == RunStatus.SKIPPED.value)
    text = f"{len(runs)} idle runs {hhmm(runs[-1]['started_at'])}–{hhmm(runs[0]['started_at'])}"
    if skipped:
        text += f" ({skipped} skipped while an operator command ran)"
    return {"type": "fold", "text": text, "count": len(runs), "at": runs[0]["at"], "runs": runs}

