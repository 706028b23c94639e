"""Drive the three pipeline steps against the real local services, without Airflow."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
from confluent_kafka import Consumer

from cdc_pipeline import steps
from cdc_pipeline.connector_spec import load_connector_spec
from cdc_pipeline.kafka_batch import batch_consumer_config, read_range, topic_partitions, watermarks
from cdc_pipeline.kafka_connect import KafkaConnectClient
from cdc_pipeline.run_history import RunRef
from cdc_pipeline.source.checks import SourceParams

REPO = Path(__file__).resolve().parents[2]


def write_connector(folder: Path, name: str, table: str, prefix: str) -> Path:
    """A connector file like the shipped one, for another table, slot and topic prefix."""
    config = json.loads((REPO / "include" / "connectors" / "clientes.json").read_text())["config"]
    config.update({"table.include.list": table, "topic.prefix": prefix, "slot.name": f"slot_{name}",
                   "publication.name": f"pub_{name}"})
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"name": name, "config": config}, indent=2))
    return path


class PipelineDriver:
    def __init__(self, settings, connector_path: Path, data_dir: Path, group: str | None = None) -> None:
        self.settings = settings
        self.spec = load_connector_spec(connector_path)
        self.paths = steps.PipelinePaths.for_connector(data_dir, self.spec)
        self.group = group or f"test.{self.spec.name}"
        self.runs = 0

    @property
    def source(self) -> SourceParams:
        s = self.settings
        return SourceParams(s.pg_host, s.pg_port, s.pg_user, s.pg_password, s.pg_db)

    def sql(self, statement: str, params=None):
        s = self.settings
        with psycopg.connect(host=s.pg_host, port=s.pg_port, user=s.pg_user, password=s.pg_password, dbname=s.pg_db, autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else None

    def copy_csv(self, order_by: str) -> bytes:
        s = self.settings
        with psycopg.connect(host=s.pg_host, port=s.pg_port, user=s.pg_user, password=s.pg_password, dbname=s.pg_db) as conn:
            conn.execute("SET DateStyle = ISO")
            conn.execute("SET TimeZone = 'UTC'")
            out = bytearray()
            with conn.cursor().copy(f"COPY (SELECT * FROM {self.spec.qualified_table} ORDER BY {order_by}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
                for chunk in copy:
                    out += chunk
            return bytes(out)

    def consumer(self) -> Consumer:
        return Consumer(batch_consumer_config({"bootstrap.servers": f"127.0.0.1:{self.settings.kafka_port}"}, self.group))

    def register(self, run: RunRef | None = None) -> dict:
        with KafkaConnectClient(f"http://127.0.0.1:{self.settings.connect_port}") as connect:
            return steps.register_connector(self.spec, connect, self.source, self.paths, run or self.next_run())

    def consume(self, run: RunRef, max_events: int = 10_000, **kwargs) -> dict:
        consumer = self.consumer()
        try:
            return steps.consume_batch(self.spec, consumer, self.paths, run, max_events=max_events, **kwargs)
        finally:
            consumer.close()

    def merge(self, run: RunRef) -> dict:
        return steps.merge_buffer(self.paths, run)

    def next_run(self) -> RunRef:
        self.runs += 1
        return RunRef(f"test__{self.runs:04d}", 1, "2026-11-24T00:00:00+00:00", "2026-11-24T00:01:00+00:00")

    def run_once(self, max_events: int = 10_000) -> tuple[dict, dict]:
        run = self.next_run()
        consumed = self.consume(run, max_events=max_events)
        return consumed, self.merge(run)

    def topic_record_count(self) -> int:
        """Records now in the topic (read through, since Tansu's ListOffsets answers short of the end)."""
        consumer = Consumer(batch_consumer_config({"bootstrap.servers": f"127.0.0.1:{self.settings.kafka_port}"}, "test.peek"))
        try:
            partitions = topic_partitions(consumer, self.spec.topic) or []
            starts = {p: watermarks(consumer, self.spec.topic, p)[0] for p in partitions}
            return read_range(consumer, self.spec.topic, starts, lambda m: None, max_events=None).records_read
        finally:
            consumer.close()

    def wait_for_records(self, at_least: int, timeout: float = 30.0) -> int:
        """Wait until Debezium has published at least this many records to the topic."""
        deadline = time.monotonic() + timeout
        while (count := self.topic_record_count()) < at_least and time.monotonic() < deadline:
            time.sleep(0.5)
        return count

    def destiny(self) -> bytes:
        path = self.paths.folder / "destiny.csv"
        return path.read_bytes() if path.exists() else b""

    def drain_until_equal(self, order_by: str, *, max_events: int = 10_000, timeout: float = 90.0) -> bytes:
        """Run consume+merge until destiny.csv equals COPY's output, or the deadline; answer COPY's bytes."""
        expected = self.copy_csv(order_by)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.run_once(max_events)
            if self.destiny() == expected:
                return expected
            time.sleep(1.0)
        return expected
