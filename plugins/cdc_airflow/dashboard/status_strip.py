"""The status strip as data: cdc_pipeline.commands.status's one status per pipeline, cut into the cells the page shows
on top (state, data as of, last merge, backlog, connector, slot, rows, dead letters, outages and rebuild,
last error, last verify) plus the problems, each cell with a tone the page colours by."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cdc_pipeline.formatting import (
    age_text, ago_text, count_text, describe_verify, hhmm_utc, one_line, plural, service_name, size_text, time_text,
)
from cdc_pipeline.commands.status import PipelineStatus

STATE_TONES = {"ok": "ok", "paused": "warn", "late": "warn", "rebuilding": "warn", "not started": "idle",
               "on another host": "idle"}
LARGE_WAL = 1024 ** 3  # a slot holding back more than this much WAL deserves a look


def state_label(status: PipelineStatus) -> str:
    """``OK``, ``LATE``, ``SOURCE DOWN since 12:53`` ..."""
    label = status.state.upper()
    if status.state_since and status.state.endswith(" down"):
        label += f" since {hhmm_utc(status.state_since)}"
    return label


def strip_cells(status: PipelineStatus, now: datetime) -> list[dict[str, Any]]:
    cells = [
        _cell("state", "state", state_label(status), status.headline, STATE_TONES.get(status.state, "bad")),
        _cell("data_as_of", "data as of", time_text(status.data_as_of, now),
              f"newest source commit applied, {ago_text(status.data_as_of, now)}" if status.data_as_of
              else "no change merged yet", "info" if status.data_as_of else "idle"),
        _cell("last_merge", "last successful merge", time_text(status.last_merge_at, now),
              ago_text(status.last_merge_at, now)
              + (f" · caught up at {time_text(status.caught_up_at, now)}" if status.caught_up_at else ""),
              "ok" if status.last_merge_at else "idle"),
        _backlog_cell(status),
        _connector_cell(status),
        _slot_cell(status),
        _cell("rows", "rows in destiny.csv", count_text(status.destiny_rows), "after the last merge", "info"),
        _cell("dead_letters", "dead letters", count_text(status.dead_letters),
              "messages set aside in dead_letters.jsonl" if status.dead_letters else "none",
              "warn" if status.dead_letters else "ok"),
        _incidents_cell(status),
        _verify_cell(status, now),
    ]
    if status.last_error:
        cells.append(_cell("last_error", "last error", one_line(status.last_error), "", "bad", wide=True,
                           title=status.last_error))
    return cells


def problems(status: PipelineStatus) -> list[str]:
    """What the page lists under the strip: the status's problems but the last failed run's error, which has
    its own cell."""
    shown = f"last failed run: {status.last_error}"
    return [problem for problem in status.problems if problem != shown]


def _cell(key: str, label: str, value: str, detail: str | None, tone: str, *, wide: bool = False,
          title: str | None = None) -> dict[str, Any]:
    return {"key": key, "label": label, "value": value, "detail": detail or "", "tone": tone, "wide": wide,
            "title": title if title is not None else detail or ""}


def _backlog_cell(status: PipelineStatus) -> dict[str, Any]:
    backlog = status.backlog
    waiting = {p: n for p, n in sorted(backlog.partitions.items()) if n}
    parts = " · ".join(f"p{p} {n:,}" for p, n in waiting.items())
    if backlog.partitions and not waiting:
        parts = f"{len(backlog.partitions)} partitions, nothing waiting"
    oldest = f"oldest {age_text(backlog.oldest_age_seconds)}" if backlog.oldest_age_seconds is not None else ""
    source = "live from Kafka" if backlog.measured == "kafka" else "as of the last run (Kafka not asked live)"
    detail = " · ".join(x for x in (parts, oldest, source) if x)
    late = backlog.oldest_age_seconds is not None and backlog.oldest_age_seconds > 300
    tone = "warn" if late or (backlog.total and backlog.measured != "kafka") else ("info" if backlog.total else "ok")
    if backlog.approximate:
        detail += " · counted from offsets: each delete's tombstone counts too"
    return _cell("backlog", "backlog", f"{'about ' if backlog.approximate else ''}{backlog.total:,} events", detail,
                 tone)


def _connector_cell(status: PipelineStatus) -> dict[str, Any]:
    connector = status.connector
    if not connector:
        return _cell("connector", "connector", "—", _unasked(status, "Kafka Connect"), "idle")
    tasks = " · ".join(f"task {t.get('id')} {t.get('state')}" for t in connector.get("tasks") or []) or "no task"
    healthy = connector.get("state") == "RUNNING" and all(t.get("state") == "RUNNING" for t in connector.get("tasks") or [])
    return _cell("connector", "connector", str(connector.get("state")), tasks, "ok" if healthy else "bad")


def _slot_cell(status: PipelineStatus) -> dict[str, Any]:
    slot = status.slot
    if not slot:
        return _cell("slot", "WAL retained by the slot", "—", _unasked(status, "PostgreSQL"), "idle")
    if not slot.get("exists", True):
        return _cell("slot", "WAL retained by the slot", "no slot", f"slot {slot.get('slot')} does not exist", "warn")
    retained = slot.get("retained_wal_bytes")
    detail = f"slot {slot.get('slot')} {'active' if slot.get('active') else 'inactive'}"
    tone = "warn" if (retained or 0) > LARGE_WAL else "ok"
    return _cell("slot", "WAL retained by the slot", size_text(retained), detail, tone)


def _unasked(status: PipelineStatus, service: str) -> str:
    answer = status.probes.get(service)
    if not answer or answer == "not asked":
        return f"{service} not asked from here"
    return f"could not ask {service}: {answer}"


def _incidents_cell(status: PipelineStatus) -> dict[str, Any]:
    lines = [f"{service_name(o['service']).removeprefix('the ')} down since {hhmm_utc(o['first_seen_down_at'])} "
             f"({plural(o.get('runs_affected') or 1, 'run')})" for o in status.outages]
    if status.recovery:
        rebuild = status.recovery
        lines.append(f"rebuild {rebuild['id']} ({rebuild['reason'].replace('_', ' ')}): {rebuild['step']}")
    if not lines:
        return _cell("incidents", "outages · rebuild", "none open", "no open outage, no rebuild", "ok")
    value = f"{len(status.outages)} outage{'s' if len(status.outages) != 1 else ''}" if status.outages else "rebuilding"
    if status.outages and status.recovery:
        value += " · rebuilding"
    return _cell("incidents", "outages · rebuild", value, " · ".join(lines), "bad" if status.outages else "warn")


def _verify_cell(status: PipelineStatus, now: datetime) -> dict[str, Any]:
    verify = status.last_verify
    if not verify:
        return _cell("verify", "last verify", "never", "compare with the source: the ops DAG's verify", "idle")
    result = verify.get("result") or "running"
    counts, tone = describe_verify(verify)
    detail = f"{ago_text(verify.get('ended_at') or verify.get('started_at'), now)}{counts}"
    return _cell("verify", "last verify", result, detail, tone)


def status_json(status: PipelineStatus, now: datetime) -> dict[str, Any]:
    """The status as the API returns it: every field of cdc_pipeline.commands.status plus the strip's cells."""
    data = status.as_dict()
    data["label"] = state_label(status)
    data["healthy"] = status.healthy
    data["cells"] = strip_cells(status, now)
    data["attention"] = problems(status)
    return data
