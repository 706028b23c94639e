"""Kafka Connect in distributed mode (one worker; connectors, offsets and status kept in Kafka topics) with the
Debezium PostgreSQL connector as a plugin, from the Maven Central jars (devstack.jars).

Distributed, as production runs it (docker-compose.yml's Debezium image does): the worker handles every REST
request on one herder thread, so two pipelines rebuilding at once cannot deadlock it as the standalone worker did,
and it keeps its connectors across restarts.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from cdc_pipeline.atomic import atomic_write_text
from cdc_pipeline.kafka_connect import ConnectorStatus
from devstack import jars, process
from devstack.errors import PartStartError
from devstack.java import JVM_FLAGS, java_binary, log4j2_properties, write_properties
from devstack.part import Part
from devstack.settings import StackSettings

POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"
HEAP = "-Xmx768m"
ENV_CONFIG_PROVIDER = "org.apache.kafka.common.config.provider.EnvVarConfigProvider"
ENV_ALLOWLIST_PATTERN = "^CDC_.*"  # matched against the whole name
BASIC_AUTH_EXTENSION = "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension"
# The JAAS entry the basic-auth extension reads; its PropertyFileLoginModule checks "user: password" lines.
JAAS_TEMPLATE = """KafkaConnect {{
  org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule required
  file="{credentials}";
}};
"""

# The worker's settings that docker-compose.yml's connect service sets too (tests/compose checks the pairs).
WORKER_SETTINGS: dict[str, str] = {
    "group.id": "cdc-connect",
    "config.storage.topic": "cdc_connect_configs",
    "offset.storage.topic": "cdc_connect_offsets",
    "status.storage.topic": "cdc_connect_statuses",
    "config.storage.replication.factor": "1",
    "offset.storage.replication.factor": "1",
    "status.storage.replication.factor": "1",
    "key.converter": "org.apache.kafka.connect.json.JsonConverter",
    "value.converter": "org.apache.kafka.connect.json.JsonConverter",
    # The pipeline decodes logical types (dates, decimals) from the inline schema.
    "key.converter.schemas.enable": "true",
    "value.converter.schemas.enable": "true",
    # One worker: when it restarts, its connectors are assigned again at once instead of after the default
    # 5-minute wait for the departed member to come back (incremental cooperative rebalancing).
    "scheduled.rebalance.max.delay.ms": "0",
    # Connector configs may say "${env:CDC_PG_PASSWORD}": the worker resolves it from its own environment when
    # it starts a task, so the password is never stored in, nor returned by, GET /connectors/<name>/config.
    "config.providers": "env",
    "config.providers.env.class": ENV_CONFIG_PROVIDER,
    "config.providers.env.param.allowlist.pattern": ENV_ALLOWLIST_PATTERN,
    # Whoever can register a connector can have the worker send ${env:...} secrets to a host of their choosing:
    # the REST API asks for a user and password (checked against the JAAS file given to the JVM).
    "rest.extension.classes": BASIC_AUTH_EXTENSION,
}

# INFO stays on for startup, snapshot progress, task state changes and Debezium's "N records sent" lines; the
# per-flush offset commits and the clients' chatter go to WARN (their errors still show).
QUIET_LOGGERS = {
    "org.apache.kafka.common.config.AbstractConfig": "warn",
    "org.apache.kafka.common.metrics.Metrics": "warn",
    "org.apache.kafka.clients": "warn",
    "org.apache.kafka.common.utils.AppInfoParser": "warn",
    "org.apache.kafka.common.telemetry": "warn",
    "org.apache.kafka.connect.runtime.WorkerSourceTask": "warn",
    "org.apache.kafka.connect.runtime.isolation": "warn",
    "org.reflections": "error",
}


def connect_environment(settings: StackSettings) -> dict[str, str]:
    """The worker's environment: ours, plus what connector configs reference: the capture role's password
    (CDC_CAPTURE_PASSWORD; never the administrator's), and the broker's address for Debezium's signal consumer
    (CDC_SIGNAL_BOOTSTRAP_SERVERS)."""
    inherited = {k: v for k, v in os.environ.items() if k not in ("CDC_PG_PASSWORD", "CDC_CONNECT_PASSWORD")}
    return {**inherited, "CDC_CAPTURE_PASSWORD": settings.capture_password,
            "CDC_SIGNAL_BOOTSTRAP_SERVERS": settings.kafka_bootstrap}


class ConnectPart(Part):
    name = "connect"
    port_env = "CDC_CONNECT_PORT"
    port_field = "connect_port"
    marker = "ConnectDistributed"
    other = "another Kafka Connect worker"
    start_timeout = 120.0

    @property
    def worker_properties(self) -> Path:
        return self.settings.connect_dir / "worker.properties"

    @property
    def credentials_path(self) -> Path:
        return self.settings.connect_dir / "rest-credentials.properties"

    @property
    def jaas_path(self) -> Path:
        return self.settings.connect_dir / "rest-jaas.conf"

    @property
    def plugin_path(self) -> Path:
        return self.settings.connect_dir / "plugins"

    def worker_settings(self) -> dict[str, str]:
        return {
            **WORKER_SETTINGS,
            "bootstrap.servers": self.settings.kafka_bootstrap,
            # The pipeline reads committed source offsets (GET /connectors/<name>/offsets) to know when a
            # snapshot is complete: flush them every second locally (compose: 10 s).
            "offset.flush.interval.ms": "1000",
            "listeners": f"http://127.0.0.1:{self.port}",
            "rest.advertised.host.name": "127.0.0.1",
            "rest.advertised.port": str(self.port),
            "plugin.path": str(self.plugin_path),
            # Every plugin here has ServiceLoader manifests: loading them so is faster than scanning the jars, and
            # skips the scan's errors about Debezium converters whose optional dependencies are not installed.
            "plugin.discovery": "service_load",
        }

    def prepare(self) -> None:
        folder = self.settings.connect_dir
        folder.mkdir(parents=True, exist_ok=True)
        # plugin.path holds one folder per plugin: a link to the fetched Debezium bundle, renewed on every start so
        # that a version change in devstack/maven takes effect.
        self.plugin_path.mkdir(exist_ok=True)
        link = self.plugin_path / "debezium-connector-postgres"
        target = jars.bundle_jars(jars.DEBEZIUM_POSTGRES, self.settings.jars_dir)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target, target_is_directory=True)
        write_properties(self.worker_properties, self.worker_settings())
        # The REST API's one user, written at every start (the password may have changed); mode 0600.
        atomic_write_text(self.credentials_path, f"{self.settings.connect_user}: {self.settings.connect_password}\n")
        atomic_write_text(self.jaas_path, JAAS_TEMPLATE.format(credentials=self.credentials_path))
        atomic_write_text(folder / "log4j2.properties", log4j2_properties(QUIET_LOGGERS))

    def launch(self) -> None:
        process.start_detached(
            [java_binary(), HEAP, *JVM_FLAGS, f"-Dlog4j2.configurationFile={self.settings.connect_dir / 'log4j2.properties'}",
             f"-Djava.security.auth.login.config={self.jaas_path}",
             "-cp", jars.classpath(jars.KAFKA, self.settings.jars_dir),
             "org.apache.kafka.connect.cli.ConnectDistributed", str(self.worker_properties)],
            log_path=self.log_path, pid_path=self.pid_path, cwd=self.settings.connect_dir,
            env=connect_environment(self.settings))

    def probe(self) -> str:
        with rest_client(self.settings, timeout=5) as client:
            connectors = client.get("/connectors")
            connectors.raise_for_status()
            plugins = client.get("/connector-plugins")
            plugins.raise_for_status()
        found = [p for p in plugins.json() if p.get("class") == POSTGRES_CONNECTOR]
        if not found:
            raise PartStartError(f"{POSTGRES_CONNECTOR} is not among the worker's plugins: check the classpath")
        names = connectors.json()
        return (f"PostgresConnector {found[0].get('version')} available; "
                f"connectors: {', '.join(names) if names else 'none registered'}")


def rest_client(settings: StackSettings, timeout: float) -> httpx.Client:
    """An httpx client for the worker's REST API, with its credentials (errors show no password)."""
    return httpx.Client(base_url=settings.connect_address, timeout=timeout,
                        auth=(settings.connect_user, settings.connect_password))


def connector_statuses(settings: StackSettings, timeout: float = 5.0) -> list[ConnectorStatus]:
    """Every connector on the worker with its tasks (``GET /connectors?expand=status``), sorted by name."""
    with rest_client(settings, timeout=timeout) as client:
        response = client.get("/connectors", params={"expand": "status"})
        response.raise_for_status()
    found = []
    for name, expanded in sorted(response.json().items()):
        status = expanded.get("status", {})
        connector = status.get("connector", {})
        found.append(ConnectorStatus(name=name, state=connector.get("state", "UNKNOWN"), trace=connector.get("trace"),
                                     tasks=tuple(status.get("tasks", []))))
    return found
