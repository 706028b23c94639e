"""What a task, an operation or verify reaches outside the data folder: Kafka, Kafka Connect, the source database.

Each caller builds one ``Services`` once, its own way: the Airflow tasks from the Airflow connections
(``plugins/cdc_airflow/hooks.py``), the command line from the CDC_* settings (``PipelineEnvironment.services``), the
tests from the stack's settings. Every member makes a client when asked, so a step that needs none opens none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cdc_pipeline.connector_spec import DEFAULT_PASSWORD_REFERENCE

if TYPE_CHECKING:
    from cdc_pipeline.connector_spec import ConnectorSpec
    from cdc_pipeline.kafka.client import KafkaClients
    from cdc_pipeline.kafka_connect import KafkaConnectClient
    from cdc_pipeline.pipeline import Pipeline
    from cdc_pipeline.source.checks import SourceParams


def _nobody() -> None:
    return None


@dataclass(frozen=True)
class Services:
    kafka: Callable[[str], KafkaClients]          # a connector's Kafka clients (a context manager)
    connect: Callable[[], KafkaConnectClient]     # a Kafka Connect client (a context manager)
    source: Callable[[], SourceParams]            # the pipeline's role on the source (cdc_postgres)
    # What Kafka Connect resolves as the source password (its config provider), never the password.
    password_reference: str = DEFAULT_PASSWORD_REFERENCE
    # A role owning the captured tables, which keeps the connector's publication (cdc_postgres_admin); None: the
    # pipeline's own role does, or a DBA (docs/source-privileges.md).
    admin: Callable[[], SourceParams | None] = _nobody
    # The status operation's live probes (None: the run history only).
    probes: Callable[[Pipeline], Any] | None = None

    def connector_config(self, spec: ConnectorSpec) -> dict[str, str]:
        """The config registration sends Kafka Connect for ``spec``: the file's, with the source's details."""
        source = self.source()
        return spec.config_for_source(host=source.host, port=source.port, user=source.user, dbname=source.dbname,
                                      password_reference=self.password_reference)
