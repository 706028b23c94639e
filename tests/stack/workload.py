"""A workload on a table with a column of every type of the fidelity contract (tests/fixtures/samples)."""

from __future__ import annotations

import random
import string
from pathlib import Path

SCHEMA_SQL = Path(__file__).resolve().parents[1] / "fixtures" / "samples" / "acc_types-schema.sql"
COLUMNS = ("k1", "k2", "c_small", "c_int", "c_big", "c_num", "c_num_s", "c_real", "c_double", "c_text", "c_varchar",
           "c_char", "c_bool", "c_date", "c_time", "c_ts", "c_tstz", "c_uuid", "c_json", "c_jsonb", "c_bytea")
CASTS = ("int", "text", "smallint", "int", "bigint", "numeric", "numeric(12,3)", "real", "double precision", "text",
         "varchar(40)", "char(5)", "boolean", "date", "time", "timestamp", "timestamptz", "uuid", "json", "jsonb", "bytea")

TEXTS = ["", "plain", "a,b", 'say "hi"', "line1\nline2", "cr\r\nlf", "back\\slash", "ñandú €", "NULL", " padded ",
         "\\.", "日本語", "tab\there"]
NUMERICS = ["3.10", "-1.5", "0", "7.000", "123456789012345678901234567890.123456789", "-0.000001", "NaN", "1e-20"]
REALS = ["3.14", "0", "-0", "1e+30", "1.5e-07", "Infinity", "-Infinity", "NaN", "0.1", "16777217", "3.4028235e+38"]
DOUBLES = ["0.3333333333333333", "42", "1e+100", "-2.2250738585072014e-308", "0.1", "5e-324", "Infinity", "123456789.125"]
# Dates before the Gregorian reform (1582-10-15) and BC are left to test_pipeline_fidelity's streaming-only
# test: Debezium 3.1.1's snapshot reads go through JDBC's Julian calendar and drop a date's era (upstream
# debezium/dbz#2664), so such values read by the initial snapshot arrive shifted. See docs/types.md.
DATES = ["2026-11-24", "1970-01-01", "2000-02-29", "9999-12-31", "1582-10-15", "10000-01-01"]
ANCIENT_DATES = ["0001-01-01", "0044-03-15 BC", "1000-06-15", "4713-11-24 BC"]
TIMES = ["12:30:00.5", "00:00:00", "23:59:59.999999", "08:15:00.000123"]
TSS = ["2053-11-03 03:30:38.000001", "1970-01-01 00:00:00", "1999-12-31 23:59:59.5", "12345-06-07 08:09:10"]
ANCIENT_TSS = ["0044-03-15 12:00:00 BC", "0001-01-01 00:00:00", "1200-02-29 23:59:59.999999"]
TSTZS = ["2026-11-24 01:02:03+00", "1970-01-01 00:00:00+00", "2026-06-01 12:00:00.123456+02", "1900-01-01 00:00:00+00"]
ANCIENT_TSTZS = ["0044-03-15 12:00:00+00 BC", "1000-01-01 00:00:00+00"]
JSONS = ['{"b":"x,y","c":null}', '{ "spaced" :  [1, 2] }', "[]", '"str"', '{"n": 1.50}', '{"ñ": "\\n"}']


def random_value(rng: random.Random, column: str) -> str | None:
    if column not in ("k1", "k2") and rng.random() < 0.12:
        return None
    return {
        "c_small": lambda: str(rng.choice([-32768, 32767, 0, rng.randint(-999, 999)])),
        "c_int": lambda: str(rng.randint(-2**31, 2**31 - 1)),
        "c_big": lambda: str(rng.choice([-2**63, 2**63 - 1, rng.randint(-10**15, 10**15)])),
        "c_num": lambda: rng.choice(NUMERICS),
        "c_num_s": lambda: rng.choice(["0.000", "1.5", "-123456789.123", "7"]),
        "c_real": lambda: rng.choice(REALS),
        "c_double": lambda: rng.choice(DOUBLES),
        "c_text": lambda: rng.choice(TEXTS),
        "c_varchar": lambda: rng.choice(TEXTS)[:40],
        "c_char": lambda: rng.choice(["abcde", "ab", "", "ñ"]),
        "c_bool": lambda: rng.choice(["true", "false"]),
        "c_date": lambda: rng.choice(DATES),
        "c_time": lambda: rng.choice(TIMES),
        "c_ts": lambda: rng.choice(TSS),
        "c_tstz": lambda: rng.choice(TSTZS),
        "c_uuid": lambda: "%032x" % rng.getrandbits(128),
        "c_json": lambda: rng.choice(JSONS),
        "c_jsonb": lambda: rng.choice(JSONS),
        "c_bytea": lambda: "\\x" + bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 12))).hex(),
    }[column]()


def big_text(rng: random.Random) -> str:
    # Incompressible and over 2 kB, so PostgreSQL stores it out of line (TOAST).
    return "".join(rng.choice(string.ascii_letters + "ñ,\"\n") for _ in range(6000))


