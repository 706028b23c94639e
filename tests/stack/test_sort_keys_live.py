"""The state store's sort keys order rows exactly as the real PostgreSQL's ORDER BY does (C collation).

For every key type the store encodes, and for composite keys, random values (and the edge values each type
has) go into a table with that primary key; ``COPY (SELECT ... ORDER BY key) TO STDOUT WITH (FORMAT csv)``
(DateStyle ISO, TimeZone UTC) answers them in PostgreSQL's order and in destiny.csv's text; their encodings
must then be strictly ascending: the same order, and no two different keys equal.
"""

from __future__ import annotations

import random
import struct
import uuid

import psycopg
import pytest

from cdc_pipeline.pgtext.copy_csv import read_copy_csv
from cdc_pipeline.state.sort_keys import KeyEncoder
from tests.stack.peek import copy_table

pytestmark = pytest.mark.stack

COUNT = 400
ALPHABET = ["a", "b", "z", "A", "Z", " ", ",", '"', "\\", "\n", "\t", "\x01", "é", "ñ", "ß", "€", "\u07ff", "\uffff", "😀", "0", "9"]


def text_value(rng: random.Random, longest: int = 8) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, longest)))


def numeric_value(rng: random.Random) -> str:
    digits = str(rng.randrange(1, 10 ** rng.randrange(1, 30)))
    point = rng.randrange(0, len(digits) + 1)
    text = (digits[:point] or "0") + "." + (digits[point:] or "0") + "0" * rng.randrange(3)
    return ("-" if rng.random() < 0.5 else "") + text


def float_value(rng: random.Random, single: bool) -> str:
    if single:
        return repr(struct.unpack(">f", struct.pack(">I", rng.getrandbits(32)))[0])
    return repr(struct.unpack(">d", struct.pack(">Q", rng.getrandbits(64)))[0])


def timestamp_value(rng: random.Random, zone: bool) -> str:
    year = rng.choice([rng.randrange(1, 4714), rng.randrange(1, 10000), rng.randrange(10000, 294000)])
    bc = year <= 4713 and rng.random() < 0.3
    text = (f"{year:04d}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d} "
            f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(10**6):06d}")
    if zone:
        text += rng.choice(["+00", "+05:30", "-03", "+14"])
    return text + (" BC" if bc else "")


def date_value(rng: random.Random) -> str:
    year = rng.choice([rng.randrange(1, 4714), rng.randrange(1, 10000), rng.randrange(10000, 5874000)])
    bc = year <= 4713 and rng.random() < 0.3
    return f"{year:04d}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}" + (" BC" if bc else "")


