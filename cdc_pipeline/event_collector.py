"""Turn the Kafka records of one batch into buffer rows, counting what is skipped and why."""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path

from confluent_kafka import Message

from cdc_pipeline.atomic import atomic_write_text
from cdc_pipeline.batch_buffer import OPERATION, TIMESTAMP, BufferMeta
from cdc_pipeline.connector_spec import ConnectorSpec
from cdc_pipeline.debezium.events import decode_message, format_source_timestamp
from cdc_pipeline.errors import EventDecodeError

OPERATION_COUNTS = {"c": "creates", "u": "updates", "d": "deletes", "r": "reads"}


class EventCollector:
    """Decode each record; keep buffer rows, counts, and dead letters for undecodable records."""

    def __init__(self, spec: ConnectorSpec, *, start_from_ms: int | None) -> None:
        self.spec = spec
        self.start_from_ms = start_from_ms
        self.rows: list[dict[str, str | None]] = []
        self.dead_letters: list[dict] = []
        self._counts: Counter[str] = Counter()
        self._columns: dict[str, None] = {}
        self._key_columns: tuple[str, ...] | None = None
        self.max_lsn: int | None = None
        self._max_ts_ms: int | None = None

    def add(self, message: Message) -> None:
        if message.value() is None:
            # A delete's tombstone carries nothing the delete event before it did not; it exists for compaction.
            self._counts["tombstones"] += 1
            return
        try:
            event = decode_message(message.key(), message.value())
        except EventDecodeError as exc:
            self._dead_letter(message, exc)
            return
        if event is None:
            self._counts["tombstones"] += 1
            return
        if (event.schema, event.table) != (self.spec.schema, self.spec.table):
            self._counts["other_tables"] += 1
            return
        if self.start_from_ms is not None and event.source_ts_ms < self.start_from_ms:
            # The source's commit time, not the Kafka timestamp: a backlog published late is still old.
            self._counts["before_start"] += 1
            return
        if self._key_columns is None:
            self._key_columns = event.key_columns
        for column in event.columns:
            self._columns.setdefault(column, None)
        row: dict[str, str | None] = dict(zip(event.columns, event.values))
        row[OPERATION] = event.op
        row[TIMESTAMP] = format_source_timestamp(event.source_ts_ms)
        row["_topic"] = message.topic()
        row["_partition"] = str(message.partition())
        row["_offset"] = str(message.offset())
        row["_lsn"] = str(event.lsn)
        self.rows.append(row)
        self._counts[OPERATION_COUNTS[event.op]] += 1
        if self.max_lsn is None or event.lsn > self.max_lsn:
            self.max_lsn = event.lsn
        if self._max_ts_ms is None or event.source_ts_ms > self._max_ts_ms:
            self._max_ts_ms = event.source_ts_ms

    def _dead_letter(self, message: Message, exc: Exception) -> None:
        self._counts["dead_lettered"] += 1
        self.dead_letters.append(
            {
                "topic": message.topic(),
                "partition": message.partition(),
                "offset": message.offset(),
                "error": str(exc),
                "key_base64": _b64(message.key()),
                "value_base64": _b64(message.value()),
            }
        )

    def meta(self) -> BufferMeta:
        return BufferMeta(self.spec.qualified_table, tuple(self._columns), self._key_columns or ())

    def counts(self) -> dict[str, int]:
        names = [*OPERATION_COUNTS.values(), "tombstones", "other_tables", "dead_lettered", "before_start"]
        return {name: self._counts[name] for name in names}

    def max_source_ts(self) -> str | None:
        return None if self._max_ts_ms is None else format_source_timestamp(self._max_ts_ms)

    def write_dead_letters(self, path: Path) -> None:
        """Add to the dead-letter file (JSON lines), once per (topic, partition, offset), atomically."""
        entries: dict[tuple, dict] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    entry = json.loads(line)
                    entries[(entry["topic"], entry["partition"], entry["offset"])] = entry
        for entry in self.dead_letters:
            entries[(entry["topic"], entry["partition"], entry["offset"])] = entry
        atomic_write_text(path, "".join(json.dumps(e) + "\n" for e in entries.values()))


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode("ascii")
