"""consume_tables: one bounded batch over every table of a connector, each table's topic into its own folder.

Each table is consumed as a one-table pipeline is (``consume_batch``: its resume point, its buffer, its
commit), in the connector file's order: at most ``max_events`` events per table (memory is one table's batch at
a time), within one budget of seconds shared by the tables still to read. A table that fails is recorded as failed in its own history and the others go on; only when every table
fails (the broker is down, say) does the task fail and retry.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from cdc_pipeline.buffer.batch_buffer import BatchBuffer
from cdc_pipeline.connector_folder import prepare_connector_folder
from cdc_pipeline.errors import CdcError
from cdc_pipeline.formatting import folded
from cdc_pipeline.history import RunRef
from cdc_pipeline.kafka.client import KafkaClients
from cdc_pipeline.pipeline import Pipeline
from cdc_pipeline.services import Services
from cdc_pipeline.state import StateStore
from cdc_pipeline.tasks.consume import consume_batch

log = logging.getLogger(__name__)


def consume_tables(pipes: list[Pipeline], services: Services, run: RunRef, *, max_events: int,
                   max_seconds: float = 120.0, **consume_options: Any) -> dict[str, Any]:
    """Consume every table, each at most ``max_events``, with one set of Kafka clients; answer per table what it
    read, which tables failed, and ``to_merge``: the tables with something for the merge (a buffer, a rebuild in
    progress, or no state yet), so quiet tables cost no task. ``consume_options`` are ``consume_batch``'s
    (``start_from``)."""
    with services.kafka(pipes[0].spec.name) as kafka:
        return _consume_each(pipes, services, kafka, run, max_events=max_events, max_seconds=max_seconds,
                             **consume_options)


def _consume_each(pipes: list[Pipeline], services: Services, kafka: KafkaClients, run: RunRef, *, max_events: int,
                  max_seconds: float, **consume_options: Any) -> dict[str, Any]:
    notes = prepare_connector_folder(pipes[0])
    tables: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    failed_pipes: list[Pipeline] = []
    first_error: Exception | None = None
    deadline = time.monotonic() + max_seconds
    for position, pipe in enumerate(pipes):
        name = pipe.spec.qualified_table
        seconds = max(1.0, (deadline - time.monotonic()) / (len(pipes) - position))
        try:
            summary = consume_batch(pipe, services, run, kafka=kafka, max_events=max_events, max_seconds=seconds,
                                    **consume_options)
        except (CdcError, OSError) as exc:
            first_error = first_error or exc
            failed[name] = folded(exc)
            failed_pipes.append(pipe)
            log.error("consume: %s failed: %s", name, failed[name])
            continue
        tables[name] = summary
    if failed and not tables:
        raise first_error  # the same cause everywhere, most likely: the task fails and retries
    for pipe in failed_pipes:
        # The next scheduled run is this table's retry; the run ends failed for it, and only for it.
        pipe.history.runs.update_run(run.run_id, error=f"consume_batch: {failed[pipe.spec.qualified_table]}")
    to_merge = [p.spec.qualified_table for p in pipes if _has_work(p)]
    events = sum(int(s.get("events") or 0) for s in tables.values())
    log.info("consume: %s events from %s of %s tables; %s to merge%s", events, sum(1 for s in tables.values() if s.get("events")),
             len(pipes), len(to_merge), f"; FAILED: {', '.join(failed)}" if failed else "")
    return {"events": events, "notes": notes, "tables": tables, "failed": failed, "to_merge": to_merge,
            "complete": all(s.get("complete", True) for s in tables.values())}


def _has_work(pipe: Pipeline) -> bool:
    store = StateStore(pipe.layout)
    return (BatchBuffer(pipe.layout).has_rows() or store.live() is None or store.rebuild() is not None
            or pipe.history.incidents.active_recovery() is not None)