# Per type: a generator of random values drawing from the generator it is given, and the type's edge values.
GENERATORS = {
    "smallint": (lambda rng: str(rng.randint(-32768, 32767)), ["-32768", "32767", "0", "-1", "1"]),
    "integer": (lambda rng: str(rng.randint(-2**31, 2**31 - 1)), [str(-2**31), str(2**31 - 1), "0", "-1", "1", "256", "255"]),
    "bigint": (lambda rng: str(rng.randint(-2**63, 2**63 - 1)), [str(-2**63), str(2**63 - 1), "0", "-1", "1"]),
    "numeric": (numeric_value, ["NaN", "Infinity", "-Infinity", "0", "0.000", "1", "1.0", "10", "0.1", "-0.1", "-0.12", "-0.123",
                                "1e-30", "-1e30", "99999999999999999999.99999999999999999999"]),
    "numeric(12,3)": (lambda rng: f"{rng.uniform(-1e8, 1e8):.{rng.randrange(0, 5)}f}", ["0", "-0.001", "0.001", "99999999.999"]),
    "real": (lambda rng: float_value(rng, True), ["NaN", "Infinity", "-Infinity", "0", "-0", "1.1", "1e-45", "-1e-45", "3.4028235e+38"]),
    "double precision": (lambda rng: float_value(rng, False), ["NaN", "Infinity", "-Infinity", "0", "-0", "5e-324", "-5e-324", "1.7976931348623157e+308"]),
    "text": (text_value, ["", " ", "a", "a ", "ab", "b", "é", "e\u0301", "\x01"]),
    "character varying(40)": (text_value, ["", "a", "A", "ab"]),
    "character(5)": (lambda rng: text_value(rng, 5).replace("\n", "x"), ["", "a", "a  b", "a\t", " a"]),
    "date": (date_value, ["infinity", "-infinity", "4713-01-01 BC", "0001-12-31 BC", "0001-01-01", "2000-01-01", "10000-01-01"]),
    "timestamp without time zone": (lambda rng: timestamp_value(rng, False),
                                    ["infinity", "-infinity", "4713-01-01 00:00:00 BC", "2000-01-01 00:00:00", "294276-12-31 23:59:59.999999"]),
    "timestamp with time zone": (lambda rng: timestamp_value(rng, True), ["infinity", "-infinity", "2000-01-01 00:00:00+00", "2000-01-01 02:00:00+02"]),
    "time without time zone": (lambda rng: f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(10**6):06d}",
                               ["00:00:00", "24:00:00", "23:59:59.999999", "12:00:00.5"]),
    "uuid": (lambda rng: str(uuid.UUID(bytes=rng.randbytes(16))), ["00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"]),
    "boolean": (lambda rng: rng.choice(["t", "f"]), ["t", "f"]),
    "bytea": (lambda rng: "\\x" + rng.randbytes(rng.randrange(0, 6)).hex(), ["\\x", "\\x00", "\\x0000", "\\x0001", "\\x01", "\\xff", "\\x00ff"]),
}
COMPOSITES = {
    "integer_text": ("integer", "text"),
    "text_text": ("text", "text"),
    "date_numeric": ("date", "numeric"),
    "boolean_bytea_timestamptz": ("boolean", "bytea", "timestamp with time zone"),
    "char_double": ("character(5)", "double precision"),
}


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A generator of the test's own, seeded by its name: its values do not depend on which tests ran before it
    (``--random-order`` shuffles them), and a failure repeats with the same values."""
    return random.Random(f"20261124:{request.node.name}")


@pytest.fixture(scope="module")
def conn(stack_services):
    s = stack_services.settings
    with psycopg.connect(host=s.pg_host, port=s.pg_port, user=s.pg_user, password=s.pg_password, dbname=s.pg_db,
                         autocommit=True) as connection:
        connection.execute("SET DateStyle = ISO")
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute("DROP SCHEMA IF EXISTS sort_keys CASCADE")
        connection.execute("CREATE SCHEMA sort_keys")
        yield connection
        connection.execute("DROP SCHEMA sort_keys CASCADE")


def column_type(pg_type: str) -> str:
    """Text-like columns get the C collation: the order destiny.csv promises."""
    textual = pg_type in ("text", "character varying(40)", "character(5)")
    return f'{pg_type} COLLATE "C"' if textual else pg_type


def ordered_by_postgres(conn, tmp_dir, table: str, types: tuple[str, ...], rows: list[tuple[str, ...]]) -> tuple[list[str], list[tuple[str, ...]]]:
    """Insert the rows (duplicates dropped by the key), answer the key's format_types and PostgreSQL's order."""
    names = [f"k{i}" for i in range(len(types))]
    columns = ", ".join(f"{n} {column_type(t)}" for n, t in zip(names, types))
    conn.execute(f"CREATE TABLE sort_keys.{table} ({columns}, PRIMARY KEY ({', '.join(names)}))")
    placeholders = ", ".join(f"%s::{t}" for t in types)
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO sort_keys.{table} VALUES ({placeholders}) ON CONFLICT DO NOTHING", rows)
    format_types = [r[0] for r in conn.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "ORDER BY attnum", (f"sort_keys.{table}",)).fetchall()]
    # Read back through COPY itself: its text is what destiny.csv holds (a ::text cast differs, e.g. for boolean).
    path = tmp_dir / f"{table}.csv"
    path.write_bytes(copy_table(conn, f"sort_keys.{table}", ", ".join(names)))
    frame = read_copy_csv(path)
    return format_types, [tuple(row) for row in frame.itertuples(index=False)]


def assert_strictly_ascending(format_types: list[str], ordered: list[tuple[str, ...]]) -> None:
    encoded = KeyEncoder(format_types).encode_rows(ordered)
    for (before, after), (a, b) in zip(zip(encoded, encoded[1:]), zip(ordered, ordered[1:])):
        assert before < after, f"PostgreSQL orders {a!r} before {b!r}, the encodings do not"


@pytest.mark.parametrize("pg_type", sorted(GENERATORS))
def test_one_column_keys_order_like_postgres(conn, tmp_path, rng, pg_type):
    generate, edges = GENERATORS[pg_type]
    values = [*edges, *(generate(rng) for _ in range(COUNT))]
    table = "t_" + "".join(ch if ch.isalnum() else "_" for ch in pg_type)
    format_types, ordered = ordered_by_postgres(conn, tmp_path, table, (pg_type,), [(v,) for v in values])
    assert format_types == [pg_type]
    assert len(ordered) >= min(len(values), 2)
    assert_strictly_ascending(format_types, ordered)


@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_composite_keys_order_like_postgres(conn, tmp_path, rng, name):
    types = COMPOSITES[name]
    # Few distinct first components, so that the later ones decide often.
    firsts = [GENERATORS[types[0]][0](rng) for _ in range(6)] + GENERATORS[types[0]][1][:3]
    rows = [(rng.choice(firsts), *(GENERATORS[t][0](rng) if rng.random() < 0.8 else rng.choice(GENERATORS[t][1]) for t in types[1:]))
            for _ in range(COUNT)]
    if types[:2] == ("text", "text"):
        rows += [("a", "b"), ("ab", ""), ("a", ""), ("", "a"), ("a\x01", "")]
    format_types, ordered = ordered_by_postgres(conn, tmp_path, "c_" + name, types, rows)
    assert_strictly_ascending(format_types, ordered)


def test_enum_and_domain_keys_order_like_postgres_through_the_catalog(conn, tmp_path, rng):
    """An enum whose labels are declared out of alphabetical order (one added BEFORE another), domains over
    numeric, over a domain and over the enum: the catalog's description gives each key column its order, and
    the encodings of PostgreSQL's own ORDER BY rows ascend strictly."""
    conn.execute("CREATE TYPE sort_keys.mood AS ENUM ('sad', 'ok', 'happy')")
    conn.execute("ALTER TYPE sort_keys.mood ADD VALUE 'meh' BEFORE 'ok'")  # a fractional enumsortorder
    conn.execute("CREATE DOMAIN sort_keys.price AS numeric(8,2) CHECK (VALUE > -1000)")
    conn.execute("CREATE DOMAIN sort_keys.small_price AS sort_keys.price CHECK (VALUE < 1000)")
    # A domain over an enum stops Debezium's task in the whole database (check_type_registry refuses it):
    # dropped before the test ends, so the pipelines of the other tests can start.
    conn.execute("CREATE DOMAIN sort_keys.mood_d AS sort_keys.mood")
    conn.execute("CREATE TABLE sort_keys.enum_keys (m sort_keys.mood, p sort_keys.small_price, d sort_keys.mood_d, "
                 "PRIMARY KEY (m, p, d))")
    try:
        _enum_and_domain_keys_order_like_postgres(conn, tmp_path, rng)
    finally:
        conn.execute("DROP TABLE sort_keys.enum_keys")
        conn.execute("DROP DOMAIN sort_keys.mood_d")


