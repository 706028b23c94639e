"""Apache Kafka, one KRaft node that is broker and controller, from the Maven Central jars (devstack.jars).

Its log lives on disk under ``$CDC_STACK_HOME/kafka/data``: a restart, or a ``kill -9``, keeps every topic.
The settings below are docker-compose.yml's (tests/compose checks the pairs), with loopback listeners.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from cdc_pipeline.atomic import atomic_write_text
from devstack import jars, process
from devstack.errors import PartStartError
from devstack.java import JVM_FLAGS, java_binary, log4j2_properties, write_properties
from devstack.part import Part
from devstack.ports import ensure_port_free

# A KRaft cluster id (base64 of 16 bytes), the same as docker-compose.yml's default; not a secret.
CLUSTER_ID = "FVj8YMbWR2eSeM83azDlhw"
HEAP = "-Xmx512m"

# Settings a local, one-node cluster needs, and the ones the pipeline relies on, written down.
BROKER_SETTINGS: dict[str, str] = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    "inter.broker.listener.name": "PLAINTEXT",
    # One broker: every internal topic has one replica, and a write is acknowledged by that one.
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    "group.initial.rebalance.delay.ms": "0",
    # Debezium's topics are created on first write, with one partition (a key's events stay in order in any
    # number of partitions; one keeps a table's batch in commit order).
    "auto.create.topics.enable": "true",
    "num.partitions": "1",
    # Retention, Kafka's defaults written down: a pipeline paused longer than 7 days finds its resume point
    # deleted, which it detects and repairs by a rebuild (docs/reliability.md). Delete, never compact.
    "log.cleanup.policy": "delete",
    "log.retention.hours": "168",
    "log.retention.bytes": "-1",
    "log.segment.bytes": "1073741824",
    # Retention is enforced every 30 s instead of every 5 minutes: a topic's retention.ms takes effect soon after
    # it passes (the retention tests rely on it); the check only lists segments.
    "log.retention.check.interval.ms": "30000",
}

# At INFO the broker logs every config it parses (hundreds of lines each) and every partition and coordinator
# load; what remains at INFO is startup, shutdown, topic creation and deletion.
QUIET_LOGGERS = {
    "org.apache.kafka.common.config.AbstractConfig": "warn",
    "org.apache.kafka.coordinator.common.runtime.CoordinatorRuntime": "warn",
    "kafka.cluster.Partition": "warn",
    "kafka.request.logger": "warn",
    "kafka.log.LogCleaner": "warn",
    "state.change.logger": "warn",
    "kafka.controller": "info",
    "org.apache.kafka.clients": "warn",
    "org.apache.kafka.common.utils.AppInfoParser": "warn",
    "org.apache.kafka.storage.internals.log": "warn",
    "kafka.log": "warn",
}


class BrokerPart(Part):
    name = "broker"
    port_env = "CDC_KAFKA_PORT"
    port_field = "kafka_port"
    marker = "broker.properties"
    other = "another broker"
    start_timeout = 60.0
    stop_timeout = 40.0  # a controlled shutdown flushes and closes every log

    @property
    def folder(self) -> Path:
        return self.settings.stack_home / "kafka"

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def properties_path(self) -> Path:
        return self.folder / "broker.properties"

    def server_properties(self) -> dict[str, str]:
        s = self.settings
        return {
            **BROKER_SETTINGS,
            "listeners": f"PLAINTEXT://127.0.0.1:{s.kafka_port},CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{s.kafka_port}",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{s.kafka_controller_port}",
            "log.dirs": str(self.data_dir),
        }

    def prepare(self) -> None:
        ensure_port_free(self.settings.kafka_controller_port, "CDC_KAFKA_CONTROLLER_PORT", "another KRaft controller",
                         grace=self.release_grace())
        self.folder.mkdir(parents=True, exist_ok=True)
        write_properties(self.properties_path, self.server_properties())
        atomic_write_text(self.folder / "log4j2.properties", log4j2_properties(QUIET_LOGGERS))
        if not (self.data_dir / "meta.properties").exists():
            self._format_storage()

    def _java(self, main_class: str, *args: str) -> list[str]:
        return [java_binary(), HEAP, *JVM_FLAGS, f"-Dlog4j2.configurationFile={self.folder / 'log4j2.properties'}",
                "-cp", jars.classpath(jars.KAFKA, self.settings.jars_dir), main_class, *args]

    def _format_storage(self) -> None:
        """Kafka 4 is KRaft only: a log directory is formatted once, as one standalone controller's."""
        done = subprocess.run(self._java("kafka.tools.StorageTool", "format", "--standalone", "--ignore-formatted",
                                         "-t", CLUSTER_ID, "-c", str(self.properties_path)),
                              capture_output=True, text=True)
        with open(self.log_path, "a") as log:
            log.write(done.stdout + done.stderr)
        if done.returncode != 0:
            raise PartStartError(f"formatting the Kafka log directory {self.data_dir} failed (exit {done.returncode}):"
                                 f" {(done.stderr or done.stdout).strip()[-600:]}")

    def launch(self) -> None:
        process.start_detached(self._java("kafka.Kafka", str(self.properties_path)),
                               log_path=self.log_path, pid_path=self.pid_path, cwd=self.folder)

    def probe(self) -> str:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap, "log_level": 0,
                             "socket.connection.setup.timeout.ms": 2000})
        metadata = admin.list_topics(timeout=3)
        topics = sorted(t for t in metadata.topics if not t.startswith("_"))
        return f"Apache Kafka {jars.kafka_version()}, {len(topics)} topic(s)" + (
            f" ({', '.join(topics[:5])}{', ...' if len(topics) > 5 else ''})" if topics else "")
