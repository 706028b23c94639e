"""Lossless stop: drain every pipeline between stopping Kafka Connect and stopping the broker.

The local broker keeps its topics in memory, so whatever it holds and the pipelines have not merged would be
lost with it. ``./stack stop`` therefore stops Airflow (no run competes) and Kafka Connect (its producer
flushes and its source offsets are written), then merges everything the broker holds through the same
consume and merge code as a run (``cdc_pipeline.operations.drain``), which records that each topic
incarnation ended cleanly there; only then is the broker stopped. After ``./stack up`` the new topic is a new
incarnation, read from offset 0 with nothing lost.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from devstack.errors import DrainFailedError
from devstack.settings import StackSettings


def drain_pipelines(settings: StackSettings, report: Callable[[str], None]) -> list[str]:
    """Drain every pipeline that has run; answer one message each. Raises DrainFailedError naming the pipeline."""
    from cdc_pipeline import operations
    from cdc_pipeline.connector_spec import discover_connector_specs
    from cdc_pipeline.environment import PipelineEnvironment
    from cdc_pipeline.kafka.client import KafkaClients
    from cdc_pipeline.kafka_connect import KafkaConnectClient
    from cdc_pipeline.pipeline import Pipeline

    env = PipelineEnvironment.load(env=settings.as_env())
    label = datetime.now(UTC).strftime("stop-%Y%m%dT%H%M%SZ")
    messages = []
    for spec in discover_connector_specs(env.connectors_dir):
        pipe = Pipeline.under(env.data_dir, spec)
        if not pipe.layout.history.exists():
            continue  # never ran: nothing of it to lose
        try:
            with KafkaClients.for_pipeline(env.kafka_config(), spec.name) as kafka:
                result = operations.drain(pipe, kafka, run_label=label,
                                          connect_factory=lambda: KafkaConnectClient(env.connect_url))
        except Exception as exc:  # noqa: BLE001 - any failure keeps the broker up; the message says which pipeline
            raise DrainFailedError(f"could not drain pipeline {spec.name}: {exc}") from exc
        report(result.message)
        messages.append(result.message)
    return messages
