"""Replay of real Debezium 3.1.1 events for every type of issue 9 item 3, against what PostgreSQL's COPY wrote.

The fixtures (tests/fixtures/types2, made by its capture.py on the local stack) hold, per IntervalStyle and
lc_monetary, every record of two topics exactly as the JsonConverter wrote them: ``types2`` (supported
types: snapshot reads, inserts, updates with an unchanged-TOAST array, deletes, and a TRUNCATE in the
``postgres`` scenario) and ``refused`` (types Debezium does not deliver faithfully). Applying the decoded
``types2`` events in the simplest correct way must give COPY's bytes; the ``refused`` ones show the loss.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import pytest

from cdc_pipeline.pgtext.copy_csv import format_rows
from cdc_pipeline.debezium.events import UNAVAILABLE_VALUE, ChangeEvent, decode_message
from cdc_pipeline.errors import EventDecodeError, UnsupportedTypeError
from cdc_pipeline.pgtext.context import RenderContext
from cdc_pipeline.pgtext.datetimes import US_PER_DAY, days_from_civil
from cdc_pipeline.pgtext.types import converter_for, unsupported_columns
from cdc_pipeline.source.catalog import TableDescription

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "types2"
FAITHFUL = ["postgres", "iso_8601", "postgres_verbose"]
SCENARIOS = FAITHFUL + ["sql_standard"]


def _records(scenario: str, table: str) -> list[dict]:
    with gzip.open(FIXTURES / f"debezium-3.1.1-{scenario}-events.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [r for r in map(json.loads, handle) if r["topic"].endswith(f".public.{table}")]


def _description(scenario: str, table: str) -> TableDescription:
    raw = json.loads((FIXTURES / f"{scenario}-descriptions.json").read_text())
    return TableDescription.from_json(raw[table])


def _context(scenario: str) -> RenderContext:
    return RenderContext.from_description(_description(scenario, "types2"))


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8")


def _decode(record: dict, context: RenderContext) -> ChangeEvent | None:
    return decode_message(_bytes(record["key"]), _bytes(record["value"]), context)


def _apply(events: list[tuple[int, int, ChangeEvent]], table: dict) -> None:
    """Per key, the latest position wins; the TOAST placeholder keeps the old value; delete and TRUNCATE remove."""
    for _, _, event in events:
        if event.op == "t":
            table.clear()
        elif event.op == "d":
            table.pop(event.key, None)
        else:
            previous = table.get(event.key)
            values = list(event.values)
            for index, value in enumerate(values):
                if value == UNAVAILABLE_VALUE:
                    assert previous is not None, f"placeholder without a previous row for key {event.key}"
                    values[index] = previous[index]
            table[event.key] = tuple(values)


def _copy_bytes(columns: tuple[str, ...], table: dict) -> bytes:
    rows = [table[key] for key in sorted(table, key=lambda k: int(k[0]))]
    return format_rows(columns, rows).encode("utf-8")


def _decoded(scenario: str) -> list[tuple[int, int, ChangeEvent]]:
    context = _context(scenario)
    decoded = []
    for record in _records(scenario, "types2"):
        event = _decode(record, context)
        if event is not None:
            decoded.append((event.lsn, record["partition"], record["offset"], event))
    decoded.sort(key=lambda item: item[:3])
    return [(lsn, partition, event) for lsn, partition, _, event in decoded]


@pytest.mark.parametrize("scenario", FAITHFUL)
def test_applying_all_events_reproduces_postgres_copy_bytes(scenario):
    events = _decoded(scenario)
    table: dict = {}
    truncate_at = next((i for i, (_, _, e) in enumerate(events) if e.op == "t"), len(events))
    columns = events[0][2].columns
    _apply(events[:truncate_at], table)
    if truncate_at < len(events):
        before = (FIXTURES / f"{scenario}-types2-before-truncate-copy.csv").read_bytes()
        assert _copy_bytes(columns, table) == before
        _apply(events[truncate_at:], table)
    assert _copy_bytes(columns, table) == (FIXTURES / f"{scenario}-types2-copy.csv").read_bytes()


def test_the_capture_holds_every_kind_of_event():
    events = [e for _, _, e in _decoded("postgres")]
    ops = {op: sum(1 for e in events if e.op == op) for op in "rcudt"}
    assert ops["r"] >= 30 and ops["c"] >= 30 and ops["u"] >= 20 and ops["d"] >= 5 and ops["t"] == 1
    assert any(UNAVAILABLE_VALUE in e.values for e in events if e.op == "u")
    assert {e.snapshot for e in events if e.op == "r"} <= {
        "first", "true", "last", "first_in_data_collection", "last_in_data_collection"}
    assert all(e.snapshot is None for e in events if e.op != "r")


def test_truncate_event_as_debezium_sends_it():
    truncate = next(e for _, _, e in _decoded("postgres") if e.op == "t")
    assert (truncate.columns, truncate.values, truncate.key, truncate.key_columns) == ((), (), (), ())
    assert (truncate.schema, truncate.table, truncate.snapshot) == ("public", "types2", None)
    assert truncate.lsn > 0 and truncate.txid is not None
    assert [column[0] for column in truncate.signature][:2] == ["k", "iv"]


@pytest.mark.parametrize("scenario", FAITHFUL)
def test_snapshot_reads_and_streamed_changes_have_one_signature(scenario):
    # Debezium describes an unconstrained numeric differently in the two (length 0 / 131089): not a change.
    assert len({e.signature for _, _, e in _decoded(scenario)}) == 1


@pytest.mark.parametrize("scenario", FAITHFUL)
def test_the_catalog_check_accepts_the_supported_table(scenario):
    assert unsupported_columns(_description(scenario, "types2")) == []


def test_sql_standard_intervals_are_refused_and_would_be_wrong():
    description = _description("sql_standard", "types2")
    refused = unsupported_columns(description)
    assert [m.split(" ")[0] for m in refused] == ["public.types2.iv", "public.types2.iv3", "public.types2.div"]
    record = next(r for r in _records("sql_standard", "types2") if r["value"] is not None)
    with pytest.raises(UnsupportedTypeError, match="IntervalStyle 'sql_standard'"):
        _decode(record, _context("sql_standard"))
    # Why: pgjdbc misreads sql_standard text, e.g. '1-2' (1 year 2 months) arrives as zero.
    copy_lines = (FIXTURES / "sql_standard-types2-copy.csv").read_text().splitlines()
    assert any(",+1-2 +3 +4:05:06.78," in line or ",1-2," in line or "178000000-0" in line for line in copy_lines)
    delivered = {orjson.loads(r["value"])["payload"]["after"]["iv"] for r in _records("sql_standard", "types2")
                 if r["value"] and orjson.loads(r["value"])["payload"]["after"]}
    assert "P178000000Y0M0DT0H0M0S" not in delivered and "P0Y0M0DT0H0M0S" in delivered


# ---------------------------------------------------------------------------------------------- refused

def _refused_rows(scenario: str = "postgres") -> dict[tuple[str, int], dict]:
    """(op, k) → the row Debezium delivered (raw JSON values) for the refused table."""
    rows = {}
    for record in _records(scenario, "refused"):
        payload = orjson.loads(record["value"])["payload"]
        rows[(payload["op"], payload["after"]["k"])] = payload["after"]
    return rows


def _refused_copy(scenario: str = "postgres") -> dict[int, list[str]]:
    import csv
    with open(FIXTURES / f"{scenario}-refused-copy.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return {int(row["k"]): row for row in reader}


def test_the_catalog_check_refuses_every_unfaithful_column():
    refused = unsupported_columns(_description("postgres", "refused"))
    assert [m.split(" ")[0].split(".")[-1] for m in refused] == [
        "vb", "ttz", "a_num", "a_enum", "a_date", "a_ts", "a_time"]


def test_the_decoder_refuses_every_unfaithful_field():
    record = _records("postgres", "refused")[0]
    schema = orjson.loads(record["value"])["schema"]
    fields = next(f for f in schema["fields"] if f["field"] == "after")["fields"]
    context = RenderContext.from_description(_description("postgres", "refused"))
    refused = []
    for field in fields:
        try:
            converter_for(field, "refused", context)
        except UnsupportedTypeError:
            refused.append(field["field"])
    assert refused == ["vb", "ttz", "a_num", "a_enum", "a_date", "a_ts", "a_time"]


def test_the_refused_types_lose_what_copy_prints():
    rows, copy = _refused_rows(), _refused_copy()
    first, second = rows[("r", 1)], rows[("r", 2)]
    # varbit: B'0001' and B'1' arrive alike
    assert (copy[1]["vb"], copy[2]["vb"]) == ("0001", "1") and first["vb"] == second["vb"]
    # timetz: shifted to UTC, the +05:30 offset is gone
    assert copy[1]["ttz"] == "04:05:06+05:30" and first["ttz"].endswith("Z")
    # numeric[] holding NaN and enum[] holding NULL arrive as NULL arrays
    assert (copy[1]["a_num"], copy[1]["a_enum"]) == ("{1.5,NaN}", "{sad,NULL}")
    assert first["a_num"] is None and first["a_enum"] is None
    # date[]: 0044-03-15 BC and 0044-03-15 arrive alike
    assert copy[1]["a_date"] != copy[2]["a_date"] and first["a_date"] == second["a_date"]
    # timestamp[]: 0001-01-01 arrives two days early (Julian calendar)
    assert first["a_ts"] == [(days_from_civil(1, 1, 1) - 2) * US_PER_DAY]
    # time[]: 24:00:00 and 00:00:00.000001 arrive as 0
    assert copy[1]["a_time"] == "{24:00:00,00:00:00.000001}" and first["a_time"] == [0, 0]


def test_what_stays_undetectable_or_loud():
    rows, copy = _refused_rows(), _refused_copy()
    context = RenderContext.from_description(_description("postgres", "refused"))
    # A two-dimensional int[] arrives like a one-dimensional array of NULLs: a documented limit.
    assert copy[1]["a_i2d"] == "{{1,2},{3,4}}" and rows[("r", 1)]["a_i2d"] == rows[("r", 2)]["a_i2d"] == [None, None]
    # '-infinity' in a timestamptz[] arrives as a year past PostgreSQL's range: refused loudly, per value.
    record = next(r for r in _records("postgres", "refused") if orjson.loads(r["value"])["payload"]["after"]["k"] == 1)
    value = orjson.loads(record["value"])["payload"]["after"]["a_tstz"]
    field = next(f for f in orjson.loads(record["value"])["schema"]["fields"][1]["fields"] if f["field"] == "a_tstz")
    with pytest.raises(ValueError, match="outside PostgreSQL's timestamp range"):
        converter_for(field, "refused", context)(value)
    # money of 2^46 or more read by the snapshot comes through a double: refused; streamed, it is exact.
    money = next(f for f in orjson.loads(record["value"])["schema"]["fields"][1]["fields"] if f["field"] == "m")
    convert = converter_for(money, "refused", context)
    with pytest.raises(ValueError, match="2\\^46"):
        convert(rows[("r", 1)]["m"])
    assert convert(rows[("c", 3)]["m"]) == copy[3]["m"] == "$92,233,720,368,547,758.07"
    # timestamp before 1582-10-15: the snapshot read is shifted by the Julian calendar, the streamed change is not.
    ts = next(f for f in orjson.loads(record["value"])["schema"]["fields"][1]["fields"] if f["field"] == "ts")
    ts_convert = converter_for(ts, "refused", context)
    assert ts_convert(rows[("c", 3)]["ts"]) == copy[3]["ts"] == "1000-01-01 10:00:00"
    assert ts_convert(rows[("r", 1)]["ts"]) == "1000-01-06 10:00:00" != copy[1]["ts"]


def test_a_refused_value_is_a_decode_error_naming_the_column():
    context = RenderContext.from_description(_description("postgres", "refused"))
    supported_only = {"vb", "ttz", "a_num", "a_enum", "a_date", "a_ts", "a_time"}
    record = next(r for r in _records("postgres", "refused") if orjson.loads(r["value"])["payload"]["op"] == "r"
                  and orjson.loads(r["value"])["payload"]["after"]["k"] == 1)
    document = orjson.loads(record["value"])
    for part in ("before", "after"):
        struct = next(f for f in document["schema"]["fields"] if f["field"] == part)
        struct["fields"] = [f for f in struct["fields"] if f["field"] not in supported_only]
    document["payload"]["after"] = {k: v for k, v in document["payload"]["after"].items() if k not in supported_only}
    with pytest.raises(EventDecodeError, match="column 'a_tstz'"):
        decode_message(_bytes(record["key"]), orjson.dumps(document), context)
