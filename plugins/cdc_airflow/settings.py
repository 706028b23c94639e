"""Settings the DAGs read from the environment, parsed once into typed values (no heavy imports here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cdc_pipeline.layout import default_connectors_dir, default_data_dir

KAFKA_CONN_ID = "cdc_kafka"
KAFKA_CONNECT_CONN_ID = "cdc_kafka_connect"
POSTGRES_CONN_ID = "cdc_postgres"
POSTGRES_ADMIN_CONN_ID = "cdc_postgres_admin"  # optional: a role owning the tables keeps the publication
AIRFLOW_API_CONN_ID = "cdc_airflow_api"   # optional: lets finish_run put its summary on the run as a note


@dataclass(frozen=True)
class DagSettings:
    connectors_dir: Path
    data_dir: Path

    @classmethod
    def from_env(cls) -> DagSettings:
        """CDC_CONNECTORS_DIR and CDC_DATA_DIR, with the same defaults as the command line (cdc_pipeline.layout)."""
        return cls(connectors_dir=default_connectors_dir(), data_dir=default_data_dir())
