"""Sinks on the real chain (PostgreSQL -> Debezium -> broker -> the pipeline's tasks): csv, destiny.parquet and a
PostgreSQL replica rendered after each merge, as the DAG's sink tasks do.

- the fidelity workload (every promised type, TOAST, deletes, re-inserts, 4 partitions) ends with the Parquet
  file's schema equal to the mapping and its values equal to PostgreSQL's, and the replica's COPY
  byte-identical to the source's;
- a sink whose database is down fails alone: the other sinks and the offsets go on, and it catches up from its
  kept generation when it is back;
- a rebuild (resnapshot), a schema change and a reset re-render every sink in full.
"""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cdc_pipeline.commands import operations
from cdc_pipeline.history import RunRef
from cdc_pipeline.sinks.postgres_target import TargetParams
from cdc_pipeline.tasks.finish import finish_run
from cdc_pipeline.tasks.merge import merge_batch
from cdc_pipeline.tasks.sink import render_sink
from cdc_pipeline.waiting import wait_until
from devstack.ports import free_port
from tests.stack.pipeline_driver import PipelineDriver, write_connector
from tests.stack.test_sinks_support import Database, compare_parquet_with_source, retire_connector
from tests.stack.workload import create_types_table, run_mixed_workload

pytestmark = pytest.mark.stack

# The mapping for the fidelity table (tests/fixtures/samples/acc_types-schema.sql).
FIDELITY_SCHEMA = {
    "k1": pa.int32(), "k2": pa.string(), "c_small": pa.int16(), "c_int": pa.int32(), "c_big": pa.int64(),
    "c_num": pa.string(), "c_num_s": pa.decimal128(12, 3), "c_real": pa.float32(), "c_double": pa.float64(),
    "c_text": pa.string(), "c_varchar": pa.string(), "c_char": pa.string(), "c_bool": pa.bool_(),
    "c_date": pa.date32(), "c_time": pa.time64("us"), "c_ts": pa.timestamp("us"),
    "c_tstz": pa.timestamp("us", tz="UTC"), "c_uuid": pa.string(), "c_json": pa.string(), "c_jsonb": pa.string(),
    "c_bytea": pa.binary(),
}


class SinkDriver(PipelineDriver):
    """A PipelineDriver whose runs go on as the DAG's do: consume, merge keeping what the sinks need, one render
    per sink (each failing alone), finish. ``targets`` maps a postgres sink's conn_id to its database."""

    targets: dict[str, TargetParams]

    def run_with_sinks(self, max_events: int = 10_000) -> dict[str, dict | Exception]:
        run = self.next_run()
        self.consume(run, max_events=max_events)
        merge_batch(self.pipe, run)
        return self.render_sinks(run)

    def render_sinks(self, run: RunRef | None = None) -> dict[str, dict | Exception]:
        run = run or self.next_run()
        results: dict[str, dict | Exception] = {}
        for sink in self.spec.settings.sinks:
            if sink.type == "csv":
                continue
            try:
                results[sink.name] = render_sink(self.pipe, sink, run, target=self.targets.get(sink.conn_id))
            except Exception as exc:  # noqa: BLE001 - one sink failing is what some tests want to see
                results[sink.name] = exc
        return results

    def drain_with_sinks(self, order_by: str, *, max_events: int = 10_000, timeout: float = 180.0) -> bytes:
        expected = self.copy_csv(order_by)
        wait_until(lambda: self.run_with_sinks(max_events) is not None and self.destiny() == expected,
                   what=f"{self.layout.destiny} to equal COPY", timeout=timeout, interval=1.0)
        return expected


@pytest.fixture
def make(stack_services, tmp_path):
    """Build a SinkDriver for a connector with the given sinks; its connector and slot are removed afterwards."""
    made: list[SinkDriver] = []

    def build(name: str, sinks: list[dict]) -> SinkDriver:
        path = write_connector(tmp_path / "connectors", name, f"public.{name}", name.replace("_", ""),
                               sinks=[{"type": "csv"}, *sinks])
        driver = SinkDriver(stack_services.settings, path, tmp_path / "data")
        s = stack_services.settings
        driver.targets = {"cdc_sink_postgres": TargetParams(s.pg_host, s.pg_port, s.pg_user, s.pg_password, s.sink_db)}
        made.append(driver)
        return driver

    yield build
    for driver in made:
        retire_connector(driver.settings, driver.spec.name, driver.spec.slot_name)


