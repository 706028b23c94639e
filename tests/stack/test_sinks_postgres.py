"""The PostgreSQL sink and destiny.parquet on the real PostgreSQL, fed by a state kept in step with a source
table without Debezium (its COPY rows merged as change events), so every type and every path is quick to reach:
byte-identical COPY of the replica, Parquet values equal to PostgreSQL's own, incremental catch-up after an
outage, a new shape swapped in, refusals, and a crash on either side of the target's commit."""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cdc_pipeline.errors import ConfigError, SinkError, SinkUnreachableError
from cdc_pipeline.history import RunRef
from cdc_pipeline.sinks import ledger as ledger_module
from cdc_pipeline.sinks.postgres_target import TargetParams
from cdc_pipeline.tasks.sink import render_sink
from devstack.ports import free_port
from tests.fixtures.types2.rows import SNAPSHOT_EDGE_ROWS, STREAM_EDGE_ROWS, random_row
from tests.stack.pipeline_driver import REPO
from tests.stack.test_sinks_support import Database, SourceMirror, compare_parquet_with_source, recreate_database
from tests.stack.workload import ANCIENT_DATES, ANCIENT_TSS, ANCIENT_TSTZS, SCHEMA_SQL, insert
from tests.unit.test_sinks_support import pipeline

pytestmark = pytest.mark.stack

MONEY = ["0", "0.10", "-1234.56", "1000000", "999.99", "-92233720368547758.08", "92233720368547758.07"]


@pytest.fixture(scope="module")
def cluster(_session_stack):
    _session_stack.start(["postgres"])  # only PostgreSQL: these tests need no broker
    return _session_stack.settings


@pytest.fixture(scope="module")
def source(cluster) -> Database:
    db = recreate_database(cluster, "sinks_source")
    db.sql((REPO / "tests" / "fixtures" / "types2" / "schema.sql").read_text())
    db.sql(SCHEMA_SQL.read_text())
    return db


@pytest.fixture(scope="module")
def sink_db(cluster) -> Database:
    return Database(cluster, cluster.sink_db)


class Harness:
    """A pipeline over one source table with csv, parquet and postgres sinks, and its render calls."""

    def __init__(self, tmp_path, source: Database, sink_db: Database, table: str, replica: str) -> None:
        self.source, self.sink_db, self.replica = source, sink_db, replica
        name = table.split(".")[1]
        self.pipe = pipeline(tmp_path, [{"type": "csv"}, {"type": "parquet"},
                                        {"type": "postgres", "table": replica}], name=name)
        self.mirror = SourceMirror(self.pipe, source, table, tmp_path)
        self.key = ", ".join(self.mirror.description.key_columns)
        self.table = table
        self.runs = 0
        sink_db.sql(f"DROP TABLE IF EXISTS {replica}")
        sink_db.sql(f"DELETE FROM public.cdc_sink_applied WHERE target_table = '{replica}'"
                    if sink_db.sql("SELECT to_regclass('public.cdc_sink_applied')")[0][0] else "SELECT 1")

    def render(self, which: str, target: TargetParams | None = None) -> dict:
        self.runs += 1
        sink = {s.type: s for s in self.pipe.spec.settings.sinks}[which]
        return render_sink(self.pipe, sink, RunRef(f"manual__{which}-{self.runs}", 1, 1),
                           target=target or self.sink_db.target())

    def replica_copy(self) -> bytes:
        return self.sink_db.copy_csv(self.replica, self.key)

    def source_copy(self) -> bytes:
        return self.source.copy_csv(self.table, self.key)


def fill_types2(source: Database, rng: random.Random, keys) -> None:
    for key in keys:
        row = random_row(rng, key, MONEY)
        source.sql(f"INSERT INTO public.types2 ({', '.join(row)}) VALUES ({', '.join(row.values())})")