def insert(driver, rng, k1, k2, table: str = "public.acc_types", **overrides):
    values = [str(k1), k2, *[random_value(rng, c) for c in COLUMNS[2:]]]
    for name, value in overrides.items():
        if value is not None:
            values[COLUMNS.index(name)] = value
    placeholders = ", ".join(f"%s::{c}" for c in CASTS)
    driver.sql(f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ({placeholders})", values)


def update(driver, rng, k1, k2, columns, table: str = "public.acc_types"):
    sets = ", ".join(f"{c} = %s::{CASTS[COLUMNS.index(c)]}" for c in columns)
    driver.sql(f"UPDATE {table} SET {sets} WHERE k1 = %s AND k2 = %s", [*(random_value(rng, c) for c in columns), k1, k2])


def create_types_table(sql, table: str = "public.acc_types") -> None:
    """(Re)create the sample schema's table under another name when asked."""
    sql(f"DROP TABLE IF EXISTS {table}")
    # Every name, the primary key constraint's too: index names are unique per schema.
    sql(SCHEMA_SQL.read_text().replace("acc_types", table.split(".")[-1]))


def run_mixed_workload(driver, rng: random.Random, table: str = "public.acc_types", *, register) -> None:
    """Snapshot rows, then inserts, updates, unchanged-TOAST updates, a multi-update transaction,
    deletes and re-inserts of deleted keys. ``register`` is called between the first rows and the rest,
    so the first rows arrive as snapshot reads."""
    keys = [(i, rng.choice(["a", "b,c", "ñ", 'q"x', ""])) for i in range(1, 161)]
    keys = list(dict.fromkeys(keys))
    for k1, k2 in keys[:120]:
        insert(driver, rng, k1, k2, table=table, c_text=big_text(rng) if k1 % 10 == 0 else None)
    register()
    for k1, k2 in keys[120:]:
        insert(driver, rng, k1, k2, table=table)
    for k1, k2 in rng.sample(keys[:120], 60):
        update(driver, rng, k1, k2, rng.sample(COLUMNS[2:], 4), table=table)
    # Unchanged-TOAST updates: the big c_text is not touched, so Debezium sends the placeholder.
    for k1, k2 in [k for k in keys[:120] if k[0] % 10 == 0]:
        update(driver, rng, k1, k2, ["c_int", "c_bool"], table=table)
    # Several updates of one key inside one transaction.
    k1, k2 = keys[5]
    where = f"k1 = {k1} AND k2 = '" + k2.replace("'", "''") + "'"
    driver.sql(f"BEGIN; UPDATE {table} SET c_int = 1 WHERE {where}; UPDATE {table} SET c_int = 2, c_text = 'second' "
               f"WHERE {where}; UPDATE {table} SET c_int = 3 WHERE {where}; COMMIT;")
    deleted = rng.sample(keys, 30)
    for k1, k2 in deleted:
        driver.sql(f"DELETE FROM {table} WHERE k1 = %s AND k2 = %s", [k1, k2])
    for k1, k2 in deleted[:10]:
        insert(driver, rng, k1, k2, table=table)  # re-insert of a deleted key


class BackgroundChanges:
    """Inserts, updates and deletes on ``table (id int PRIMARY KEY, v text, ...)``, in a thread, while a test
    does something else; only ``id`` and ``v`` are touched, so other columns may be altered meanwhile."""

    def __init__(self, driver, table: str, *, seed: int = 1, first_id: int = 10_000, pause: float = 0.05) -> None:
        import threading

        self.driver, self.table, self.rng, self.next_id, self.pause = driver, table, random.Random(seed), first_id, pause
        self.applied = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"changes on {table}", daemon=True)
        self.error: Exception | None = None

    def __enter__(self) -> BackgroundChanges:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)
        if self.error is not None and exc[0] is None:
            raise self.error

    def _run(self) -> None:
        try:
            with self.driver.admin.connect(autocommit=True) as conn:  # the application writes
                while not self._stop.wait(self.pause):
                    kind = self.rng.choice(("insert", "insert", "update", "delete"))
                    if kind == "insert":
                        conn.execute(f"INSERT INTO {self.table} (id, v) VALUES (%s, %s)", (self.next_id, f"bg {self.next_id}"))
                        self.next_id += 1
                    elif kind == "update":
                        conn.execute(f"UPDATE {self.table} SET v = v || '+' WHERE id = (SELECT id FROM {self.table}"
                                     " ORDER BY random() LIMIT 1)")
                    else:
                        conn.execute(f"DELETE FROM {self.table} WHERE id = (SELECT id FROM {self.table} WHERE id >= 10000"
                                     " ORDER BY random() LIMIT 1)")
                    self.applied += 1
        except Exception as exc:  # noqa: BLE001 - reported by __exit__
            self.error = exc
