"""render_sink: the body of one sink task (cdc_pipeline.sinks renders). Renders the live generation into one sink
and records the result.

The sink reads the state under a shared lock on the pipeline's lock file: sinks render side by side, while a
merge, a consume or an operator command (which take it exclusively) waits until the render is done, so the
generations a render reads are never removed under it. A sink never takes the lock exclusively, so it never
holds back another sink.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from cdc_pipeline.connector_spec import SinkSpec
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.history import RunRef, SinkStatus
from cdc_pipeline.pipeline import Pipeline
from cdc_pipeline.pipeline_lock import pipeline_lock
from cdc_pipeline.sinks.ledger import SinkLedger
from cdc_pipeline.sinks.outcome import SinkOutcome
from cdc_pipeline.sinks.postgres_target import TargetParams
from cdc_pipeline.state import StateStore
from cdc_pipeline.formatting import one_line
from cdc_pipeline.tasks.operations_guard import operation_in_progress
from cdc_pipeline.tasks.tracking import tracked

log = logging.getLogger(__name__)

TargetSource = TargetParams | Callable[[], TargetParams] | None


def render_sink(pipe: Pipeline, sink: SinkSpec, run: RunRef, *, target: TargetSource = None,
                lock_timeout: float = 600.0) -> dict[str, Any]:
    """Render ``sink`` from the live generation; answer the task's summary. ``target`` (a postgres sink's
    database, or a callable that builds it, e.g. from an Airflow connection) is read only when needed."""
    history = pipe.history
    started = time.monotonic()
    with tracked(history, run, sink.task_id) as summary:
        summary.update(sink=sink.name)
        try:
            outcome = _render(pipe, sink, target, lock_timeout)
        except BaseException as exc:
            history.incidents.record_sink(run.run_id, sink.name, status=SinkStatus.FAILED.value, generation=None, rows=None,
                                          seconds=round(time.monotonic() - started, 3), error=one_line(str(exc) or type(exc).__name__, 2000))
            raise
        seconds = round(time.monotonic() - started, 3)
        history.incidents.record_sink(run.run_id, sink.name, status=outcome.status, generation=outcome.generation,
                                      rows=outcome.rows, seconds=seconds)
        summary.update(outcome.as_dict())
        _log(sink, outcome, seconds)
    return summary


def _render(pipe: Pipeline, sink: SinkSpec, target: TargetSource, lock_timeout: float) -> SinkOutcome:
    if sink.type == "csv":
        return SinkOutcome(SinkStatus.UNCHANGED, "destiny.csv is written by the merge itself")
    busy = operation_in_progress(pipe, holding_lock=False)
    if busy is not None:
        return SinkOutcome(SinkStatus.SKIPPED, busy)
    with pipeline_lock(pipe.layout, shared=True, timeout=lock_timeout):
        store = StateStore(pipe.layout)
        live = store.live()
        if live is None:
            return SinkOutcome(SinkStatus.WAITING, "no state yet: the first merge creates it")
        ledger = SinkLedger(pipe.layout, sink)
        if sink.type == "parquet":
            from cdc_pipeline.sinks.parquet_sink import render_parquet

            return render_parquet(store, live, ledger, pipe.layout)
        if sink.type == "postgres":
            from cdc_pipeline.sinks.postgres_sink import render_postgres

            params = target() if callable(target) else target
            if params is None:
                raise ConfigError(f"sink {sink.name} needs its database: pass the connection {sink.conn_id}'s details")
            return render_postgres(store, live, ledger, params, sink, pipe.spec.name)
    raise ConfigError(f"unknown sink type {sink.type!r}")


def _log(sink: SinkSpec, outcome: SinkOutcome, seconds: float) -> None:
    figures = f"{outcome.rows} rows" if outcome.rows is not None else "no rows"
    if outcome.status == SinkStatus.INCREMENTAL:
        figures += f" (+/~ {outcome.upserted}, - {outcome.deleted})"
    log.info("sink %s: %s in %.2f s, generation %s, %s: %s", sink.name, outcome.status, seconds, outcome.generation,
             figures, outcome.reason)
    for note in outcome.notes:
        log.warning("sink %s: %s", sink.name, note)