def test_every_type_reaches_the_replica_byte_identical_and_the_parquet_file_equal_to_postgresql(
        tmp_path, source, sink_db):
    h = Harness(tmp_path, source, sink_db, "public.types2", "public.types2_replica")
    source.sql("TRUNCATE public.types2")
    for row in SNAPSHOT_EDGE_ROWS + STREAM_EDGE_ROWS:
        source.sql(f"INSERT INTO public.types2 ({', '.join(row)}) VALUES ({', '.join(row.values())})")
    rng = random.Random(13)
    fill_types2(source, rng, range(100, 160))
    h.mirror.sync()
    first = h.render("postgres")
    assert first["status"] == "full" and first["reason"] == "created public.types2_replica"
    assert h.replica_copy().decode() == h.source_copy().decode()

    for key in rng.sample(range(100, 160), 20):
        row = random_row(rng, key, MONEY)
        source.sql(f"UPDATE public.types2 SET {', '.join(f'{c} = {v}' for c, v in row.items() if c != 'k')} WHERE k = {key}")
    source.sql("DELETE FROM public.types2 WHERE k % 7 = 0")
    fill_types2(source, rng, range(300, 310))
    h.mirror.sync()
    second = h.render("postgres")
    assert second["status"] == "incremental" and second["upserted"] >= 20 and second["deleted"] >= 8
    assert h.replica_copy().decode() == h.source_copy().decode()
    # The enum and the domains do not exist in the sink database: built-in fallbacks that keep the text.
    types = dict(sink_db.sql("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid ="
                             " 'public.types2_replica'::regclass AND attnum > 0"))
    assert (types["e"], types["dm"], types["dn"], types["db3"]) == ("text", "money", "numeric", "bit varying")

    parquet = h.render("parquet")
    assert parquet["status"] == "full"
    path = h.pipe.layout.sink_file("parquet")
    assert compare_parquet_with_source(path, source, h.mirror.description) == []
    schema = pq.read_schema(path)
    assert schema.field("m").type == pa.decimal128(19, 2) and schema.field("a_tstz").type == pa.list_(
        pa.timestamp("us", tz="UTC"))
    assert schema.field("iv").type == pa.string() and schema.field("e").type == pa.string()


def test_bc_dates_years_past_9999_and_midnight_on_the_fidelity_table(tmp_path, source, sink_db):
    h = Harness(tmp_path, source, sink_db, "public.acc_types", "public.acc_types_replica")
    rng = random.Random(4)
    source.sql("TRUNCATE public.acc_types")
    for i in range(60):
        insert(source, rng, i, rng.choice(["a", "b,c", "ñ", ""]))
    for i, (day, ts, tstz) in enumerate(zip(ANCIENT_DATES, ANCIENT_TSS + ["294000-01-01 00:00:00"], ANCIENT_TSTZS * 2)):
        insert(source, rng, 500 + i, "ancient", c_date=day, c_ts=ts, c_tstz=tstz)
    insert(source, rng, 600, "edge", c_time="24:00:00", c_num_s="NaN", c_date="infinity", c_ts="-infinity",
           c_tstz="infinity")
    h.mirror.sync()
    assert h.render("postgres")["status"] == "full"
    assert h.replica_copy().decode() == h.source_copy().decode()
    parquet = h.render("parquet")
    notes = " | ".join(parquet["notes"])
    assert "c_time: 1 24:00:00" in notes and "c_num_s: 1 NaN" in notes and "c_date: 1 infinity" in notes
    assert compare_parquet_with_source(h.pipe.layout.sink_file("parquet"), source, h.mirror.description) == []


