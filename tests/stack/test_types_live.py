"""The new types on the live chain: PostgreSQL 15 → Debezium → broker → decode_message → COPY text.

A table holding every type of issue 9 item 3 (tests/fixtures/types2/schema.sql) in a database of its own,
with IntervalStyle and lc_monetary set on it; a connector built from the shipped connector file; snapshot
reads, then inserts, updates (one leaving a TOASTed array unchanged), deletes and a TRUNCATE. The topic's
records are decoded with a RenderContext read from the catalog, applied per key, formatted with
copy_csv.format_row ordered by key, and compared with COPY byte for byte. The catalog check is run on the
real descriptions of that table and of one holding the refused types.
"""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import httpx
import psycopg
import pytest

from cdc_pipeline.pgtext.copy_csv import format_row
from cdc_pipeline.debezium.events import UNAVAILABLE_VALUE, ChangeEvent, decode_message
from cdc_pipeline.kafka_connect import KafkaConnectClient
from cdc_pipeline.pgtext.context import RenderContext
from cdc_pipeline.pgtext.types import unsupported_columns
from cdc_pipeline.source.catalog import read_description
from tests.stack.peek import TopicRecord, copy_table, wait_for_records

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "types2"
DATABASE = "types_live"
CONNECTOR = "types_live"
PREFIX = "typeslive"


def _load_rows():
    spec = importlib.util.spec_from_file_location("types2_rows", FIXTURES / "rows.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ROWS = _load_rows()


class LiveSource:
    def __init__(self, settings) -> None:
        self.settings = settings

    def connect(self, dbname: str = DATABASE, autocommit: bool = True) -> psycopg.Connection:
        s = self.settings
        return psycopg.connect(host=s.pg_host, port=s.pg_port, user=s.pg_user, password=s.pg_password,
                               dbname=dbname, autocommit=autocommit)

    def execute(self, statement: str) -> int:
        with self.connect() as conn:
            return conn.execute(statement).rowcount

    def copy(self, table: str) -> bytes:
        with self.connect(autocommit=False) as conn:
            return copy_table(conn, table, "k")


def _insert(table: str, row: dict[str, str]) -> str:
    return f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(row.values())})"


def _wait_for_records(settings, topic: str, count: int) -> list[TopicRecord]:
    return wait_for_records(settings.kafka_bootstrap, topic, count, group="types-live")


def _replay(records: list[TopicRecord], context: RenderContext) -> tuple[tuple[str, ...], dict]:
    events: list[tuple[int, int, int, ChangeEvent]] = []
    for record in records:
        event = decode_message(record.key, record.value, context)
        if event is not None:
            events.append((event.lsn, record.partition, record.offset, event))
    events.sort(key=lambda item: item[:3])
    table: dict = {}
    columns: tuple[str, ...] = ()
    for _, _, _, event in events:
        if event.op == "t":
            table.clear()
            continue
        columns = event.columns
        if event.op == "d":
            table.pop(event.key, None)
            continue
        previous = table.get(event.key)
        values = [previous[i] if v == UNAVAILABLE_VALUE and previous else v for i, v in enumerate(event.values)]
        table[event.key] = tuple(values)
    return columns, table


def _as_copy(columns: tuple[str, ...], table: dict) -> bytes:
    lines = [format_row(list(columns))] + [format_row(table[key]) for key in sorted(table, key=lambda k: int(k[0]))]
    return "".join(lines).encode("utf-8")


@pytest.fixture(scope="module")
def live_types(stack_services):
    settings = stack_services.settings
    source = LiveSource(settings)
    with source.connect("postgres") as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        conn.execute(f"CREATE DATABASE {DATABASE}")
        # Not PostgreSQL's defaults, so a decoder that ignored the context would fail.
        conn.execute(f"ALTER DATABASE {DATABASE} SET IntervalStyle = 'iso_8601'")
        conn.execute(f"ALTER DATABASE {DATABASE} SET lc_monetary = 'C'")
    source.execute((FIXTURES / "schema.sql").read_text())
    config = json.loads((REPO / "include" / "connectors" / "clientes.json").read_text())["config"]
    config.update({
        "table.include.list": "public.types2", "topic.prefix": PREFIX, "slot.name": "slot_types_live",
        "publication.name": "pub_types_live", "database.hostname": settings.pg_host,
        "database.port": str(settings.pg_port), "database.user": settings.pg_user,
        "database.password": settings.pg_password, "database.dbname": DATABASE,
        "skipped.operations": "none",  # TRUNCATE events (the shipped file sets it too)
        "publication.autocreate.mode": "filtered",  # Debezium, as the administrator, makes its own publication
    })
    with KafkaConnectClient(settings.connect_url) as connect:
        try:
            yield source, connect, config
        finally:
            # Stop capturing so the rest of the session's stack does not carry this connector.
            httpx.delete(f"{settings.connect_url}/connectors/{CONNECTOR}", timeout=30)


