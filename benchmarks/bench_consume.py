"""consume_batch against a bare fetch loop and the Kafka provider's operator, on the same messages, same run.

Starts a throwaway broker (Apache Kafka, through devstack), produces EVENTS records cycling the real Debezium
records of tests/fixtures/samples (21 columns, about 5.7 kB each with the inline schema; deletes keep their
tombstones) to a 4-partition topic, then measures, each over all EVENTS records:

- ``raw``: a bare confluent-kafka loop (``assign`` at offset 0, ``consume()`` of up to 1000, ``message.value()``,
  no decoding), with the pipeline consumer's settings, timed from creating the consumer to the last record;
- ``consume_batch``: ``cdc_pipeline.tasks.consume.consume_batch`` end to end (clients, topic checks, fetch,
  decode, buffer.csv, history, commit), in a child process whose peak RSS (``VmHWM``) is reported;
- ``operator``: the provider's ``ConsumeFromTopicOperator.execute()`` called directly (context ``{}``) with a
  per-message ``apply_function`` that parses the message with ``json.loads`` and appends the row (``after``,
  or ``before`` for a delete) to a CSV file with ``csv.writer`` (file opened once, its best case), in a child
  process; its connection comes from ``AIRFLOW_CONN_*`` with a fresh group, ``auto.offset.reset=earliest``
  and ``session.timeout.ms=6000`` (a shorter first group join).
  ``operator_events_per_s`` is the whole ``execute()``; ``operator_loop_events_per_s`` starts at its first
  message (group join excluded).

Prints progress, then as its LAST line one JSON object. Asserts nothing.
Run: .venv/bin/python benchmarks/bench_consume.py [EVENTS] [--max-events N] [--profile OUT.txt]
     [--producer-batch-bytes B] [--skip-operator] [--results FILE.jsonl]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLES = ROOT / "tests" / "fixtures" / "samples" / "debezium-3.1.1-acc_types-events.jsonl.gz"
TOPIC = "acc2.public.acc_types"
PARTITIONS = 4


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        figures = CHILDREN[sys.argv[2]](json.loads(sys.argv[3]))
        print(json.dumps(figures))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("events", nargs="?", type=int, default=100_000, help="records to produce and read")
    parser.add_argument("--max-events", type=int, help="consume_batch's max_events (default: EVENTS)")
    parser.add_argument("--producer-batch-bytes", type=int, default=1_000_000,
                        help="the producer's batch.size (default librdkafka's 1 MB; Kafka Connect's is 16384)")
    parser.add_argument("--profile", type=Path, help="profile consume_batch with pyinstrument, text report here")
    parser.add_argument("--skip-operator", action="store_true", help="leave the provider's operator out")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each measurement; the best of each counts")
    parser.add_argument("--consumer-setting", action="append", default=[], metavar="KEY=VALUE",
                        help="a librdkafka setting for the consumers of consume_batch and the raw loop (repeatable)")
    parser.add_argument("--results", type=Path, help="also append the JSON line to this file")
    args = parser.parse_args()
    figures = run(args)
    line = json.dumps(figures)
    if args.results:
        with open(args.results, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    print(line)


def run(args: argparse.Namespace) -> dict:
    from devstack.stack import Stack
    from devstack.testing import make_test_settings

    count = args.events
    connection = dict(setting.split("=", 1) for setting in args.consumer_setting)
    settings = make_test_settings(prefix="cdc-bench-consume-")
    stack = Stack(settings)
    work = Path(tempfile.mkdtemp(prefix="bench-consume-"))
    try:
        stack.start(["broker"])
        bootstrap = settings.kafka_bootstrap
        connection["bootstrap.servers"] = bootstrap
        produced = produce(bootstrap, count, args.producer_batch_bytes)
        print(f"produced {count:,} records ({produced['mb']:.0f} MB, mean value {produced['mean_value_bytes']:,} B) "
              f"in {produced['seconds']:.1f} s", flush=True)
        raws = [raw_fetch(connection, count)]
        print(f"raw fetch loop: {raws[-1]:,.0f} records/s", flush=True)
        ours: list[dict] = []
        operators: list[dict] = []
        for number in range(args.rounds):
            ours.append(child("consume", {"connection": connection, "work": str(work / f"consume-{number}"),
                                          "count": count, "max_events": args.max_events or count,
                                          "profile": str(args.profile) if args.profile and number == 0 else None}))
            last = ours[-1]
            print(f"consume_batch: {last['events']:,} events in {last['seconds']:.2f} s = {last['events_per_s']:,.0f}/s, "
                  f"buffer.csv {last['buffer_mb']:.1f} MB, {last['buffer_rows']:,} rows; peak RSS "
                  f"{last['peak_rss_mb']:.0f} MB", flush=True)
            if not args.skip_operator:
                operators.append(child("operator", {"connection": connection, "work": str(work / f"operator-{number}"),
                                                    "count": count, "group": f"bench-operator-{number}"}))
                last = operators[-1]
                print(f"ConsumeFromTopicOperator: {last['events']:,} records in {last['seconds']:.2f} s = "
                      f"{last['events_per_s']:,.0f}/s; after its first message {last['loop_events_per_s']:,.0f}/s",
                      flush=True)
            raws.append(raw_fetch(connection, count))
            print(f"raw fetch loop: {raws[-1]:,.0f} records/s", flush=True)
    finally:
        stack.stop()
        _remove(work)
        _remove(settings.stack_home)
    # Best of each (the least disturbed run on a shared machine); the ratios are of those bests.
    raw = max(raws)
    best = max(ours, key=lambda r: r["events_per_s"])
    operator = max(operators, key=lambda r: r["events_per_s"]) if operators else None
    operator_loop = max(r["loop_events_per_s"] for r in operators) if operators else None
    return {
        "events": best["events"],
        "events_per_s": round(best["events_per_s"]),
        "raw_events_per_s": round(raw),
        "operator_events_per_s": round(operator["events_per_s"]) if operator else None,
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in ours), 1),
        "ratio_to_raw": round(best["events_per_s"] / raw, 3),
        "ratio_to_operator": round(best["events_per_s"] / operator["events_per_s"], 2) if operator else None,
        "operator_loop_events_per_s": round(operator_loop) if operator else None,
        "ratio_to_operator_loop": round(best["events_per_s"] / operator_loop, 2) if operator else None,
        "consume_runs_per_s": [round(r["events_per_s"]) for r in ours],
        "raw_runs_per_s": [round(r) for r in raws],
        "operator_runs_per_s": [round(r["events_per_s"]) for r in operators],
        "operator_join_s": [round(r["join_s"], 2) for r in operators],
        "buffer_rows": best["buffer_rows"],
        "max_events": args.max_events or count,
        "records": count,
        "mean_value_bytes": produced["mean_value_bytes"],
        "producer_batch_bytes": args.producer_batch_bytes,
        "consumer_settings": {k: v for k, v in connection.items() if k != "bootstrap.servers"},
        "partitions": PARTITIONS,
        "machine": f"{os.cpu_count()} cpu, {platform.python_implementation()} {platform.python_version()}",
    }


def sample_messages() -> list[tuple[bytes | None, bytes | None]]:
    """The sample records as the JsonConverter wrote them: compact JSON, schema first."""
    with gzip.open(SAMPLES, "rb") as handle:
        records = [json.loads(line) for line in handle]
    return [(None if r["key"] is None else _compact(r["key"]), None if r["value"] is None else _compact(r["value"]))
            for r in records]


def _compact(document) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def produce(bootstrap: str, count: int, batch_bytes: int) -> dict:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the future resolves
    admin.create_topics([NewTopic(TOPIC, PARTITIONS)])[TOPIC].result(timeout=30)
    messages = sample_messages()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": batch_bytes})
    started = time.perf_counter()
    size = values = 0
    for i in range(count):
        key, value = messages[i % len(messages)]
        while True:
            try:
                producer.produce(TOPIC, value=value, key=key, partition=i % PARTITIONS)
                break
            except BufferError:  # the local queue is full: let it drain
                producer.poll(0.1)
        if value is not None:
            size += len(value)
            values += 1
    if producer.flush(60):
        raise RuntimeError("the producer could not deliver every record within 60 s; see the broker's log")
    return {"seconds": time.perf_counter() - started, "mb": size / 1e6, "mean_value_bytes": round(size / max(values, 1))}


def raw_fetch(connection: dict, count: int) -> float:
    """Records per second of a bare fetch loop over the whole topic, with the pipeline consumer's settings."""
    from confluent_kafka import Consumer, TopicPartition

    from cdc_pipeline.kafka.client import batch_consumer_config

    consumer = Consumer(batch_consumer_config(connection, "bench-raw"))
    try:
        started = time.perf_counter()
        consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
        read = 0
        ended: set[int] = set()
        while read < count and len(ended) < PARTITIONS:
            # Never more than is left: consume() waits for the whole count (or the timeout).
            for message in consumer.consume(num_messages=min(1000, count - read), timeout=1.0):
                if message.error() is None:
                    message.value()
                    read += 1
                else:
                    ended.add(message.partition())
        seconds = time.perf_counter() - started
    finally:
        consumer.close()
    if read < count:
        raise RuntimeError(f"the raw loop read {read} of {count} records")
    return read / seconds


