"""Throughput of the hot paths: decode_message on the real sample events, COPY CSV write/read on 1M rows.

Run: ``.venv/bin/python benchmarks/bench_decode.py [rows]``. Prints figures; asserts nothing.
"""

from __future__ import annotations

import gzip
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cdc_pipeline.debezium.events import decode_message  # noqa: E402
from cdc_pipeline.copy_csv import format_dataframe, read_copy_csv, write_rows  # noqa: E402

SAMPLES = ROOT / "tests" / "fixtures" / "samples" / "debezium-3.1.1-acc_types-events.jsonl.gz"


def bench_decode(rounds: int = 20) -> None:
    with gzip.open(SAMPLES, "rb") as handle:
        records = [orjson.loads(line) for line in handle]
    messages = [
        (orjson.dumps(r["key"]) if r["key"] is not None else None, orjson.dumps(r["value"]) if r["value"] else None)
        for r in records
    ]
    sizes = [len(value) for _, value in messages if value is not None]
    for key, value in messages:  # warm the schema cache, as a long-running consumer would be
        decode_message(key, value)
    start = time.perf_counter()
    for _ in range(rounds):
        for key, value in messages:
            decode_message(key, value)
    elapsed = time.perf_counter() - start
    count = rounds * len(messages)
    print(f"decode_message: {count / elapsed:,.0f} events/s "
          f"({len(messages)} sample records x {rounds}, mean value {sum(sizes) / len(sizes):,.0f} B, "
          f"{elapsed / count * 1e6:.1f} us/event)")
    start = time.perf_counter()
    for _ in range(rounds):
        for _, value in messages:
            if value is not None:
                orjson.loads(value)
    elapsed = time.perf_counter() - start
    print(f"  for scale, orjson.loads of the whole value: {rounds * len(sizes) / elapsed:,.0f} msg/s")


def _synthetic(rows: int) -> tuple[list[str], list[list[str | None]]]:
    rng = random.Random(1)
    words = ["plain", "a,b", 'say "hi"', "line1\nline2", "", "ñandú", "x" * 40]
    header = ["id", "name", "amount", "created", "note"]
    data = []
    for i in range(rows):
        data.append([
            str(i),
            rng.choice(words),
            None if i % 7 == 0 else f"{rng.randint(0, 10**6)}.{rng.randint(0, 99):02d}",
            f"2026-11-{1 + i % 28:02d} 12:{i % 60:02d}:00+00",
            None if i % 3 else rng.choice(words),
        ])
    return header, data


def bench_copy_csv(rows: int) -> None:
    header, data = _synthetic(rows)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "destiny.csv")
        start = time.perf_counter()
        with open(path, "w", encoding="utf-8", newline="") as handle:
            write_rows(handle, header, data)
        elapsed = time.perf_counter() - start
        size = os.path.getsize(path)
        print(f"copy_csv.write_rows: {rows / elapsed:,.0f} rows/s ({rows:,} rows x 5 cols, {size / 1e6:.1f} MB, {elapsed:.2f} s)")
        start = time.perf_counter()
        frame = read_copy_csv(path)
        elapsed = time.perf_counter() - start
        print(f"copy_csv.read_copy_csv: {rows / elapsed:,.0f} rows/s ({elapsed:.2f} s)")
        start = time.perf_counter()
        text = format_dataframe(frame)
        elapsed = time.perf_counter() - start
        print(f"copy_csv.format_dataframe: {rows / elapsed:,.0f} rows/s ({elapsed:.2f} s)")
        with open(path, encoding="utf-8", newline="") as handle:
            same = handle.read() == text
        print(f"  round trip write -> read -> format_dataframe identical: {same}")


if __name__ == "__main__":
    bench_decode()
    bench_copy_csv(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
