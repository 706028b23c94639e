"""Status probes built from Airflow connections (tasks) — the live side of cdc_pipeline.commands.status."""

from __future__ import annotations

from cdc_pipeline.connector_spec import ConnectorSpec
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.commands.status import Probes, kafka_backlog


def airflow_probes(spec: ConnectorSpec, layout: PipelineLayout) -> Probes:
    from cdc_airflow.hooks import PipelineKafkaHook, kafka_connect_client, source_params
    from cdc_pipeline.probes import connector_probe, slot_probe

    def backlog(ends):
        with PipelineKafkaHook(spec.name).clients() as kafka:
            return kafka_backlog(kafka, spec.topic)(ends)

    return Probes(backlog=backlog, connector=connector_probe(kafka_connect_client, spec.name),
                  slot=slot_probe(source_params(), spec.slot_name))
