"""A pipeline's status, computed once and shown everywhere (the dashboard, ``python -m cdc_pipeline status``,
``./stack status``): is it healthy, how far behind is it, what did it do last.

``pipeline_status(pipe, probes)`` reads the run history and the state, and asks the live services through
``probes`` (each probe is optional: a page that cannot reach Kafka still shows the history's view).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cdc_pipeline.connector_spec import ConnectorSpec
from cdc_pipeline.history import History, RunStatus
from cdc_pipeline.formatting import age_text, ago_text, hhmm_utc, one_line, parse_time, size_text
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.pipeline import Pipeline

# How long a status command (CLI, ./stack status, the operations DAG) reads Kafka for the live backlog: past it
# the status says it could not ask and shows the last run's backlog. The dashboard asks with a few seconds.
STATUS_KAFKA_SECONDS = 30.0
LATE_AFTER = timedelta(minutes=5)      # no successful merge for this long: late
STATES = ("ok", "paused", "late", "failing", "source down", "connect down", "broker down", "rebuilding", "not started",
          "on another host")
SERVICE_STATE = {"postgres": "source down", "connect": "connect down", "broker": "broker down"}


@dataclass
class Backlog:
    """Events in Kafka not yet merged: per partition and total, and the age of the oldest one."""

    partitions: dict[int, int] = field(default_factory=dict)
    total: int = 0
    oldest_age_seconds: float | None = None
    measured: str = "history"      # "kafka" when read live from the broker, "history" from the last run
    # Counted from the broker's offsets without reading the records: a delete's tombstone counts as an event too.
    approximate: bool = False


@dataclass
class Probes:
    """Live answers; any may be None when that service cannot be asked from here."""

    backlog: Callable[[dict[int, int]], Backlog] | None = None      # given the resume point's ends
    connector: Callable[[], dict[str, Any] | None] | None = None    # {"state": ..., "tasks": [...]}
    slot: Callable[[], dict[str, Any] | None] | None = None         # {"active": ..., "retained_wal_bytes": ...}
    paused: Callable[[], bool | None] | None = None                  # is the pipeline's DAG paused in Airflow?


@dataclass
class PipelineStatus:
    name: str
    state: str
    headline: str
    data_as_of: str | None = None               # newest source commit applied
    caught_up_at: str | None = None             # end of the last run that left nothing behind
    last_merge_at: str | None = None
    last_run: dict[str, Any] | None = None
    backlog: Backlog = field(default_factory=Backlog)
    connector: dict[str, Any] | None = None
    slot: dict[str, Any] | None = None
    destiny_rows: int | None = None
    dead_letters: int = 0
    outages: list[dict[str, Any]] = field(default_factory=list)
    recovery: dict[str, Any] | None = None
    last_error: str | None = None
    last_verify: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    state_since: str | None = None              # when the outage behind a "... down" state was first seen
    paused: bool | None = None                  # the DAG's paused flag (None: Airflow not asked)
    probes: dict[str, str] = field(default_factory=dict)  # per live service: "answered", "not asked" or the error

    @property
    def healthy(self) -> bool:
        """OK, or paused with nothing waiting: a paused pipeline with a backlog is falling behind. A pipeline on
        another host is that host's to judge."""
        return self.state in ("ok", "on another host") or (self.state == "paused" and not self.backlog.total)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """A few short lines for a terminal."""
        out = [f"{self.name}: {self.state.upper()} — {self.headline}"]
        out.append(f"  data as of {self.data_as_of or '—'} · caught up at {self.caught_up_at or '—'} · "
                   f"{self.destiny_rows if self.destiny_rows is not None else '—'} rows")
        age = f", oldest {self.backlog.oldest_age_seconds:.0f} s old" if self.backlog.oldest_age_seconds else ""
        about = "about " if self.backlog.approximate else ""
        out.append(f"  backlog {about}{self.backlog.total} events ({self.backlog.measured}{age})"
                   + (f" · connector {self.connector.get('state')}" if self.connector else "")
                   + (f" · slot retains {size_text(self.slot.get('retained_wal_bytes'))}" if self.slot else ""))
        out += [f"  ! {problem}" for problem in self.problems]
        return out


