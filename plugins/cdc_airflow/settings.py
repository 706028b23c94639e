"""Settings the DAGs read from the environment, parsed once into typed values."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cdc_pipeline.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]

KAFKA_CONN_ID = "cdc_kafka"
KAFKA_CONNECT_CONN_ID = "cdc_kafka_connect"
POSTGRES_CONN_ID = "cdc_postgres"


@dataclass(frozen=True)
class DagSettings:
    connectors_dir: Path
    data_dir: Path

    @classmethod
    def from_env(cls) -> DagSettings:
        connectors = Path(os.environ.get("CDC_CONNECTORS_DIR") or REPO_ROOT / "include" / "connectors")
        data = os.environ.get("CDC_DATA_DIR")
        if not data:
            airflow_home = os.environ.get("AIRFLOW_HOME")
            if not airflow_home:
                raise ConfigError("set CDC_DATA_DIR: the folder where buffer.csv, destiny.csv and runs.sqlite are kept.")
            data = str(Path(airflow_home) / "cdc-data")
        return cls(connectors_dir=connectors, data_dir=Path(data))
