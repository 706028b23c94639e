"""What a topic's own settings mean for the pipeline: compaction is refused, retention is reported.

A compacted topic (``cleanup.policy`` with ``compact``) keeps only the newest record per key: a deleted row
leaves a tombstone, which the cleaner drops after ``delete.retention.ms``. A pipeline paused past that never
learns of the delete while its offsets look normal, so the pipeline refuses such a topic instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import ConfigResource, ResourceType

from cdc_pipeline.errors import BrokerUnreachableError, ConfigError
from cdc_pipeline.kafka.client import METADATA_TIMEOUT_S, KafkaClients


@dataclass(frozen=True)
class TopicRetention:
    topic: str
    cleanup_policy: str
    retention_ms: int | None  # None: kept forever (-1)
    retention_bytes: int | None

    @property
    def compacted(self) -> bool:
        return "compact" in self.cleanup_policy

    def describe(self) -> str:
        kept = "forever" if self.retention_ms is None else f"{self.retention_ms / 3_600_000:g} h"
        size = "" if self.retention_bytes is None else f", at most {self.retention_bytes} bytes per partition"
        return f"cleanup.policy={self.cleanup_policy}, records kept {kept}{size}"


def topic_retention(clients: KafkaClients, topic: str) -> TopicRetention | None:
    """The topic's effective cleanup and retention settings, or None when it does not exist yet."""
    resource = ConfigResource(ResourceType.TOPIC, topic)
    try:
        entries = clients.admin.describe_configs([resource], request_timeout=METADATA_TIMEOUT_S)[resource].result()
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if getattr(error, "name", lambda: "")() == "UNKNOWN_TOPIC_OR_PART":
            return None
        raise BrokerUnreachableError(f"the broker did not describe the settings of topic {topic!r}: {exc}") from exc

    def number(name: str) -> int | None:
        value = int(entries[name].value) if name in entries and entries[name].value is not None else -1
        return None if value < 0 else value

    policy = entries["cleanup.policy"].value if "cleanup.policy" in entries else "delete"
    return TopicRetention(topic, (policy or "delete").lower(), number("retention.ms"), number("retention.bytes"))


def refuse_compaction(retention: TopicRetention) -> None:
    """A compacted topic cannot carry every delete to a pipeline that falls behind: refuse it, naming the fix."""
    if retention.compacted:
        raise ConfigError(
            f"topic {retention.topic} has cleanup.policy={retention.cleanup_policy}: compaction drops a deleted row's "
            "events after delete.retention.ms, so a pipeline that falls behind would keep rows the table no longer "
            f"has. Set it to delete: kafka-configs.sh --bootstrap-server <broker> --alter --entity-type topics "
            f"--entity-name {retention.topic} --add-config cleanup.policy=delete (and the connector's "
            "topic.creation.default.cleanup.policy to delete), then run again.")
