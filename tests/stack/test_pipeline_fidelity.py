"""End to end on the real services: PostgreSQL → Debezium → broker → the pipeline's steps → destiny.csv.

The proof of the fidelity contract: after a workload of snapshot reads, inserts, updates, deletes,
re-inserts of deleted keys, several updates of one key in one transaction and unchanged-TOAST updates,
on a table with a column of every promised type, destiny.csv is byte-identical to PostgreSQL's COPY.
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import pytest

from cdc_pipeline.kafka_batch import commit_offsets
from cdc_pipeline.run_history import RunHistory
from tests.stack.pipeline_driver import PipelineDriver, write_connector

pytestmark = pytest.mark.stack

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
DATES = ["2026-11-24", "0001-01-01", "1970-01-01", "2000-02-29", "9999-12-31", "0044-03-15 BC"]
TIMES = ["12:30:00.5", "00:00:00", "23:59:59.999999", "08:15:00.000123"]
TSS = ["2053-11-03 03:30:38.000001", "1970-01-01 00:00:00", "1999-12-31 23:59:59.5", "0044-03-15 12:00:00 BC"]
TSTZS = ["2026-11-24 01:02:03+00", "1970-01-01 00:00:00+00", "2026-06-01 12:00:00.123456+02", "1900-01-01 00:00:00+00"]
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


INSERT = f"INSERT INTO public.acc_types ({', '.join(COLUMNS)}) VALUES ({', '.join(f'%s::{c}' for c in CASTS)})"


def insert(driver, rng, k1, k2, **overrides):
    values = [str(k1), k2, *[random_value(rng, c) for c in COLUMNS[2:]]]
    for name, value in overrides.items():
        values[COLUMNS.index(name)] = value
    driver.sql(INSERT, values)


def update(driver, rng, k1, k2, columns):
    sets = ", ".join(f"{c} = %s::{CASTS[COLUMNS.index(c)]}" for c in columns)
    driver.sql(f"UPDATE public.acc_types SET {sets} WHERE k1 = %s AND k2 = %s", [*(random_value(rng, c) for c in columns), k1, k2])


@pytest.fixture(scope="module")
def acc_driver(stack_services, tmp_path_factory) -> PipelineDriver:
    folder = tmp_path_factory.mktemp("connectors")
    settings = stack_services.settings
    driver = PipelineDriver(settings, write_connector(folder, "acc_types", "public.acc_types", "acc"),
                            tmp_path_factory.mktemp("data"))
    driver.sql("DROP TABLE IF EXISTS public.acc_types")
    driver.sql(SCHEMA_SQL.read_text())
    return driver


def test_destiny_is_byte_identical_to_copy_after_a_mixed_workload(acc_driver):
    driver, rng = acc_driver, random.Random(20261124)
    keys = [(i, rng.choice(["a", "b,c", "ñ", 'q"x', ""])) for i in range(1, 161)]
    keys = list(dict.fromkeys(keys))
    for k1, k2 in keys[:120]:
        insert(driver, rng, k1, k2, c_text=big_text(rng) if k1 % 10 == 0 else None)

    driver.register()  # the connector's snapshot reads the first 120 rows

    for k1, k2 in keys[120:]:
        insert(driver, rng, k1, k2)
    for k1, k2 in rng.sample(keys[:120], 60):
        update(driver, rng, k1, k2, rng.sample(COLUMNS[2:], 4))
    # Unchanged-TOAST updates: the big c_text is not touched, so Debezium sends the placeholder.
    for k1, k2 in [k for k in keys[:120] if k[0] % 10 == 0]:
        update(driver, rng, k1, k2, ["c_int", "c_bool"])
    # Several updates of one key inside one transaction.
    k1, k2 = keys[5]
    driver.sql(
        "BEGIN; UPDATE public.acc_types SET c_int = 1 WHERE k1 = %(k1)s AND k2 = %(k2)s;"
        " UPDATE public.acc_types SET c_int = 2, c_text = 'second' WHERE k1 = %(k1)s AND k2 = %(k2)s;"
        " UPDATE public.acc_types SET c_int = 3 WHERE k1 = %(k1)s AND k2 = %(k2)s; COMMIT;".replace("%(k1)s", str(k1)).replace("%(k2)s", "'" + k2.replace("'", "''") + "'")
    )
    deleted = rng.sample(keys, 30)
    for k1, k2 in deleted:
        driver.sql("DELETE FROM public.acc_types WHERE k1 = %s AND k2 = %s", [k1, k2])
    for k1, k2 in deleted[:10]:
        insert(driver, rng, k1, k2)  # re-insert of a deleted key

    # Small batches force many runs across the topic's partitions.
    expected = driver.drain_until_equal("k1, k2", max_events=97)
    assert driver.destiny().decode() == expected.decode()

    history = RunHistory(driver.paths.history)
    runs = history.recent_runs(1000)
    partitions = {p for run in runs if run["offset_ranges"] for p in json.loads(run["offset_ranges"])}
    assert len(partitions) > 1, "the workload should have crossed several partitions"
    assert sum(r["reads"] or 0 for r in runs) >= 120
    assert sum(r["deletes"] or 0 for r in runs) >= 30
    assert all(r["status"] == "merged" for r in runs)


def test_a_retry_after_a_failed_commit_rereads_exactly_the_recorded_range(acc_driver, monkeypatch):
    driver, rng = acc_driver, random.Random(7)
    for i in range(1000, 1040):
        insert(driver, rng, i, "retry")
    run = driver.next_run()

    def refuse(*args, **kwargs):
        raise RuntimeError("simulated crash between the durable buffer and the commit")

    monkeypatch.setattr("cdc_pipeline.steps.commit_offsets", refuse)
    with pytest.raises(RuntimeError):
        driver.consume(run, max_events=25)
    first = RunHistory(driver.paths.history).recorded_ranges(run.run_id)
    assert first and sum(end - start for start, end in first.values()) == 25

    # Meanwhile more changes arrive; the retry must not widen its range.
    for i in range(1040, 1050):
        insert(driver, rng, i, "retry")
    monkeypatch.setattr("cdc_pipeline.steps.commit_offsets", commit_offsets)
    retry = type(run)(run.run_id, 2, run.logical_start, run.logical_end)
    summary = driver.consume(retry, max_events=25)
    assert summary["events"] == 25
    assert RunHistory(driver.paths.history).recorded_ranges(run.run_id) == first
    driver.merge(retry)

    expected = driver.drain_until_equal("k1, k2")
    assert driver.destiny() == expected


def test_a_lost_consumer_group_rereads_the_topic_and_stays_consistent(acc_driver):
    """What a Tansu restart looks like to the pipeline: the group's offsets are gone, the history has some."""
    driver = acc_driver
    expected = driver.drain_until_equal("k1, k2")
    assert driver.destiny() == expected
    driver.group = driver.group + ".lost"
    consumed, merged = driver.run_once(max_events=100_000)
    assert any("no committed offset" in note for note in consumed["notes"])
    assert merged["inserted"] == merged["updated"] == merged["deleted"] == 0
    assert driver.destiny() == expected
