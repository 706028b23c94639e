"""The decoder and the COPY writer against real Debezium 3.1.1 events and what PostgreSQL's COPY wrote.

The fixtures are copies of ``../shared/samples`` (see their README): every record of topic
``acc2.public.acc_types`` and ``COPY (SELECT * FROM acc_types ORDER BY k1, k2) TO STDOUT WITH (FORMAT csv,
HEADER)`` after the last event. Applying the events in the simplest correct way must give those bytes.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import orjson
import pytest

from cdc_pipeline.pgtext.copy_csv import format_rows
from cdc_pipeline.debezium.events import UNAVAILABLE_VALUE, ChangeEvent, decode_message

SAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "samples"
EVENTS = SAMPLES / "debezium-3.1.1-acc_types-events.jsonl.gz"
EXPECTED = SAMPLES / "acc_types-expected-copy.csv"


def _records() -> list[dict]:
    with gzip.open(EVENTS, "rb") as handle:
        return [orjson.loads(line) for line in handle]


def _as_kafka_bytes(part: dict | None, compact: bool = True) -> bytes | None:
    """The file holds the parsed key/value; the JsonConverter wrote them as compact JSON."""
    if part is None:
        return None
    return orjson.dumps(part) if compact else json.dumps(part).encode()


def _decoded(compact: bool = True) -> list[tuple[int, int, int, ChangeEvent | None]]:
    out = []
    for record in _records():
        event = decode_message(_as_kafka_bytes(record["key"], compact), _as_kafka_bytes(record["value"], compact))
        out.append((record["partition"], record["offset"], record["timestamp"], event))
    return out


def _apply(decoded: list[tuple[int, int, int, ChangeEvent | None]]) -> tuple[tuple[str, ...], dict]:
    """Per key, latest source position wins; the TOAST placeholder keeps the old value; delete removes."""
    events = sorted(((e.lsn, p, o, e) for p, o, _, e in decoded if e is not None), key=lambda t: t[:3])
    table: dict[tuple, tuple] = {}
    columns: tuple[str, ...] = ()
    for _, _, _, event in events:
        columns = event.columns
        if event.op == "d":
            table.pop(event.key, None)
            continue
        previous = table.get(event.key)
        values = list(event.values)
        for index, value in enumerate(values):
            if value == UNAVAILABLE_VALUE:
                assert previous is not None, f"placeholder without a previous row for key {event.key}"
                values[index] = previous[index]
        table[event.key] = tuple(values)
    return columns, table


@pytest.mark.parametrize("compact", [True, False], ids=["jsonconverter-bytes", "spaced-json"])
def test_applying_all_events_reproduces_postgres_copy_bytes(compact):
    columns, table = _apply(_decoded(compact))
    # ORDER BY k1, k2: k1 is an integer; k2 holds 'a', 'b,c', 'ñ', which sort the same in every collation.
    ordered = [table[key] for key in sorted(table, key=lambda k: (int(k[0]), k[1]))]
    assert format_rows(columns, ordered).encode("utf-8") == EXPECTED.read_bytes()


def test_event_counts_match_the_capture():
    decoded = _decoded()
    ops = Counter(event.op if event else "tombstone" for _, _, _, event in decoded)
    assert ops == {"r": 367, "c": 85, "u": 101, "d": 29, "tombstone": 29}
    placeholders = sum(
        1 for _, _, _, e in decoded if e is not None and e.op == "u" and UNAVAILABLE_VALUE in e.values
    )
    assert placeholders == 30


def test_every_event_names_table_and_composite_key():
    for _, _, _, event in _decoded():
        if event is None:
            continue
        assert (event.schema, event.table) == ("public", "acc_types")
        assert event.key_columns == ("k1", "k2")
        assert event.columns[:2] == ("k1", "k2") and len(event.columns) == 21
        assert (event.snapshot is not None) == (event.op == "r")
        assert event.lsn > 0 and event.source_ts_ms > 1_700_000_000_000


def test_first_snapshot_row_decodes_to_postgres_text():
    first = _decoded()[0][3]
    # Row 703268/'a' of the capture: values checked against PostgreSQL's output for the same types.
    values = dict(zip(first.columns, first.values))
    assert values["c_real"] == "1e-07"
    assert values["c_double"] == "42"
    assert values["c_date"] == "0001-01-01"
    assert values["c_time"] == "12:30:00.5"
    assert values["c_ts"] == "2001-08-24 06:17:13.123456"
    assert values["c_bytea"] == "\\xce03"
    assert values["c_bool"] == "f"
    assert values["c_text"] is None
    assert values["c_varchar"] == "trail "