def test_new_types_decode_to_copy_bytes_on_the_live_chain(live_types, stack_services):
    source, connect, config = live_types
    settings = stack_services.settings
    rng = random.Random(20261201)
    snapshot = list(ROWS.SNAPSHOT_EDGE_ROWS) + [ROWS.random_row(rng, k, ROWS.MONEY_SNAPSHOT) for k in range(10, 30)]
    for row in snapshot:
        source.execute(_insert("types2", row))
    with source.connect() as conn:
        description = read_description(conn, "public", "types2")
    assert unsupported_columns(description) == []
    context = RenderContext.from_description(description)
    assert (context.interval_style, context.lc_monetary) == ("iso_8601", "C")

    connect.put_config(CONNECTOR, config)
    connect.wait_until_running(CONNECTOR, timeout=90)
    topic = f"{PREFIX}.public.types2"
    expected = len(snapshot)
    columns, table = _replay(_wait_for_records(settings, topic, expected), context)
    assert _as_copy(columns, table) == source.copy("types2")

    stream = list(ROWS.STREAM_EDGE_ROWS) + [ROWS.random_row(rng, k, ROWS.MONEY_STREAM) for k in range(2000, 2020)]
    for row in stream:
        expected += source.execute(_insert("types2", row))
    keys = [int(r["k"]) for r in snapshot + stream]
    for key in rng.sample(keys, 15):
        fresh = ROWS.random_row(rng, key, ROWS.MONEY_STREAM)
        changed = rng.sample([c for c in fresh if c != "k"], 5)
        expected += source.execute(f"UPDATE types2 SET {', '.join(f'{c} = {fresh[c]}' for c in changed)} WHERE k = {key}")
    expected += source.execute(_insert("types2", {"k": "3000", "a_text": ROWS.BIG_ARRAY}))
    expected += source.execute("UPDATE types2 SET iv = 'P1D'::interval WHERE k = 3000")
    for key in rng.sample(keys, 4):
        expected += 2 * source.execute(f"DELETE FROM types2 WHERE k = {key}")
    records = _wait_for_records(settings, topic, expected)
    events = [decode_message(record.key, record.value, context) for record in records]
    assert any(e is not None and e.op == "u" and UNAVAILABLE_VALUE in e.values for e in events)
    columns, table = _replay(records, context)
    assert _as_copy(columns, table) == source.copy("types2")

    source.execute("TRUNCATE types2")
    expected += 1
    for key in (5000, 5001):
        expected += source.execute(_insert("types2", ROWS.random_row(rng, key, ROWS.MONEY_STREAM)))
    columns, table = _replay(_wait_for_records(settings, topic, expected), context)
    assert _as_copy(columns, table) == source.copy("types2")
    assert sorted(int(k[0]) for k in table) == [5000, 5001]


def test_catalog_check_on_real_descriptions(live_types):
    source, _, _ = live_types
    with source.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS refused_live")
        conn.execute("CREATE TABLE refused_live (k int PRIMARY KEY, ok text, vb varbit, ttz timetz, "
                     "a_num numeric[], a_enum mood[], a_money money[], pt point, r int4range, dvb dbit3)")
        description = read_description(conn, "public", "refused_live")
        conn.execute("SET IntervalStyle = 'sql_standard'")
        conn.execute("SET lc_monetary = 'C'")
        types2 = read_description(conn, "public", "types2")
    refused = unsupported_columns(description)
    assert [m.split(" ")[0] for m in refused] == [f"public.refused_live.{c}" for c in
                                                  ("vb", "ttz", "a_num", "a_enum", "a_money", "pt", "r")]
    assert all("leave public.refused_live out of table.include.list" in message for message in refused)
    # The session's IntervalStyle is what the description reports: under sql_standard intervals are refused.
    assert [m.split(" ")[0] for m in unsupported_columns(types2)] == [
        "public.types2.iv", "public.types2.iv3", "public.types2.div"]