def pipeline_status(name: str, layout: PipelineLayout, probes: Probes | None = None, *,
                    now: datetime | None = None) -> PipelineStatus:
    probes = probes or Probes()
    now = now or datetime.now(UTC)
    if not layout.history.exists():
        return PipelineStatus(name, "not started", "no run yet")
    history = History.open(layout.history, readonly=True)
    runs = history.runs
    last = runs.last_run_where("kind != 'backfill' AND kind != 'operation'")
    # A run is counted once it is closed: between its merge and finish_run it is "merged" with no end yet.
    merged = runs.last_run_where("status = ? AND ended_at IS NOT NULL", (RunStatus.MERGED.value,))
    with_data = runs.last_run_where("max_source_ts IS NOT NULL AND status = ?", (RunStatus.MERGED.value,))
    caught_up = runs.last_run_where("status = ? AND coalesce(backlog, 0) = 0 AND coalesce(batch_complete, 1) = 1",
                                    (RunStatus.MERGED.value,))
    status = PipelineStatus(name, "ok", "")
    status.last_run = _run_view(last) if last else None
    status.data_as_of = with_data["max_source_ts"] if with_data else None
    status.caught_up_at = caught_up["ended_at"] if caught_up else None
    status.last_merge_at = merged["ended_at"] if merged else None
    # A quiet table of a connector of several gets no merge in most runs: its rows are the last merge's that counted.
    counted = runs.last_run_where("destiny_rows IS NOT NULL")
    status.destiny_rows = counted["destiny_rows"] if counted else None
    status.outages = history.incidents.open_outages()
    recovery = history.incidents.active_recovery()
    status.recovery = asdict(recovery) if recovery else None
    verifications = history.incidents.verifications(1)
    status.last_verify = verifications[0] if verifications else None
    status.dead_letters = _count_lines(layout.dead_letters)
    # A backfill that failed (an interval the change log cannot answer) says nothing of the live pipeline.
    failed = runs.last_run_where("status = ? AND kind != 'backfill'", (RunStatus.FAILED.value,))
    if failed and (not merged or failed["seq"] > merged["seq"]):
        status.last_error = one_line(failed.get("error"), 300)
    resume = runs.resume_point()
    status.backlog = _backlog(probes, resume, last, status)
    status.connector = _ask(probes.connector, status, "Kafka Connect")
    status.slot = _ask(probes.slot, status, "PostgreSQL")
    status.paused = _ask(probes.paused, status, "Airflow")
    _decide(status, now, last, merged, recovery)
    if status.paused:
        _show_paused(status, now)
    return status


def table_statuses(pipes: list[Pipeline], probes_of: Callable[[ConnectorSpec], Probes] | None = None, *,
                   now: datetime | None = None) -> list[PipelineStatus]:
    """The status of each pipeline (a connector's tables), named by its label (``connector`` or
    ``connector/schema.table``); ``probes_of`` gives a table's probes from its scoped spec."""
    return [status_here(pipe.label, pipe.layout, pipe.spec, lambda: probes_of(pipe.spec) if probes_of else None,
                        now=now) for pipe in pipes]


def status_here(name: str, layout: PipelineLayout, spec: ConnectorSpec | None,
                probes: Callable[[], Probes | None] = lambda: None, *, now: datetime | None = None) -> PipelineStatus:
    """``pipeline_status``, unless the connector runs on a queue and its folder is not on this disk: with workers on
    several hosts its files are on the worker serving that queue, and "not started" would be wrong."""
    if spec is not None and spec.settings.queue and not layout.history.exists():
        return PipelineStatus(name, "on another host",
                              f"its files are on the worker serving queue {spec.settings.queue}, not on this host: "
                              f"see its status there (python -m cdc_pipeline status, or {spec.dag_id}_ops with "
                              "operation=status)")
    return pipeline_status(name, layout, probes(), now=now)


