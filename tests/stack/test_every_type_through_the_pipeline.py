"""Every type of the extended list (intervals, money, enums, arrays, network types, bits, xml, infinities,
domains) through the pipeline's own tasks: snapshot, inserts, updates, deletes, a TRUNCATE; byte-identical
to COPY. A table with a refused type is stopped at registration, before the first event."""

from __future__ import annotations

import dataclasses
import random

import pytest

from cdc_pipeline.errors import SourceError
from tests.fixtures.types2.rows import SNAPSHOT_EDGE_ROWS, STREAM_EDGE_ROWS, random_row
from tests.stack.pipeline_driver import REPO, PipelineDriver, write_connector

pytestmark = pytest.mark.stack

DATABASE = "types_pipeline"
SCHEMA_SQL = REPO / "tests" / "fixtures" / "types2" / "schema.sql"
MONEY = ["0", "0.10", "-1234.56", "1000000", "999.99"]


@pytest.fixture(scope="module")
def driver(stack_services, tmp_path_factory) -> PipelineDriver:
    base = PipelineDriver(stack_services.settings, REPO / "include" / "connectors" / "clientes.json",
                          tmp_path_factory.mktemp("unused"))
    base.sql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    base.sql(f"CREATE DATABASE {DATABASE}")
    settings = dataclasses.replace(stack_services.settings, pg_db=DATABASE)
    folder = tmp_path_factory.mktemp("types-connectors")
    driver = PipelineDriver(settings, write_connector(folder, "types2", "public.types2", "tp"),
                            tmp_path_factory.mktemp("types-data"))
    driver.sql(SCHEMA_SQL.read_text())
    return driver


def insert(driver: PipelineDriver, row: dict[str, str]) -> None:
    columns = ", ".join(row)
    driver.sql(f"INSERT INTO public.types2 ({columns}) VALUES ({', '.join(row.values())})")


def test_every_supported_type_is_byte_identical_to_copy(driver):
    rng = random.Random(92)
    for row in SNAPSHOT_EDGE_ROWS:
        insert(driver, row)
    for key in range(100, 140):
        insert(driver, random_row(rng, key, MONEY))
    driver.register()  # the rows above arrive as snapshot reads
    for row in STREAM_EDGE_ROWS:
        insert(driver, row)
    for key in range(200, 240):
        insert(driver, random_row(rng, key, MONEY))
    for key in rng.sample(range(100, 140), 15):  # updates: every column of a fresh random row
        row = random_row(rng, key, MONEY)
        sets = ", ".join(f"{c} = {v}" for c, v in row.items() if c != "k")
        driver.sql(f"UPDATE public.types2 SET {sets} WHERE k = {key}")
    driver.sql("DELETE FROM public.types2 WHERE k % 7 = 0")
    expected = driver.drain_until_equal("k")
    assert driver.destiny().decode() == expected.decode()
    runs = driver.history.runs.recent_runs(100)
    assert sum(r["dead_lettered"] or 0 for r in runs) == 0 and sum(r["reads"] or 0 for r in runs) >= 40

    driver.sql("TRUNCATE public.types2")
    for key in range(300, 310):
        insert(driver, random_row(rng, key, MONEY))
    expected = driver.drain_until_equal("k")
    assert driver.destiny().decode() == expected.decode()


def test_a_refused_type_stops_registration_naming_the_column_and_the_fix(driver, tmp_path):
    settings = driver.settings  # the database the module's fixture created, with public.refused in it
    driver = PipelineDriver(settings, write_connector(tmp_path, "refused", "public.refused", "rf"), tmp_path / "data")
    with pytest.raises(SourceError, match=r"(?s)cannot hold exactly.*refused.vb \(bit varying\).*leave public.refused out of table.include.list"):
        driver.register()
    assert not driver.layout.destiny.exists()
    with driver.connect() as connect:
        assert connect.status("refused") is None  # nothing was registered
