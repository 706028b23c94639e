"""Every task of a connector runs only on the worker that owns the connector's folder (cdc_pipeline.ownership)."""

from __future__ import annotations

from pathlib import Path

from cdc_pipeline.connector_spec import ConnectorSpec
from cdc_pipeline.ownership import Worker, check_owner, describe_group_read


def require_owned_folder(spec: ConnectorSpec, data_dir: str | Path) -> None:
    """Refuse (WrongWorkerError, no retry) unless this worker owns the connector's folder; a new connector's folder
    becomes this worker's. Kafka is asked only when there is no folder here."""

    def read_before() -> str | None:
        # Imported here: Kafka's client and Airflow's Kafka provider are asked for a new folder only, and a merge
        # or sink task would otherwise load them for nothing.
        from cdc_airflow.hooks import PipelineKafkaHook
        from cdc_pipeline.kafka.offsets import group_offsets

        with PipelineKafkaHook(spec.name).clients() as kafka:
            return describe_group_read(kafka.group_id, group_offsets(kafka, [t.topic for t in spec.tables]))

    check_owner(Path(data_dir) / spec.name, spec, Worker.here(spec.settings.queue_name), read_before=read_before)
