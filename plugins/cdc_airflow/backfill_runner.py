"""The body of ``backfill_interval`` (the connector's backfill DAG): for a run of [start, end), each table as of
``end`` and the changes of the interval, from the change log.

Per table, atomically:

- ``snapshots/<end as YYYYMMDDTHHMMSSZ>.csv``: the table as of ``end``, in destiny.csv's form;
- ``changes/<start>_<end>.csv``: the change events committed in [start, end), in buffer.csv's form.

It reads the pipeline folder only: no lock, no offsets, no buffer.csv, no destiny.csv, no state is written, so it
runs beside the scheduled runs. The same interval gives the same bytes, and a file that already holds them is
left as it is. Each table's run history records the run under the backfill DAG's own run id (kind ``backfill``,
closed by this task), and the Airflow run's note says which files it wrote.

The cron schedule uses Airflow 3's CronTriggerTimetable, whose runs have an empty data interval at their logical
date: the run at ``end`` covers the schedule period before it, [previous tick, end). A backfill from 12:00 to
12:06 makes seven runs, 12:00 … 12:06, the first covering [11:59, 12:00).

A refusal the next runs will lift (the pipeline has not read that far yet) fails the try and Airflow's retries
ask again; one that waiting cannot lift (before the change log's earliest instant) fails at once, no retry, with
one line naming that instant.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from croniter import croniter

from cdc_airflow.folder_owner import require_owned_folder
from cdc_airflow.run_notes import set_run_note
from cdc_airflow.task_runtime import run_ref
from cdc_pipeline.backfill import write_as_of, write_changes
from cdc_pipeline.backfill.limits import plain_utc
from cdc_pipeline.connector_spec import ConnectorSpec
from cdc_pipeline.errors import CdcError, ConfigError
from cdc_pipeline.history import RunKind, RunRef, RunStatus, utc_now
from cdc_pipeline.instants import compact, parse_instant
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.pipeline import Pipeline, connector_pipelines
from cdc_pipeline.tasks.tracking import tracked

log = logging.getLogger(__name__)


def run(spec: ConnectorSpec, data_dir: Path, context) -> dict[str, Any]:
    """Every table of the connector in turn; the run's note lists what each wrote (or why it could not)."""
    from cdc_airflow.runners import each_table

    require_owned_folder(spec, data_dir)

    start, end = interval(context)
    ref = run_ref(context)
    pipes = {p.spec.qualified_table: p for p in connector_pipelines(data_dir, spec)}
    try:
        results = each_table(list(pipes), lambda table: backfill_table(pipes[table], ref, start, end))
    except CdcError as exc:
        set_run_note(context, f"FAILED: {' '.join(str(exc).split())}"[:1000])
        raise
    set_run_note(context, " · ".join(r["line"] if len(pipes) == 1 else f"{table}: {r['line']}"
                                     for table, r in results.items()))
    return results if len(pipes) > 1 else next(iter(results.values()))


def backfill_table(pipe: Pipeline, ref: RunRef, start: datetime, end: datetime) -> dict[str, Any]:
    """One table's files for [start, end), recorded as a run of its own in the table's history and closed here:
    succeeded, or failed once no retry can help."""
    runs = pipe.history.runs
    try:
        with tracked(pipe.history, ref, "backfill_interval") as summary:
            runs.update_run(ref.run_id, kind=RunKind.BACKFILL.value, logical_start=start.isoformat(),
                            logical_end=end.isoformat())
            summary.update(write_interval(pipe.layout, start, end))
            runs.add_note(ref.run_id, summary["line"])
    except CdcError as exc:
        if ref.last_try or not exc.retry_helps:
            runs.update_run(ref.run_id, status=RunStatus.FAILED.value, ended_at=utc_now())
        raise
    runs.update_run(ref.run_id, status=RunStatus.SUCCEEDED.value, ended_at=utc_now())
    return summary


def write_interval(layout: PipelineLayout, start: datetime, end: datetime) -> dict[str, Any]:
    """Write the interval's snapshot and changes; answer what was written (and the line for the log)."""
    snapshot = write_as_of(layout, end, layout.snapshots_dir / f"{compact(end)}.csv")
    log.info("backfill: %s", snapshot.line())
    changes = write_changes(layout, start, end, layout.changes_dir / f"{compact(start)}_{compact(end)}.csv")
    log.info("backfill: %s", changes.line())
    line = (f"backfill [{_minute_text(start)}, {_minute_text(end)}): {snapshot.path.parent.name}/{snapshot.path.name} "
            f"({snapshot.rows} rows{'' if snapshot.written else ', unchanged'}), {changes.path.parent.name}/"
            f"{changes.path.name} ({changes.events} changes{'' if changes.written else ', unchanged'})")
    log.info("%s", line)
    return {"start": start.isoformat(), "end": end.isoformat(), "snapshot": str(snapshot.path),
            "snapshot_rows": snapshot.rows, "snapshot_written": snapshot.written, "changes": str(changes.path),
            "changes_events": changes.events, "changes_written": changes.written, "line": line}


def interval(context) -> tuple[datetime, datetime]:
    """[start, end) of the run: its data interval, or, when that is empty (a cron trigger timetable), from the
    schedule's previous tick to the logical date."""
    dag_run = context["dag_run"]
    end = context.get("data_interval_end") or dag_run.logical_date
    if end is None:
        raise ConfigError(f"run {dag_run.run_id} has no logical date, so it names no interval to backfill")
    end = _utc(end)
    start = context.get("data_interval_start")
    if start is not None and _utc(start) < end:
        return _utc(start), end
    return previous_tick(context["dag"], end), end


def previous_tick(dag, moment: datetime) -> datetime:
    timetable = getattr(dag, "timetable", None)
    expression = getattr(timetable, "expression", None) or (dag.schedule if isinstance(dag.schedule, str) else None)
    if not expression:
        raise ConfigError(f"DAG {dag.dag_id} has no cron schedule, so a backfill run's interval start is unknown")
    return _utc(croniter(expression, moment).get_prev(datetime))


def operation(layout: PipelineLayout, name: str, params: dict) -> dict[str, Any]:
    """``as_of`` / ``changes`` for the operations DAG: the same files a backfill run of that interval writes.
    ``params``: ``at`` (as_of), ``from`` and ``to`` (changes), ISO instants."""
    if name == "as_of":
        at = _instant(params.get("at"), "at")
        result = write_as_of(layout, at, layout.snapshots_dir / f"{compact(at)}.csv")
    elif name == "changes":
        start, end = _instant(params.get("from"), "from"), _instant(params.get("to"), "to")
        result = write_changes(layout, start, end, layout.changes_dir / f"{compact(start)}_{compact(end)}.csv")
    else:
        raise ConfigError(f"operation {name!r} is not as_of or changes")
    log.info("%s", result.line())
    return {"file": str(result.path), "written": result.written, "line": result.line()}


def _instant(value, what: str) -> datetime:
    moment = parse_instant(value, what)
    if moment is None:
        raise ConfigError(f"{what} is needed, e.g. 2026-11-24T12:00:00Z (UTC when no zone is given)")
    return moment


def _utc(moment: datetime) -> datetime:
    return plain_utc(moment)


def _minute_text(moment: datetime) -> str:
    """An interval bound in a log line: to the minute, with its seconds only when it has some."""
    return moment.strftime("%Y-%m-%d %H:%M" if moment.second == 0 else "%Y-%m-%d %H:%M:%S")
