"""Throughput of the hot paths: decode_message and decode_csv (what consume_batch runs) on the real sample events,
COPY CSV write/read on 1M rows.

Run: ``.venv/bin/python benchmarks/bench_decode.py [rows] [--baseline PATH]``, where PATH is a decoder module from
another checkout that defines ``decode_message`` (e.g. its ``cdc_pipeline/debezium/events.py``). Prints figures and,
last, one JSON object; asserts nothing. Decode speed is also given as a ratio to ``orjson.loads`` of the same
messages, measured in the same run (the machine is shared and noisy: compare ratios, not absolute rates).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cdc_pipeline.pgtext.copy_csv import format_dataframe, read_copy_csv, write_rows  # noqa: E402
from cdc_pipeline.debezium.events import decode_csv, decode_message  # noqa: E402
from cdc_pipeline.pgtext.context import RenderContext  # noqa: E402
from cdc_pipeline.source.catalog import TableDescription  # noqa: E402

SAMPLES = ROOT / "tests" / "fixtures" / "samples" / "debezium-3.1.1-acc_types-events.jsonl.gz"
TYPES2 = ROOT / "tests" / "fixtures" / "types2"


def _messages(path: Path, raw_text: bool) -> list[tuple[bytes | None, bytes | None]]:
    """The records of a fixture as the broker would hand them over: the JsonConverter's compact bytes."""
    with gzip.open(path, "rb") as handle:
        records = [orjson.loads(line) for line in handle]
    if raw_text:  # tests/fixtures/types2 keeps the exact text the JsonConverter wrote
        return [(None if r["key"] is None else r["key"].encode(), None if r["value"] is None else r["value"].encode())
                for r in records if r["topic"].endswith(".types2")]
    return [(None if r["key"] is None else orjson.dumps(r["key"]), None if r["value"] is None else orjson.dumps(r["value"]))
            for r in records]


def _best_rate(decode, messages, rounds: int, repeats: int = 5) -> float:
    """Events per second, best of ``repeats`` (the machine is shared: the best run is the least disturbed)."""
    for key, value in messages:  # warm the schema cache, as a long-running consumer would be
        decode(key, value)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(rounds):
            for key, value in messages:
                decode(key, value)
        best = max(best, rounds * len(messages) / (time.perf_counter() - start))
    return best


def bench_decode(rounds: int = 10, baseline: str | None = None) -> dict:
    """decode_message on the acc_types sample and on the types2 capture, against orjson.loads of the same
    values (the floor), and optionally against a decoder module from another checkout that defines ``decode_message``
    (``--baseline path/to/cdc_pipeline/debezium/events.py``), loaded by path: its own ``cdc_pipeline`` imports
    resolve to this checkout."""
    figures: dict[str, float] = {}
    types2_context = RenderContext.from_description(TableDescription.from_json(
        orjson.loads((TYPES2 / "postgres-descriptions.json").read_bytes())["types2"]))
    for label, messages, decode in (
        ("acc_types", _messages(SAMPLES, raw_text=False), decode_message),
        ("types2", _messages(TYPES2 / "debezium-3.1.1-postgres-events.jsonl.gz", raw_text=True),
         lambda k, v: decode_message(k, v, types2_context)),
    ):
        values = [(None, v) for _, v in messages if v is not None]
        rate = _best_rate(decode, messages, rounds)
        floor = _best_rate(lambda _k, v: orjson.loads(v), values, rounds)
        sizes = [len(v) for _, v in values]
        print(f"decode_message [{label}]: {rate:,.0f} events/s ({len(messages)} records x {rounds}, mean value "
              f"{sum(sizes) / len(sizes):,.0f} B); orjson.loads alone {floor:,.0f} msg/s; ratio {rate / floor:.2f}")
        figures[f"{label}_events_per_s"] = round(rate)
        figures[f"{label}_ratio_to_orjson"] = round(rate / floor, 3)
        # What consume_batch runs: the same decoding, the row straight to buffer.csv's fields.
        context = types2_context if label == "types2" else RenderContext()
        csv_rate = _best_rate(lambda k, v, c=context: decode_csv(k, v, c), messages, rounds)
        print(f"decode_csv [{label}]: {csv_rate:,.0f} events/s; ratio to orjson.loads {csv_rate / floor:.2f}")
        figures[f"{label}_csv_events_per_s"] = round(csv_rate)
        figures[f"{label}_csv_ratio_to_orjson"] = round(csv_rate / floor, 3)
        if baseline and label == "acc_types":
            old = _load_module(baseline).decode_message
            old_rate = _best_rate(old, messages, rounds)
            print(f"  baseline {baseline}: {old_rate:,.0f} events/s; ratio new/baseline {rate / old_rate:.2f}")
            figures["acc_types_baseline_events_per_s"] = round(old_rate)
            figures["acc_types_new_over_baseline"] = round(rate / old_rate, 3)
    return figures


def _load_module(path: str):
    spec = importlib.util.spec_from_file_location("baseline_decoder", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


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


def bench_copy_csv(rows: int) -> dict:
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
    return {"copy_csv_rows": rows, "copy_csv_round_trip_identical": same}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rows", nargs="?", type=int, default=1_000_000, help="rows for the COPY CSV part (0: skip)")
    parser.add_argument("--baseline", help="a decoder module from another checkout that defines decode_message "
                                           "(e.g. cdc_pipeline/debezium/events.py), measured beside this one")
    args = parser.parse_args()
    figures = bench_decode(baseline=args.baseline)
    if args.rows:
        figures.update(bench_copy_csv(args.rows))
    print(json.dumps(figures))
