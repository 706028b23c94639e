"""A stop that leaves the files current: drain every pipeline between stopping Kafka Connect and the broker.

Apache Kafka keeps its log on disk, so nothing depends on this for safety: a stop without it (a crash, a
``kill -9``) loses nothing, and the next run reads on from its resume point. ``./stack stop`` drains anyway so
that destiny.csv holds every change made before the stop: Airflow is stopped (no run competes), Kafka Connect
too (its producer flushes and its source offsets are written), then everything the broker holds is merged
through the same consume and merge code as a run (``cdc_pipeline.commands.operations.drain``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from devstack.settings import StackSettings


def drain_pipelines(settings: StackSettings, report: Callable[[str], None]) -> list[str]:
    """Drain every pipeline that has run (each table of a connector that captures several), reporting one
    message each; answer the failures, one line each naming the pipeline (the others are drained all the same)."""
    from cdc_pipeline.commands import operations
    from cdc_pipeline.connector_spec import discover_connector_specs
    from cdc_pipeline.environment import PipelineEnvironment
    from cdc_pipeline.pipeline import connector_pipelines

    env = PipelineEnvironment.load(env=settings.as_env())
    label = datetime.now(UTC).strftime("stop-%Y%m%dT%H%M%SZ")
    failures = []
    for spec in discover_connector_specs(env.connectors_dir, env.data_dir):
        for pipe in connector_pipelines(env.data_dir, spec):
            if not pipe.layout.history.exists():
                continue  # never ran: nothing of it to lose
            try:
                result = operations.drain(pipe, env.services(), run_label=label)
            except Exception as exc:  # noqa: BLE001 - one pipeline's failure must not keep the others from draining
                failures.append(f"could not drain pipeline {pipe.label}: {exc}")
                continue
            report(result.message)
    return failures