def test_a_sink_whose_database_is_down_fails_alone_and_catches_up_from_its_kept_generation(tmp_path, source, sink_db):
    h = Harness(tmp_path, source, sink_db, "public.acc_types", "public.acc_down")
    rng = random.Random(8)
    source.sql("TRUNCATE public.acc_types")
    for i in range(40):
        insert(source, rng, i, "x")
    h.mirror.sync()
    assert h.render("postgres")["status"] == "full"
    held = h.pipe.history.incidents.sink_results()[0]["generation"]
    down = TargetParams("127.0.0.1", free_port(), "postgres", "x", "cdc_sink")
    for round_number in range(3):
        insert(source, rng, 100 + round_number, "while down")
        source.sql(f"DELETE FROM public.acc_types WHERE k1 = {round_number}")
        h.mirror.sync()
        with pytest.raises(SinkUnreachableError, match="cannot connect to the sink database.*catches up when it is back"):
            h.render("postgres", target=down)
        assert h.render("parquet")["status"] == "full"  # the other sink goes on
        assert (h.pipe.layout.state_dir / held).exists()  # kept for the sink that is down
    results = h.pipe.history.incidents.sink_results(limit=100)
    assert [r["status"] for r in results if r["sink"] == "postgres:public.acc_down"].count("failed") == 3
    back = h.render("postgres")
    assert back["status"] == "incremental" and f"catching up from generation {held}" in back["reason"]
    assert (back["upserted"], back["deleted"]) == (3, 3)
    assert h.replica_copy() == h.source_copy()
    h.mirror.sync()  # nothing changed; the next merge would drop the old generation
    assert h.render("postgres")["status"] == "unchanged"


def test_a_sink_too_far_behind_renders_in_full_and_says_so(tmp_path, source, sink_db, monkeypatch):
    monkeypatch.setattr(ledger_module, "MAX_GENERATIONS_BEHIND", 1)
    h = Harness(tmp_path, source, sink_db, "public.acc_types", "public.acc_far")
    rng = random.Random(9)
    source.sql("TRUNCATE public.acc_types")
    insert(source, rng, 1, "x")
    h.mirror.sync()
    h.render("postgres")
    for i in range(2, 5):
        insert(source, rng, i, "x")
        h.mirror.sync()
    summary = h.render("postgres")
    assert summary["status"] == "full" and "generations behind" in summary["reason"]
    assert h.replica_copy() == h.source_copy()


def test_a_new_shape_is_swapped_in_whole_and_a_dependent_view_is_named(tmp_path, source, sink_db):
    source.sql("DROP TABLE IF EXISTS public.shape_items")
    source.sql("CREATE TABLE public.shape_items (id int PRIMARY KEY, v text, gone text)")
    source.sql("INSERT INTO public.shape_items SELECT g, 'v' || g, 'g' FROM generate_series(1, 30) g")
    h = Harness(tmp_path, source, sink_db, "public.shape_items", "public.shape_replica")
    h.mirror.sync()
    h.render("postgres")
    # A schema change: the rebuild puts a new lineage in place with the new description.
    source.sql("ALTER TABLE public.shape_items DROP COLUMN gone, ADD COLUMN added numeric(6,2) DEFAULT 1.5")
    h.pipe.layout.folder.joinpath("state").rename(tmp_path / "old-state")
    h.mirror = SourceMirror(h.pipe, source, "public.shape_items", tmp_path)
    h.mirror.sync()
    sink_db.sql("CREATE VIEW public.shape_view AS SELECT * FROM public.shape_replica")
    with pytest.raises(SinkError, match="other objects depend on it.*shape_view"):
        h.render("postgres")
    assert h.sink_db.copy_csv("public.shape_replica", "id").startswith(b"id,v,gone\n")  # rolled back whole
    sink_db.sql("DROP VIEW public.shape_view")
    summary = h.render("postgres")
    assert summary["status"] == "full" and "new shape" in summary["reason"] and "gone text" in summary["reason"]
    assert h.replica_copy().decode() == h.source_copy().decode()
    assert sink_db.sql("SELECT conname FROM pg_constraint WHERE conrelid = 'public.shape_replica'::regclass") == [
        ("shape_replica_pkey",)]
    assert h.render("parquet")["status"] == "full"
    assert pq.read_schema(h.pipe.layout.sink_file("parquet")).names == ["id", "v", "added"]