def replica(driver: SinkDriver, table: str, order_by: str) -> bytes:
    return Database(driver.settings, driver.settings.sink_db).copy_csv(table, order_by)


def source_db(driver: SinkDriver) -> Database:
    return Database(driver.settings, driver.settings.pg_db)


def drop_replica(driver: SinkDriver, table: str) -> None:
    sink_db = Database(driver.settings, driver.settings.sink_db)
    sink_db.sql(f"DROP TABLE IF EXISTS {table}")
    if sink_db.sql("SELECT to_regclass('public.cdc_sink_applied')")[0][0]:
        sink_db.sql("DELETE FROM public.cdc_sink_applied WHERE target_table = %s", (table,))


def test_the_fidelity_workload_reaches_every_sink_faithfully(make):
    driver = make("sink_types",
                  [{"type": "parquet"}, {"type": "postgres", "table": "public.sink_types_replica"}])
    create_types_table(driver.sql, "public.sink_types")
    drop_replica(driver, "public.sink_types_replica")
    run_mixed_workload(driver, random.Random(20261130), "public.sink_types", register=driver.register)

    expected = driver.drain_with_sinks("k1, k2", max_events=97)
    assert driver.destiny().decode() == expected.decode()
    assert replica(driver, "public.sink_types_replica", "k1, k2").decode() == expected.decode()
    path = driver.layout.sink_file("parquet")
    schema = pq.read_schema(path)
    assert dict(zip(schema.names, schema.types)) == FIDELITY_SCHEMA
    assert compare_parquet_with_source(path, source_db(driver), driver.pipe.table_description()) == []

    runs = driver.history.runs.recent_runs(1000)
    partitions = {p for run in runs if run["offset_ranges"] for p in json.loads(run["offset_ranges"])}
    assert len(partitions) > 1, "the workload should have crossed several partitions"
    results = driver.history.incidents.sink_results(limit=1000)
    statuses = {r["status"] for r in results if r["sink"] == "postgres:public.sink_types_replica"}
    assert "incremental" in statuses and "failed" not in statuses
    last = runs[0]["run_id"]
    assert "sinks: parquet" in finish_run(driver.pipe, RunRef(last, 1, 1))["line"]


def test_a_sink_whose_database_is_down_leaves_the_others_and_the_offsets_and_catches_up(make):
    driver = make("sink_down", [
        {"type": "parquet"}, {"type": "postgres", "table": "public.sink_down_ok"},
        {"type": "postgres", "table": "public.sink_down_later", "conn_id": "sink_down"}])
    for table in ("public.sink_down_ok", "public.sink_down_later"):
        drop_replica(driver, table)
    driver.targets["sink_down"] = driver.targets["cdc_sink_postgres"]
    driver.sql("DROP TABLE IF EXISTS public.sink_down")
    driver.sql("CREATE TABLE public.sink_down (id int PRIMARY KEY, v text)")
    driver.sql("INSERT INTO public.sink_down SELECT g, 'v' || g FROM generate_series(1, 50) g")
    driver.register()
    driver.drain_with_sinks("id")
    held = json.loads((driver.layout.folder / "sinks" / "sink_postgres_public_sink_down_later.json").read_text())
    held = held["applied"]["generation"]

    driver.targets["sink_down"] = TargetParams("127.0.0.1", free_port(), "postgres", "x", "cdc_sink", "sink_down")
    for round_number in range(3):
        before = driver.history.runs.resume_point()
        driver.sql(f"INSERT INTO public.sink_down VALUES ({100 + round_number}, 'while down')")
        driver.sql(f"UPDATE public.sink_down SET v = 'changed' WHERE id = {round_number + 1}")
        driver.sql(f"DELETE FROM public.sink_down WHERE id = {round_number + 10}")
        driver.wait_for_records(50 + 4 * (round_number + 1))  # 3 changes and the delete's tombstone
        results = driver.run_with_sinks()
        assert isinstance(results["postgres:public.sink_down_later"], Exception)
        assert "cannot connect to the sink database" in str(results["postgres:public.sink_down_later"])
        assert results["parquet"]["status"] == "full"
        assert results["postgres:public.sink_down_ok"]["status"] == "incremental"
        assert driver.history.runs.resume_point().ends != before.ends  # the offsets moved on
        assert (driver.layout.state_dir / held).exists()  # kept for the sink that is down
    expected = driver.drain_with_sinks("id")
    assert driver.destiny() == expected == replica(driver, "public.sink_down_ok", "id")
    assert pq.read_table(driver.layout.sink_file("parquet")).num_rows == expected.count(b"\n") - 1
    assert replica(driver, "public.sink_down_later", "id") != expected

    driver.targets["sink_down"] = driver.targets["cdc_sink_postgres"]  # back
    back = driver.render_sinks()["postgres:public.sink_down_later"]
    assert back["status"] == "incremental" and f"catching up from generation {held}" in back["reason"]
    assert replica(driver, "public.sink_down_later", "id") == expected
    records = [r for r in driver.history.runs.recent_runs(100) if r["offset_ranges"]]
    assert all(r["offsets_committed"] == 1 for r in records)