def _enum_and_domain_keys_order_like_postgres(conn, tmp_path, rng):
    from cdc_pipeline.source.catalog import read_description
    from cdc_pipeline.state.sort_keys import key_orders

    labels = ["sad", "meh", "ok", "happy"]
    rows = {(rng.choice(labels), f"{rng.uniform(-999, 999):.2f}", rng.choice(labels)) for _ in range(COUNT)}
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO sort_keys.enum_keys VALUES (%s, %s, %s)", sorted(rows))
    description = read_description(conn, "sort_keys", "enum_keys")
    orders = key_orders(description)
    assert [getattr(o, "labels", None) for o in orders.values()] == [tuple(labels), None, tuple(labels)]
    assert orders["p"] == "numeric(8,2)"
    path = tmp_path / "enum_keys.csv"
    path.write_bytes(copy_table(conn, "sort_keys.enum_keys", "m, p, d"))
    ordered = [tuple(row) for row in read_copy_csv(path).itertuples(index=False)]
    assert len(ordered) > 100 and ordered[0][0] == "sad" and ordered[-1][0] == "happy"
    assert_strictly_ascending(list(orders.values()), ordered)


def test_a_table_keyed_by_an_enum_and_a_domain_ends_identical_to_copy_through_the_pipeline(stack_services, tmp_path):
    """Registered without key_order (no refusal), captured by Debezium, destiny.csv is COPY ... ORDER BY lvl, c
    byte for byte: the enum's declared order, the domain's integer order."""
    from cdc_pipeline.errors import SourceError
    from tests.stack.pipeline_driver import PipelineDriver, write_connector

    path = write_connector(tmp_path / "connectors", "enum_items", "public.enum_items", "enumitems")
    driver = PipelineDriver(stack_services.settings, path, tmp_path / "data")
    driver.sql("DROP TABLE IF EXISTS public.enum_items")
    driver.sql("DROP TYPE IF EXISTS public.item_level")
    driver.sql("DROP DOMAIN IF EXISTS public.item_code")
    driver.sql("CREATE TYPE public.item_level AS ENUM ('low', 'high', 'mid')")
    driver.sql("ALTER TYPE public.item_level ADD VALUE 'lowest' BEFORE 'low'")
    driver.sql("CREATE DOMAIN public.item_code AS integer")
    driver.sql("CREATE TABLE public.enum_items (lvl public.item_level, c public.item_code, v text, PRIMARY KEY (lvl, c))")
    driver.sql("INSERT INTO public.enum_items SELECT (ARRAY['low','high','mid','lowest'])[1 + g % 4]::public.item_level, "
               "(g * 37) % 101 - 50, 'v' || g FROM generate_series(1, 120) g ON CONFLICT DO NOTHING")
    # A domain over an enum anywhere in the database would stop Debezium's task: refused first, naming it.
    driver.sql("CREATE DOMAIN public.level_d AS public.item_level")
    with pytest.raises(SourceError, match=r"level_d \(a domain over an enum\).*Debezium 3.6's task fails to start"):
        driver.register()
    driver.sql("DROP DOMAIN public.level_d")
    driver.register()
    assert driver.drain_until_equal("lvl, c") == driver.destiny()
    driver.sql("UPDATE public.enum_items SET v = 'changed' WHERE c % 3 = 0")
    driver.sql("DELETE FROM public.enum_items WHERE lvl = 'mid' AND c < 0")
    driver.sql("INSERT INTO public.enum_items VALUES ('lowest', 1000, 'late'), ('high', -1000, 'late')")
    expected = driver.drain_until_equal("lvl, c")
    assert driver.destiny() == expected and expected.index(b"lowest,") < expected.index(b"\nlow,")
