"""The command line's view of the services: CDC_* variables, else what ``./stack up`` recorded, else defaults.

Airflow tasks do not use this: they get their clients from Airflow connections (plugins/cdc_airflow/hooks.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cdc_pipeline import defaults
from cdc_pipeline.connector_spec import DEFAULT_PASSWORD_REFERENCE
from cdc_pipeline.kafka_connect import url_with_credentials
from cdc_pipeline.layout import RECORDED_SETTINGS, default_connectors_dir, default_data_dir
from cdc_pipeline.services import Services
from cdc_pipeline.source.checks import SourceParams


def cdc_variables(env: Mapping[str, str] | None = None, recorded: Path = RECORDED_SETTINGS) -> dict[str, str]:
    """CDC_* values: the environment over the recorded settings file (when there is one)."""
    values: dict[str, str] = {}
    try:
        values.update({k: str(v) for k, v in json.loads(recorded.read_text(encoding="utf-8"))["settings"].items()})
    except (FileNotFoundError, ValueError, KeyError, TypeError, AttributeError):
        pass
    env = os.environ if env is None else env
    values.update({k: v for k, v in env.items() if k.startswith("CDC_") and v})
    return values


def source_params(v: Mapping[str, str]) -> SourceParams:
    """The role the pipeline connects as: the capture role when one is set (CDC_CAPTURE_USER, or its default when
    only CDC_CAPTURE_PASSWORD is, as the local stack records it), else CDC_PG_USER."""
    user = v.get("CDC_CAPTURE_USER") or (defaults.CAPTURE_USER if v.get("CDC_CAPTURE_PASSWORD") else None)
    if user:
        password = v.get("CDC_CAPTURE_PASSWORD", "")
    else:
        user, password = v.get("CDC_PG_USER", defaults.PG_USER), v.get("CDC_PG_PASSWORD", "")
    return SourceParams(v.get("CDC_PG_HOST", defaults.PG_HOST), int(v.get("CDC_PG_PORT", defaults.PG_PORT)), user,
                        password, v.get("CDC_PG_DB", defaults.PG_DB))


@dataclass(frozen=True)
class PipelineEnvironment:
    data_dir: Path
    connectors_dir: Path
    bootstrap_servers: str
    group_prefix: str
    connect_url: str
    source: SourceParams
    password_reference: str = DEFAULT_PASSWORD_REFERENCE
    # Airflow's REST API, asked only whether a pipeline's DAG is paused (None: not asked).
    airflow_url: str | None = None
    airflow_user: str = defaults.AIRFLOW_USER
    airflow_password: str = defaults.AIRFLOW_PASSWORD

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides) -> PipelineEnvironment:
        v = cdc_variables(env)
        values = dict(
            data_dir=default_data_dir(v),
            connectors_dir=default_connectors_dir(v),
            bootstrap_servers=v.get("CDC_KAFKA_BOOTSTRAP") or f"127.0.0.1:{v.get('CDC_KAFKA_PORT', defaults.KAFKA_PORT)}",
            group_prefix=v.get("CDC_KAFKA_GROUP_ID", defaults.GROUP_PREFIX),
            connect_url=url_with_credentials(
                v.get("CDC_CONNECT_URL") or f"http://127.0.0.1:{v.get('CDC_CONNECT_PORT', defaults.CONNECT_PORT)}",
                v.get("CDC_CONNECT_USER"), v.get("CDC_CONNECT_PASSWORD")),
            source=source_params(v),
            airflow_url=v.get("CDC_AIRFLOW_URL") or (f"http://127.0.0.1:{v['CDC_AIRFLOW_PORT']}"
                                                     if v.get("CDC_AIRFLOW_PORT") else None),
            airflow_user=v.get("CDC_AIRFLOW_USER", defaults.AIRFLOW_USER),
            airflow_password=v.get("CDC_AIRFLOW_PASSWORD", defaults.AIRFLOW_PASSWORD),
        )
        values.update({k: val for k, val in overrides.items() if val is not None})
        return cls(**values)

    def kafka_config(self) -> dict[str, str]:
        return {"bootstrap.servers": self.bootstrap_servers, "group.id": self.group_prefix}

    def services(self) -> Services:
        """What the command line's operations reach, from these settings; each client made when asked."""
        from cdc_pipeline.kafka.client import KafkaClients
        from cdc_pipeline.kafka_connect import KafkaConnectClient

        return Services(kafka=lambda name: KafkaClients.for_pipeline(self.kafka_config(), name),
                        connect=lambda: KafkaConnectClient(self.connect_url), source=lambda: self.source,
                        password_reference=self.password_reference)