def test_a_table_the_pipeline_does_not_keep_is_never_overwritten(tmp_path, source, sink_db):
    source.sql("DROP TABLE IF EXISTS public.own_items")
    source.sql("CREATE TABLE public.own_items (id int PRIMARY KEY, v text)")
    source.sql("INSERT INTO public.own_items VALUES (1, 'a')")
    h = Harness(tmp_path, source, sink_db, "public.own_items", "public.someone_elses")
    h.mirror.sync()
    sink_db.sql("CREATE TABLE public.someone_elses (id int PRIMARY KEY, v text)")
    sink_db.sql("INSERT INTO public.someone_elses VALUES (99, 'precious')")
    with pytest.raises(ConfigError, match="already holds rows and this pipeline did not fill it"):
        h.render("postgres")
    sink_db.sql("DROP TABLE public.someone_elses")
    sink_db.sql("CREATE TABLE public.someone_elses (id bigint PRIMARY KEY, note text)")
    with pytest.raises(ConfigError, match="exists with other columns"):
        h.render("postgres")
    assert sink_db.sql("SELECT count(*) FROM public.someone_elses") == [(0,)]
    sink_db.sql("DROP TABLE public.someone_elses")
    sink_db.sql("CREATE TABLE public.someone_elses (id integer PRIMARY KEY, v text)")  # empty, same shape: adopted
    assert h.render("postgres")["status"] == "full"
    other = pipeline(tmp_path / "other", [{"type": "csv"}, {"type": "postgres", "table": "public.someone_elses"}],
                     name="own_items_two")
    SourceMirror(other, source, "public.own_items", tmp_path).sync()
    with pytest.raises(ConfigError, match="kept by pipeline 'own_items'"):
        render_sink(other, other.spec.settings.sinks[1], RunRef("manual__other", 1, 1), target=sink_db.target())


def test_a_crash_on_either_side_of_the_targets_commit_is_repaired_by_the_retry(tmp_path, source, sink_db, monkeypatch):
    from cdc_pipeline.sinks import ledger as ledger_file

    source.sql("DROP TABLE IF EXISTS public.crash_items")
    source.sql("CREATE TABLE public.crash_items (id int PRIMARY KEY, v text)")
    source.sql("INSERT INTO public.crash_items SELECT g, 'v' || g FROM generate_series(1, 20) g")
    h = Harness(tmp_path, source, sink_db, "public.crash_items", "public.crash_replica")
    h.mirror.sync()
    h.render("postgres")
    source.sql("UPDATE public.crash_items SET v = 'changed' WHERE id <= 5")
    h.mirror.sync()
    write = ledger_file.SinkLedger.write

    def die_before_commit(self, entry):
        if entry.pending is not None:
            raise RuntimeError("killed before the commit")
        return write(self, entry)

    monkeypatch.setattr(ledger_file.SinkLedger, "write", die_before_commit)
    with pytest.raises(RuntimeError):
        h.render("postgres")
    assert b"changed" not in h.replica_copy()  # rolled back

    def die_after_commit(self, entry):
        write(self, entry)
        if entry.pending is None:
            raise RuntimeError("killed after the commit, before the ledger")

    monkeypatch.setattr(ledger_file.SinkLedger, "write", die_after_commit)
    with pytest.raises(RuntimeError):
        h.render("postgres")
    assert h.replica_copy() == h.source_copy()  # committed
    monkeypatch.setattr(ledger_file.SinkLedger, "write", write)
    retry = h.render("postgres")
    assert retry["status"] == "unchanged"  # the bookkeeping table says the transaction committed
    assert h.replica_copy() == h.source_copy()


def test_a_replica_changed_by_hand_is_rendered_in_full(tmp_path, source, sink_db):
    source.sql("DROP TABLE IF EXISTS public.hand_items")
    source.sql("CREATE TABLE public.hand_items (id int PRIMARY KEY, v text)")
    source.sql("INSERT INTO public.hand_items SELECT g, 'v' || g FROM generate_series(1, 20) g")
    h = Harness(tmp_path, source, sink_db, "public.hand_items", "public.hand_replica")
    h.mirror.sync()
    h.render("postgres")
    sink_db.sql("INSERT INTO public.hand_replica VALUES (1000, 'by hand')")
    source.sql("UPDATE public.hand_items SET v = 'new' WHERE id = 3")
    h.mirror.sync()
    summary = h.render("postgres")
    assert summary["status"] == "full" and "changed outside the pipeline" in summary["reason"]
    assert h.replica_copy() == h.source_copy()