def child(role: str, config: dict) -> dict:
    finished = subprocess.run([sys.executable, __file__, "--child", role, json.dumps(config)],
                              capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"the {role} child failed:\n{finished.stdout[-3000:]}\n{finished.stderr[-6000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def child_consume(config: dict) -> dict:
    """consume_batch of every record, timed from building its clients to closing them."""
    from cdc_pipeline.connector_spec import load_connector_spec
    from cdc_pipeline.history import RunRef
    from cdc_pipeline.kafka.client import KafkaClients
    from cdc_pipeline.pipeline import Pipeline
    from cdc_pipeline.services import Services
    from cdc_pipeline.tasks.consume import consume_batch

    work = Path(config["work"])
    work.mkdir(parents=True, exist_ok=True)
    connector = work / "acc.json"
    shipped = json.loads((ROOT / "include" / "connectors" / "clientes.json").read_text())
    shipped["config"].update({"topic.prefix": "acc2", "table.include.list": "public.acc_types"})
    connector.write_text(json.dumps({"name": "acc", "config": shipped["config"]}))
    pipe = Pipeline.under(work / "data", load_connector_spec(connector))

    def no_connect():
        raise RuntimeError("the benchmark's consume_batch must not need Kafka Connect nor the source")

    profiler = None
    if config.get("profile"):
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
    started = time.perf_counter()
    services = Services(kafka=lambda name: KafkaClients(config["connection"], "bench-consume"), connect=no_connect,
                        source=no_connect)
    summary = consume_batch(pipe, services, RunRef("manual__bench-consume"), max_events=config["max_events"],
                            max_seconds=600)
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.stop()
        Path(config["profile"]).write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    return {"events": summary["events"], "seconds": seconds, "events_per_s": summary["events"] / seconds,
            "buffer_rows": summary.get("buffer_rows", 0), "buffer_mb": pipe.layout.buffer.stat().st_size / 1e6,
            "peak_rss_mb": peak_rss_mb()}


def append_row(message, writer) -> None:
    """The operator's per-message function: the row of a Debezium message, appended to a CSV."""
    if message.value() is None:
        return
    payload = json.loads(message.value())["payload"]
    row = payload["after"] if payload["op"] != "d" else payload["before"]
    writer.writerow([payload["op"], *row.values()])


def child_operator(config: dict) -> dict:
    """ConsumeFromTopicOperator.execute() over every record, called directly with an empty context."""
    import csv

    os.environ["AIRFLOW_CONN_BENCH_KAFKA"] = json.dumps({"conn_type": "kafka", "extra": {
        **config["connection"], "group.id": config["group"], "auto.offset.reset": "earliest",
        "enable.auto.commit": "false", "session.timeout.ms": 6000, "max.poll.interval.ms": 10000}})
    os.environ.setdefault("AIRFLOW_HOME", str(Path(config["work"]) / "airflow"))
    from airflow.providers.apache.kafka.operators.consume import ConsumeFromTopicOperator

    first: list[float] = []
    Path(config["work"]).mkdir(parents=True, exist_ok=True)
    with open(Path(config["work"]) / "operator.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)

        def timed_append(message, writer):
            if not first:
                first.append(time.perf_counter())
            append_row(message, writer)

        operator = ConsumeFromTopicOperator(
            task_id="consume", topics=[TOPIC], kafka_config_id="bench_kafka", apply_function=timed_append,
            apply_function_kwargs={"writer": writer}, max_messages=config["count"], max_batch_size=min(1000, config["count"]),
            poll_timeout=30, commit_cadence="end_of_operator")
        started = time.perf_counter()
        operator.execute({})
        ended = time.perf_counter()
    count = config["count"]
    return {"events": count, "seconds": ended - started, "events_per_s": count / (ended - started),
            "loop_events_per_s": count / (ended - first[0]), "join_s": first[0] - started}


def peak_rss_mb() -> float:
    """This process's own peak resident memory (VmHWM): getrusage's ru_maxrss carries a parent's peak across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


CHILDREN = {"consume": child_consume, "operator": child_operator}

if __name__ == "__main__":
    main()