def _decide(status: PipelineStatus, now: datetime, last, merged, recovery) -> None:
    problems = status.problems
    if status.outages:
        first = status.outages[0]
        status.state = SERVICE_STATE.get(first["service"], "failing")
        status.state_since = first["first_seen_down_at"]
        since = hhmm_utc(first["first_seen_down_at"])
        problems.append(f"{first['service']} unreachable since {since} ({first['runs_affected']} runs): "
                        f"{one_line(first['last_error']) or ''}")
    if recovery:
        how = " (this table alone, incremental snapshot)" if recovery.incremental else ""
        problems.append(f"rebuild {recovery.id} ({recovery.reason}){how} in progress: {recovery.step}; destiny.csv keeps "
                        "its last good content until it completes")
        if status.state == "ok":
            status.state = "rebuilding"
    connector_state = (status.connector or {}).get("state")
    if connector_state and connector_state != "RUNNING":
        problems.append(f"connector is {connector_state}")
        if status.state == "ok":
            status.state = "connect down"
    if last is None:
        status.state, status.headline = "not started", "no run yet"
        return
    if status.last_error:
        if status.state == "ok":
            status.state = "failing"
        problems.append(f"last failed run: {status.last_error}")  # whatever the state: what failed, and why
    last_merge = parse_time(status.last_merge_at)
    # A first run still in flight has merged nothing yet, and is not late for that.
    first_in_flight = (last_merge is None and not last.get("ended_at")
                       and now - (parse_time(last.get("started_at")) or now) <= LATE_AFTER)
    # A paused DAG is shown as PAUSED (_show_paused), not as late.
    if status.state == "ok" and not status.paused and not first_in_flight and (
            last_merge is None or now - last_merge > LATE_AFTER):
        status.state = "late"
        since = f"since {hhmm_utc(status.last_merge_at)} ({ago_text(status.last_merge_at, now)})" \
            if status.last_merge_at else "yet"
        problems.append(f"no successful merge {since}: {_why_late(status, last, now)}")
    if status.dead_letters:
        problems.append(f"{status.dead_letters} messages in dead_letters.jsonl")
    ago = ago_text(status.last_merge_at, now)
    status.headline = (f"last merge {ago} · backlog {status.backlog.total}"
                       + (f" · {status.destiny_rows} rows" if status.destiny_rows is not None else ""))


def _why_late(status: PipelineStatus, last: dict[str, Any], now: datetime) -> str:
    """What the history and the probes say about why nothing merged lately."""
    started = parse_time(last.get("started_at"))
    if not last.get("ended_at") and started:
        return f"run {last['run_id']} has been running since {hhmm_utc(last['started_at'])}; see its task logs"
    if started and now - started > LATE_AFTER:
        paused = "the DAG is not paused, so " if status.paused is False else "is the DAG paused, or "
        return (f"no run has started since {hhmm_utc(last['started_at'])}: {paused}is Airflow's scheduler "
                "running?")
    return f"runs are starting (the last at {hhmm_utc(last['started_at'])}) but none merged; see their task logs"


def _show_paused(status: PipelineStatus, now: datetime) -> None:
    """A paused DAG runs nothing: PAUSED, whatever the last runs did, with what waits for it."""
    backlog = status.backlog
    age = f", the oldest {age_text(backlog.oldest_age_seconds)} old" if backlog.oldest_age_seconds else ""
    measured = "" if backlog.measured == "kafka" else " as of the last run"
    status.state = "paused"
    status.problems.insert(0, f"the pipeline's DAG is paused in Airflow: {backlog.total} events wait{measured}{age}; "
                              "unpause it on the DAG's page (or `airflow dags unpause <dag_id>`) to catch up")
    status.headline = f"DAG paused · backlog {backlog.total}{age} · last merge {ago_text(status.last_merge_at, now)}"


