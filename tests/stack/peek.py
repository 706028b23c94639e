"""What the source and the broker hold, read as a test compares it: a table through COPY, a topic to its end.

Both stay independent of the pipeline's own readers (``cdc_pipeline.commands.verify``, ``cdc_pipeline.kafka.reader``),
so that a test comparing the pipeline's output with them does not check the pipeline against itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from cdc_pipeline.waiting import wait_until


def copy_table(conn: psycopg.Connection, table: str, order_by: str) -> bytes:
    """``COPY (SELECT * FROM <table> ORDER BY <order_by>) TO STDOUT WITH (FORMAT csv, HEADER)`` under DateStyle
    ISO and TimeZone UTC, as bytes: what destiny.csv must equal byte for byte. Sets both on ``conn``'s session."""
    conn.execute("SET DateStyle = ISO")
    conn.execute("SET TimeZone = 'UTC'")
    out = bytearray()
    with conn.cursor().copy(f"COPY (SELECT * FROM {table} ORDER BY {order_by}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
        for chunk in copy:
            out += chunk
    return bytes(out)


@dataclass(frozen=True)
class TopicRecord:
    partition: int
    offset: int
    timestamp: int  # milliseconds since the epoch, as the producer or the broker set it
    key: bytes | None
    value: bytes | None  # None for a tombstone


def read_topic(bootstrap: str, topic: str, *, group: str = "test.peek", timeout: float = 60.0) -> list[TopicRecord]:
    """Every record of ``topic``, from each partition's log start to its end (its end of partition seen with no
    record after it), in the order the partitions delivered them; ``[]`` when the topic does not exist. Never
    commits. Raises WaitTimeout when some partition's end is not reached within ``timeout`` seconds (naming the
    last broker error, if any)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "enable.partition.eof": True})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = sorted(metadata.topics[topic].partitions) if topic in metadata.topics else []
        if not partitions:
            return []
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        at_end: set[int] = set()
        records: list[TopicRecord] = []

        def at_every_end() -> bool:
            message = consumer.poll(0.5)
            if message is None:
                pass
            elif message.error() is None:
                at_end.discard(message.partition())
                records.append(TopicRecord(message.partition(), message.offset(), message.timestamp()[1],
                                           message.key(), message.value()))
            elif message.error().code() == KafkaError._PARTITION_EOF:
                at_end.add(message.partition())
            else:  # wait_until counts it as "not yet" and names the last one if the deadline passes
                raise RuntimeError(f"reading {topic} partition {message.partition()}: {message.error()}")
            return len(at_end) == len(partitions)

        wait_until(at_every_end, what=f"the end of every partition of {topic}", timeout=timeout, interval=0)
        return records
    finally:
        consumer.close()


def wait_for_records(bootstrap: str, topic: str, count: int, *, timeout: float = 120.0,
                     group: str = "test.peek") -> list[TopicRecord]:
    """Read ``topic`` to its end again until it holds at least ``count`` records; answer them."""
    def enough() -> list[TopicRecord] | None:
        records = read_topic(bootstrap, topic, group=group)
        return records if len(records) >= count else None

    return wait_until(enough, what=f"{count} records on {topic}", timeout=timeout, interval=1.0)