def test_a_rebuild_a_schema_change_and_a_reset_rerender_every_sink(make):
    driver = make("sink_rebuilt",
                  [{"type": "parquet"}, {"type": "postgres", "table": "public.sink_rebuilt_replica"}])
    drop_replica(driver, "public.sink_rebuilt_replica")
    driver.sql("DROP TABLE IF EXISTS public.sink_rebuilt")
    driver.sql("CREATE TABLE public.sink_rebuilt (id int PRIMARY KEY, v text, n numeric(8,2))")
    driver.sql("INSERT INTO public.sink_rebuilt SELECT g, 'v' || g, g / 4.0 FROM generate_series(1, 40) g")
    driver.register()
    driver.drain_with_sinks("id")

    def converge_and_render() -> dict:
        expected = driver.converge("id")
        assert driver.destiny() == expected
        results = driver.render_sinks()
        assert replica(driver, "public.sink_rebuilt_replica", "id") == expected
        assert pq.read_table(driver.layout.sink_file("parquet")).num_rows == 40 + bumps
        return results

    # A rebuild: the sinks keep the old content until the new state is live, then render it in full.
    bumps = 0
    with driver.kafka() as kafka, driver.connect() as connect:
        operations.resnapshot(driver.pipe, kafka, connect, origin="test", connector_config=driver.connector_config())
    results = driver.render_sinks()
    assert {r["status"] for r in results.values()} == {"unchanged"}  # the rebuild is aside: nothing new is live
    driver.sql("UPDATE public.sink_rebuilt SET v = 'during the rebuild' WHERE id = 7")
    results = converge_and_render()
    assert results["parquet"]["status"] == "full"
    assert results["postgres:public.sink_rebuilt_replica"]["status"] == "full"
    assert "a rebuild was promoted or the pipeline reset" in results["postgres:public.sink_rebuilt_replica"]["reason"]

    # A schema change: rebuilt to the new shape; the replica is swapped for a table of that shape.
    driver.sql("ALTER TABLE public.sink_rebuilt ADD COLUMN added integer DEFAULT 7")
    results = converge_and_render()
    assert "new shape" in results["postgres:public.sink_rebuilt_replica"]["reason"]
    assert pq.read_schema(driver.layout.sink_file("parquet")).field("added").type == pa.int32()

    # A reset: the state moves aside (the sinks' ledgers stay); the new state is rendered in full.
    with driver.kafka() as kafka:
        operations.reset(driver.pipe, kafka, to="beginning", origin="test")
    driver.sql("INSERT INTO public.sink_rebuilt (id, v) VALUES (1000, 'after the reset')")
    bumps = 1
    results = converge_and_render()
    assert results["parquet"]["status"] == "full"
    assert results["postgres:public.sink_rebuilt_replica"]["status"] == "full"
    assert (driver.layout.folder / "sinks").is_dir()