def _backlog(probes: Probes, resume, last, status: PipelineStatus) -> Backlog:
    if probes.backlog is None:
        status.probes["Kafka"] = "not asked"
    elif resume is None:
        status.probes["Kafka"] = "not asked: nothing read yet"
    else:
        try:
            backlog = probes.backlog(resume.ends)
        except Exception as exc:  # noqa: BLE001 - a status never fails; it says what it could not measure
            status.probes["Kafka"] = one_line(str(exc)) or type(exc).__name__
            status.problems.append(f"could not ask Kafka: {status.probes['Kafka']}; backlog as of the last run")
        else:
            status.probes["Kafka"] = "answered"
            return backlog
    return Backlog(total=int(last.get("backlog") or 0) if last else 0, measured="history")


def _ask(probe, status: PipelineStatus, what: str):
    if probe is None:
        status.probes[what] = "not asked"
        return None
    try:
        answer = probe()
    except Exception as exc:  # noqa: BLE001 - see _backlog
        status.probes[what] = one_line(str(exc)) or type(exc).__name__
        status.problems.append(f"could not ask {what}: {status.probes[what]}")
        return None
    status.probes[what] = "answered"
    return answer


def _run_view(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("run_id", "kind", "status", "started_at", "ended_at", "creates", "updates", "deletes", "reads", "truncates",
            "merge_inserted", "merge_updated", "merge_deleted", "destiny_rows", "backlog", "error")
    view = {k: run.get(k) for k in keys}
    view["offset_ranges"] = json.loads(run["offset_ranges"]) if run.get("offset_ranges") else None
    return view


def _count_lines(path) -> int:
    try:
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    except FileNotFoundError:
        return 0


# Up to this many unread records are read to tell change events from delete tombstones (a few MB); a larger backlog
# is counted from the offsets, tombstones included, and said to be approximate.
EXACT_BACKLOG_UP_TO = 2_000


def kafka_backlog(clients, topic: str, *,
                  max_seconds: float = STATUS_KAFKA_SECONDS) -> Callable[[dict[int, int]], Backlog]:
    """A backlog probe asking the broker: per partition, the change events after the resume point (its high watermark,
    ListOffsets' exact end, minus the resume point, less the delete tombstones among them when there are at most
    ``EXACT_BACKLOG_UP_TO`` to read), and the Kafka timestamp of the oldest unread record. ``max_seconds`` bounds
    each read: a status command's budget unless given (a page asks with a few)."""
    from confluent_kafka import Message

    from cdc_pipeline.kafka.reader import read_range
    from cdc_pipeline.kafka.topic import inspect_topic

    def probe(ends: dict[int, int]) -> Backlog:
        state = inspect_topic(clients, topic)
        if not state.exists:
            return Backlog(measured="kafka")
        starts, per = {}, {}
        for p in state.partitions:
            low, high, end = state.low.get(p, 0), state.listed_high.get(p, 0), ends.get(p)
            # A resume point outside the log (below its start: retention deleted unread events; beyond its end:
            # the broker lost its data) is not where the next run reads: everything the log holds now is unread;
            # the next run says what was lost and rebuilds.
            starts[p] = end if end is not None and low <= end <= high else low
            per[p] = max(0, high - starts[p])
        exact = sum(per.values()) <= EXACT_BACKLOG_UP_TO
        oldest: list[float] = []
        for p, count in per.items():
            if not count:
                continue
            end = starts[p] + count
            first: list[Message] = []
            events = [0]

            def seen(message: Message) -> None:
                if not first:
                    first.append(message)
                # The records there, less the tombstones Debezium adds after each delete (and no offset a
                # transaction marker or compaction left without a record).
                if message.offset() < end and message.value() is not None:
                    events[0] += 1

            # To its end as the broker answers now (records produced since ListOffsets are left out of the count).
            result = read_range(clients, topic, {p: starts[p]}, seen, max_events=None if exact else 1,
                                max_seconds=min(10, max_seconds))
            oldest += [m.timestamp()[1] / 1000 for m in first if m.timestamp()[0]]
            if exact and result.ranges[p].end >= end:
                per[p] = events[0]
            else:
                exact = False
        age = None if not oldest else max(0.0, datetime.now(UTC).timestamp() - min(oldest))
        return Backlog(per, sum(per.values()), age, "kafka", approximate=not exact)

    return probe
