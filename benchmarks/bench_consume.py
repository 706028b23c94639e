"""consume_batch throughput on a real broker: real Debezium messages in, buffer.csv out.

Starts a throwaway broker (Tansu, from the local stack), produces N copies of the sample events
(tests/fixtures/samples, about 5.7 kB each with their inline schema) to a 4-partition topic, then times
one consume_batch of all of them. Prints figures; asserts nothing.
Run: .venv/bin/python benchmarks/bench_consume.py [events]
"""

from __future__ import annotations

import gzip
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from cdc_pipeline import steps
from cdc_pipeline.connector_spec import load_connector_spec
from cdc_pipeline.kafka_batch import batch_consumer_config
from cdc_pipeline.run_history import RunRef
from devstack.stack import Stack
from devstack.testing import make_test_settings

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "fixtures" / "samples" / "debezium-3.1.1-acc_types-events.jsonl.gz"
TOPIC = "acc2.public.acc_types"


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    records = [json.loads(line) for line in gzip.open(SAMPLES, "rt", encoding="utf-8")]
    records = [r for r in records if r["value"] is not None]
    settings = make_test_settings(prefix="cdc-bench-")
    stack = Stack(settings)
    try:
        stack.start(["broker"])
        bootstrap = settings.kafka_bootstrap
        admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the future resolves
        admin.create_topics([NewTopic(TOPIC, 4)])[TOPIC].result(timeout=30)
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
        encoded = [(json.dumps(r["key"]).encode(), json.dumps(r["value"], separators=(",", ":")).encode()) for r in records]
        started = time.perf_counter()
        for i in range(count):
            key, value = encoded[i % len(encoded)]
            producer.produce(TOPIC, value=value, key=key, partition=i % 4)
            if i % 10_000 == 0:
                producer.flush()
        producer.flush()
        produced = time.perf_counter() - started
        size_mb = sum(len(encoded[i % len(encoded)][1]) for i in range(count)) / 1e6

        connector = Path(tempfile.mkdtemp()) / "acc.json"
        config = json.loads((ROOT / "include" / "connectors" / "clientes.json").read_text())["config"]
        config.update({"topic.prefix": "acc2", "table.include.list": "public.acc_types"})
        connector.write_text(json.dumps({"name": "acc", "config": config}))
        spec = load_connector_spec(connector)
        with tempfile.TemporaryDirectory() as data:
            paths = steps.PipelinePaths(Path(data) / "acc")
            consumer = Consumer(batch_consumer_config({"bootstrap.servers": bootstrap}, "bench"))
            started = time.perf_counter()
            summary = steps.consume_batch(spec, consumer, paths, RunRef("bench"), max_events=count)
            consumed = time.perf_counter() - started
            consumer.close()
            buffer_mb = (paths.folder / "buffer.csv").stat().st_size / 1e6
    finally:
        stack.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"produced {count:,} messages ({size_mb:.0f} MB) in {produced:.1f} s")
    print(f"consume_batch: {summary['events']:,} events in {consumed:.2f} s = {summary['events'] / consumed:,.0f} events/s "
          f"-> buffer.csv {buffer_mb:.1f} MB, {summary['buffer_rows']:,} rows")
    print(f"peak resident memory of this process: {peak:,.0f} MB")


if __name__ == "__main__":
    main()
