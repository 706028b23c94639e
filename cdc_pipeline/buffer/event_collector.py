"""Turn the Kafka records of one batch into buffer rows, counting what is skipped and why.

It also notices what the merge and the recovery logic need to know about the batch: the schema
signatures its events carry (a change means the table's columns or types changed), the snapshot reads
it holds (and Debezium's marker on the last one), and the first undecodable message.

Each kept event becomes its buffer.csv line at once (``decode_csv``: the row's fields come from the
schema plan's compiled renderer), so a batch of 100,000 events is 100,000 strings, not 100,000 dicts.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path

from confluent_kafka import Message

from cdc_pipeline.atomic import atomic_write_text
from cdc_pipeline.buffer.batch_buffer import BufferMeta, BufferRows
from cdc_pipeline.connector_spec import ConnectorSpec
from cdc_pipeline.debezium.events import CsvChange, RenderContext, decode_csv, format_source_timestamp
from cdc_pipeline.errors import EventDecodeError

OPERATION_COUNTS = {"c": "creates", "u": "updates", "d": "deletes", "r": "reads", "t": "truncates"}
COUNT_NAMES = (*OPERATION_COUNTS.values(), "tombstones", "other_tables", "dead_lettered", "before_start")


class EventCollector:
    """Decode each record of one incarnation; keep buffer rows, counts, and dead letters."""

    def __init__(self, spec: ConnectorSpec, *, incarnation: int, context: RenderContext,
                 start_from_ms: int | None = None) -> None:
        self.spec = spec
        self.incarnation = str(incarnation)
        self.context = context
        self.start_from_ms = start_from_ms
        self.rows = BufferRows(self.incarnation)
        self.dead_letters: list[dict] = []
        self.signatures: dict[tuple, tuple[str, ...]] = {}  # signature -> its columns, in order of appearance
        self.snapshot_reads = 0
        self.last_snapshot_marker = False
        self._counts: Counter[str] = Counter()
        self._key_columns: tuple[str, ...] | None = None
        self.max_lsn: int | None = None
        self._max_ts_ms: int | None = None
        self._table = (spec.schema, spec.table)
        self._last_signature: tuple | None = None
        # One transaction's events share a commit time: its text is made once.
        self._last_ts: tuple[int | None, str] = (None, "")

    def add(self, message: Message) -> None:
        value = message.value()
        if value is None:
            # A delete's tombstone carries nothing the delete event before it did not; it exists for compaction.
            self._counts["tombstones"] += 1
            return
        try:
            change = decode_csv(message.key(), value, self.context)
        except EventDecodeError as exc:
            self._dead_letter(message, exc)
            return
        if change is None:
            self._counts["tombstones"] += 1
            return
        if (change.schema, change.table) != self._table:
            self._counts["other_tables"] += 1
            return
        if self.start_from_ms is not None and change.source_ts_ms < self.start_from_ms:
            # The source's commit time, not the Kafka timestamp: a backlog published late is still old.
            self._counts["before_start"] += 1
            return
        self._keep(message, change)

    def _keep(self, message: Message, change: CsvChange) -> None:
        op = change.op
        if op != "t" and change.signature is not self._last_signature:
            self._last_signature = change.signature
            self.signatures.setdefault(change.signature, change.columns)
            self.rows.column_layouts.add(change.columns)
            if self._key_columns is None:
                self._key_columns = change.key_columns
        if change.snapshot is not None:
            self.snapshot_reads += 1
            self.last_snapshot_marker |= change.snapshot in ("last", "last_in_data_collection")
        ts_ms = change.source_ts_ms
        if ts_ms != self._last_ts[0]:
            self._last_ts = (ts_ms, format_source_timestamp(ts_ms))
        partition = message.partition()
        offset = message.offset()
        lsn = change.lsn
        txid = "" if change.txid is None else change.txid
        # The columns after the table's: timestamp, then provenance (batch_buffer.PROVENANCE); none needs quoting.
        tail = f"{self._last_ts[1]},{message.topic()},{partition},{offset},{lsn},{self.incarnation},{txid}\n"
        if op == "t":
            self.rows.append_truncate(tail, partition, offset)
        else:
            self.rows.append(f"{op},{change.fields},{tail}", partition, offset)
        self._counts[OPERATION_COUNTS[op]] += 1
        if self.max_lsn is None or lsn > self.max_lsn:
            self.max_lsn = lsn
        if self._max_ts_ms is None or ts_ms > self._max_ts_ms:
            self._max_ts_ms = ts_ms

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

    @property
    def key_columns(self) -> tuple[str, ...] | None:
        return self._key_columns

    def meta(self, columns: tuple[str, ...], key_columns: tuple[str, ...], epoch: int) -> BufferMeta:
        return BufferMeta(self.spec.qualified_table, columns, key_columns, epoch)

    def counts(self) -> dict[str, int]:
        return {name: self._counts[name] for name in COUNT_NAMES}

    def max_source_ts(self) -> str | None:
        return None if self._max_ts_ms is None else format_source_timestamp(self._max_ts_ms)

    def first_dead_letter(self) -> str | None:
        if not self.dead_letters:
            return None
        first = self.dead_letters[0]
        return f"{first['topic']}[{first['partition']}] offset {first['offset']}: {first['error']}"

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
