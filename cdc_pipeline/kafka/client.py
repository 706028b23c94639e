"""The consumer and admin clients of one pipeline, built from the connection's librdkafka settings."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from cdc_pipeline import defaults

METADATA_TIMEOUT_S = 15.0

# What the pipeline's correctness depends on; the connection's own values for these are ignored.
FORCED_CONSUMER_SETTINGS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "enable.partition.eof": True,
    # An out-of-range position must surface as an error, never as a silent jump to either end of the log.
    "auto.offset.reset": "error",
}

# Defaults under the connection's own values (docs/performance.md, "Consumer settings"): a reader slower than the
# broker would otherwise idle a whole second whenever its local queue fills (librdkafka's 1000 ms backoff), and
# every fetch that finds nothing new (a read's tail, its end-of-partition events), which the ListOffsets requests on
# the same connection queue behind, would wait 500 ms.
DEFAULT_CONSUMER_SETTINGS: dict[str, Any] = {
    "fetch.queue.backoff.ms": 20,
    "fetch.wait.max.ms": 100,
}

# Consumer-only keys the admin client would reject or warn about.
_CONSUMER_ONLY = frozenset({"group.id", "auto.offset.reset", "enable.auto.commit", "enable.auto.offset.store",
                            "enable.partition.eof", "isolation.level", "group.instance.id", "session.timeout.ms",
                            "max.poll.interval.ms", "fetch.wait.max.ms", "fetch.min.bytes", "queued.min.messages",
                            "fetch.queue.backoff.ms"})


def admin_config(connection_config: dict) -> dict:
    """The connection's settings an admin client or a producer accepts (the consumer's own left out)."""
    return {k: v for k, v in connection_config.items() if k not in _CONSUMER_ONLY}


def group_id_for(prefix: str, connector_name: str) -> str:
    """One consumer group per pipeline, so two connectors never share offsets."""
    return f"{prefix}.{connector_name}"


def batch_consumer_config(connection_config: dict, group_id: str) -> dict:
    """The connection's librdkafka settings over the pipeline's defaults, with what its correctness depends on
    forced."""
    return {**DEFAULT_CONSUMER_SETTINGS, **connection_config, "group.id": group_id, **FORCED_CONSUMER_SETTINGS}


class KafkaClients:
    """A pipeline's consumer (explicit offsets, no auto-commit) and, on demand, an admin client.

    The admin client answers what the consumer cannot: a topic's id, which tells a recreated topic
    (the broker lost its data) from the one the run history knows.
    """

    def __init__(self, connection_config: dict, group_id: str) -> None:
        self.connection_config = dict(connection_config)
        self.group_id = group_id
        self.consumer = Consumer(batch_consumer_config(self.connection_config, group_id))
        self._admin: AdminClient | None = None

    @classmethod
    def for_pipeline(cls, connection_config: dict, connector_name: str) -> KafkaClients:
        prefix = connection_config.get("group.id") or defaults.GROUP_PREFIX
        return cls(connection_config, group_id_for(prefix, connector_name))

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient(admin_config(self.connection_config))
        return self._admin

    def close(self) -> None:
        self.consumer.close()

    def __enter__(self) -> KafkaClients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
