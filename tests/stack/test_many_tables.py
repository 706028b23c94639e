"""A connector of several tables on the real stack: one slot, one Debezium task, one topic and one folder per table.

The tables mix what a database holds: every promised type with a composite key and TOASTed values, a table of
orders, and a plain table that is truncated. Each table's destiny.csv ends byte-identical to COPY of that
table; a schema change on one table, a table added to a running connector and a table removed all end
identical with no manual step; a one-table pipeline from before moves into its table's folder and goes on.
The tests of the shared connector ``mt_shop`` run in any order (``--random-order``) and never change its table
list; a test that adds or removes tables has a connector of its own.
"""

from __future__ import annotations

import json
import random
import signal

import pytest

from tests.stack.pipeline_driver import ConnectorDriver, drained_pipeline, write_connector
from tests.stack.workload import create_types_table, run_mixed_workload

pytestmark = pytest.mark.stack

ORDER_BY = {"public.mt_types": "k1, k2", "public.mt_orders": "order_id, line", "public.mt_plain": "id"}


def list_tables(path, tables: list[str]) -> None:
    document = json.loads(path.read_text())
    document["config"]["table.include.list"] = ",".join(tables)
    path.write_text(json.dumps(document, indent=2))


@pytest.fixture(scope="module")
def shop(stack_services, tmp_path_factory):
    """The connector ``mt_shop`` over three tables, first rows in before it registers (its snapshot reads them)."""
    tmp = tmp_path_factory.mktemp("many")
    path = write_connector(tmp / "connectors", "mt_shop", "public.mt_types,public.mt_orders,public.mt_plain", "mtshop")
    driver = ConnectorDriver(stack_services.settings, path, tmp / "data")
    create_types_table(driver.sql, "public.mt_types")
    for table, columns in (("mt_orders", "order_id int, line int, item text, qty numeric(8,2), PRIMARY KEY (order_id, line)"),
                           ("mt_plain", "id int PRIMARY KEY, v text")):
        driver.sql(f"DROP TABLE IF EXISTS public.{table}")
        driver.sql(f"CREATE TABLE public.{table} ({columns})")
    driver.sql("INSERT INTO public.mt_orders SELECT g / 4, g % 4, 'item ' || g, g * 1.25 FROM generate_series(4, 400) g")
    driver.sql("INSERT INTO public.mt_plain SELECT g, 'v' || g FROM generate_series(1, 50) g")
    run_mixed_workload(driver, random.Random(20261206), "public.mt_types", register=driver.register)
    return driver


def test_every_table_ends_identical_with_one_slot_and_one_topic_each(shop):
    expected = shop.converge_tables(ORDER_BY)
    assert shop.destinies() == expected
    # Not empty (the module's other tests change these tables, in any order: the exact counts are theirs).
    assert expected["public.mt_types"].count(b"\n") > 100 and expected["public.mt_orders"].count(b"\n") > 100
    assert shop.sql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s", (shop.spec.slot_name,)) == [(1,)]
    with shop.connect() as connect:
        assert len(connect.status(shop.spec.name).tasks) == 1
    folders = sorted(p.name for p in (shop.data_dir / "mt_shop").iterdir() if p.is_dir())  # none retired
    assert folders == ["public.mt_orders", "public.mt_plain", "public.mt_types"]
    with shop.kafka("test.peek") as kafka:
        topics = set(kafka.admin.list_topics(timeout=10).topics)
    assert {t.topic for t in shop.spec.tables} <= topics


def test_changes_on_every_table_and_a_truncate_on_one_end_identical(shop):
    shop.converge_tables(ORDER_BY)
    shop.sql("UPDATE public.mt_orders SET qty = qty + 1 WHERE order_id % 7 = 0")
    shop.sql("DELETE FROM public.mt_orders WHERE order_id BETWEEN 20 AND 30")
    shop.sql("TRUNCATE public.mt_plain")
    shop.sql("INSERT INTO public.mt_plain SELECT g, 'after truncate ' || g FROM generate_series(100, 120) g")
    shop.sql("UPDATE public.mt_types SET c_int = 7 WHERE k1 % 10 = 0")  # their TOASTed c_text is left unchanged
    expected = shop.converge_tables(ORDER_BY)
    assert shop.destinies() == expected
    assert expected["public.mt_plain"].count(b"after truncate") == 21 and b"v1," not in expected["public.mt_plain"]
    plain_runs = shop.table("public.mt_plain").history.runs.recent_runs(50)
    assert any(r.get("merge_truncated") for r in plain_runs)  # the truncate reached mt_plain


def test_a_quiet_table_costs_no_merge(shop):
    shop.converge_tables(ORDER_BY)
    # An upsert: the row exists only if the truncate test ran before (its rows 100-120).
    shop.sql("INSERT INTO public.mt_plain (id, v) VALUES (100, 'only this one') "
             "ON CONFLICT (id) DO UPDATE SET v = 'only this one again'")
    shop.wait_for_records(1)

    def consumed_plain():
        consumed, merged = shop.run_once()
        return "public.mt_plain" in merged and (consumed, merged)

    from cdc_pipeline.waiting import wait_until

    consumed, merged = wait_until(consumed_plain, what="the update of mt_plain to be consumed", timeout=60, interval=1)
    assert set(merged) == {"public.mt_plain"} and consumed["to_merge"] == ["public.mt_plain"]
    assert shop.destinies() == shop.copies(ORDER_BY)


def last_recoveries(driver) -> dict[str, int | None]:
    return {p.spec.qualified_table: (r.id if (r := p.history.incidents.last_recovery()) else None) for p in driver.pipes}


def test_a_schema_change_on_one_table_rebuilds_it_alone_and_every_table_stays_identical(shop):
    shop.converge_tables(ORDER_BY)
    before = last_recoveries(shop)
    shop.sql("ALTER TABLE public.mt_plain ADD COLUMN w text DEFAULT 'filled'")  # sends no event
    summary = shop.register()
    assert "schema of public.mt_plain changed" in summary["tables"]["public.mt_plain"]["schema_change"]
    expected = shop.converge_tables(ORDER_BY)
    assert shop.destinies() == expected and b"filled" in expected["public.mt_plain"]
    last = shop.table("public.mt_plain").history.incidents.last_recovery()
    assert (last.reason, last.step, last.incremental) == ("schema_change", "promoted", True)
    # Only mt_plain re-snapshotted (Debezium's incremental snapshot of that table): the others have no new rebuild.
    assert {t: r for t, r in last_recoveries(shop).items() if t != "public.mt_plain"} == \
        {t: r for t, r in before.items() if t != "public.mt_plain"}


def test_one_table_re_snapshots_alone_while_it_and_the_others_change(shop):
    """An operator's resnapshot of one table of 3,000 rows (three of Debezium's chunks) while a thread inserts,
    updates and deletes its rows and another table changes too: Debezium reads it chunk by chunk between
    watermarks, the rebuilt state is promoted once the whole read is in the topic, and every table ends
    identical to COPY; no other table rebuilds and the connector's own snapshot is not taken again."""
    from cdc_pipeline.commands import operations
    from tests.stack.workload import BackgroundChanges

    shop.converge_tables(ORDER_BY)
    shop.sql("INSERT INTO public.mt_plain SELECT g, 'bulk ' || g FROM generate_series(1000, 3999) g")
    shop.converge_tables(ORDER_BY)
    before = last_recoveries(shop)
    plain = shop.table("public.mt_plain")
    with BackgroundChanges(shop, "public.mt_plain", seed=7, first_id=20_000, pause=0.02) as changes:
        with shop.kafka() as kafka, shop.connect() as connect:
            result = operations.resnapshot(plain, kafka, connect, origin="test", connector_config=shop.connector_config())
        assert "re-snapshots public.mt_plain alone" in result.message
        shop.sql("UPDATE public.mt_orders SET qty = qty + 2 WHERE order_id % 5 = 0")
        for _ in range(12):  # runs go on while Debezium reads the table
            shop.register()
            shop.run_once()
    assert changes.applied > 50
    expected = shop.converge_tables(ORDER_BY)
    assert shop.destinies() == expected and expected["public.mt_plain"].count(b"bulk ") > 2000
    last = plain.history.incidents.last_recovery()
    assert (last.reason, last.step, last.incremental) == ("operator", "promoted", True)
    assert {t: r for t, r in last_recoveries(shop).items() if t != "public.mt_plain"} == \
        {t: r for t, r in before.items() if t != "public.mt_plain"}


def test_a_confirmation_killed_while_the_connector_is_stopped_is_resumed_by_the_next_registration(shop):
    """Registration stops the connector to confirm a table's incremental snapshot is in the topic; killed there,
    it leaves the connector STOPPED and its marker. The next registration resumes it (no rebuild starts again) and
    the table's rebuild completes."""
    from cdc_pipeline.commands import operations
    from cdc_pipeline.pipeline_lock import CONNECTOR_STOPPED
    from cdc_pipeline.waiting import wait_until
    from tests.stack.crash_step import step_armed_at

    shop.converge_tables(ORDER_BY)
    plain = shop.table("public.mt_plain")
    with shop.kafka() as kafka, shop.connect() as connect:
        operations.resnapshot(plain, kafka, connect, origin="test", connector_config=shop.connector_config())
    rebuilding = plain.history.incidents.active_recovery()

    def killed_confirming() -> bool:
        result = step_armed_at(shop, "register", shop.next_run(), "confirm_snapshot.stopped")
        assert result.returncode in (0, -signal.SIGKILL), result.stderr[-3000:]
        return result.returncode == -signal.SIGKILL  # 0: Debezium has not scanned the table yet

    wait_until(killed_confirming, what="a registration that confirms the snapshot of mt_plain", timeout=180,
               interval=1)
    with shop.connect() as connect:
        assert connect.status(shop.spec.name).state == "STOPPED"
    assert (shop.data_dir / "mt_shop" / CONNECTOR_STOPPED).exists()
    summary = shop.register()
    assert summary["healed"] == "connector mt_shop was left stopped by an interrupted confirm_snapshot: resumed"
    assert plain.history.incidents.active_recovery().id == rebuilding.id  # the same rebuild goes on
    expected = shop.converge_tables(ORDER_BY)
    assert shop.destinies() == expected
    last = plain.history.incidents.last_recovery()
    assert (last.id, last.step, last.incremental) == (rebuilding.id, "promoted", True)


def test_resnapshot_of_every_table_takes_the_connectors_own_snapshot(shop):
    """resnapshot --all-tables (and the fallback of a table whose incremental snapshot never completes): the
    connector's offsets are deleted, Debezium snapshots every table again, each rebuilds aside and ends identical."""
    from cdc_pipeline.commands import operations

    shop.converge_tables(ORDER_BY)
    before = last_recoveries(shop)
    with shop.kafka() as kafka, shop.connect() as connect:
        result = operations.resnapshot(shop.table("public.mt_orders"), kafka, connect, origin="test",
                                       connector_config=shop.connector_config(), whole=True)
    assert "every table of connector mt_shop" in result.message
    rebuilding = {p.spec.qualified_table: p.history.incidents.active_recovery() for p in shop.pipes}
    assert all(r is not None and not r.incremental for r in rebuilding.values()), rebuilding
    shop.sql("UPDATE public.mt_plain SET v = v || ' again' WHERE id % 2 = 0")
    expected = shop.converge_tables(ORDER_BY)
    assert shop.destinies() == expected
    assert all(last_recoveries(shop)[t] != before[t] for t in before)


def test_a_table_added_gets_its_existing_rows_and_a_table_removed_is_retired(stack_services, tmp_path):
    """A connector of its own (the table list changes under it): mt_grow_types (every type, composite key) and
    mt_grow_orders captured, then mt_grow_types out and mt_grow_late in, then mt_grow_types back."""
    path = write_connector(tmp_path / "connectors", "mt_grow", "public.mt_grow_types,public.mt_grow_orders", "mtgrow")
    driver = ConnectorDriver(stack_services.settings, path, tmp_path / "data")
    create_types_table(driver.sql, "public.mt_grow_types")
    for table in ("mt_grow_orders", "mt_grow_late"):
        driver.sql(f"DROP TABLE IF EXISTS public.{table}")
        driver.sql(f"CREATE TABLE public.{table} (id int PRIMARY KEY, v text)")
    driver.sql("INSERT INTO public.mt_grow_orders SELECT g, 'order ' || g FROM generate_series(1, 60) g")
    driver.sql("INSERT INTO public.mt_grow_late SELECT g, 'late ' || g FROM generate_series(1, 30) g")
    run_mixed_workload(driver, random.Random(20261207), "public.mt_grow_types", register=driver.register)
    order_by = {"public.mt_grow_types": "k1, k2", "public.mt_grow_orders": "id", "public.mt_grow_late": "id"}
    assert driver.converge_tables(order_by) == driver.destinies()

    list_tables(path, ["public.mt_grow_orders", "public.mt_grow_late"])  # mt_grow_types out, mt_grow_late in
    grown = ConnectorDriver(driver.settings, path, driver.data_dir, group=driver.group)
    before = last_recoveries(grown)
    summary = grown.register()
    assert "public.mt_grow_late added" in summary["tables_added"] and "snapshotted alone" in summary["tables_added"]
    assert any("public.mt_grow_types left" in note for note in summary["notes"])
    driver.sql("INSERT INTO public.mt_grow_late VALUES (31, 'after the change')")
    expected = grown.converge_tables(order_by)
    assert grown.destinies() == expected and expected["public.mt_grow_late"].count(b"late ") == 30
    assert grown.table("public.mt_grow_late").history.incidents.last_recovery().incremental
    assert {t: r for t, r in last_recoveries(grown).items() if t != "public.mt_grow_late"} == \
        {t: r for t, r in before.items() if t != "public.mt_grow_late"}  # the tables already captured went on
    retired = driver.data_dir / "mt_grow" / "public.mt_grow_types"
    assert (retired / "retired.json").exists() and (retired / "destiny.csv").exists()
    # mt_grow_types changes while nobody captures it, then rejoins while Kafka Connect has forgotten the connector
    # but kept its offsets: Debezium would resume without a snapshot, so the table list last sent to Connect must
    # still tell that mt_grow_types joins.
    driver.sql("DELETE FROM public.mt_grow_types WHERE ctid IN (SELECT ctid FROM public.mt_grow_types LIMIT 3)")
    with driver.connect() as connect:
        connect.delete(driver.spec.name)
    list_tables(path, list(order_by))
    back = ConnectorDriver(driver.settings, path, driver.data_dir, group=driver.group)
    assert "public.mt_grow_types added" in back.register()["tables_added"]
    assert back.converge_tables(order_by) == back.destinies()
    assert not (retired / "retired.json").exists()


def test_a_pattern_captures_the_tables_it_matches_and_follows_tables_created_and_dropped(stack_services, tmp_path):
    """table.include.list "public\\.pt_.*": registration sends Kafka Connect the tables the pattern matches now; a
    table created later joins with its existing rows (snapshotted alone), one dropped is retired; the table list
    the other steps read is the one last sent."""
    from cdc_pipeline.connector_spec import load_connector_spec

    path = write_connector(tmp_path / "connectors", "mt_pattern", r"public\.pt_.*", "mtpat")
    driver = ConnectorDriver(stack_services.settings, path, tmp_path / "data")
    for table in ("pt_a", "pt_b", "pt_c", "other_pt"):
        driver.sql(f"DROP TABLE IF EXISTS public.{table}")
    for table, rows in (("pt_a", 30), ("pt_b", 25), ("other_pt", 5)):
        driver.sql(f"CREATE TABLE public.{table} (id int PRIMARY KEY, v text)")
        driver.sql(f"INSERT INTO public.{table} SELECT g, '{table} ' || g FROM generate_series(1, {rows}) g")
    driver.register()
    assert driver.spec.table_names == ("public.pt_a", "public.pt_b")
    order_by = {"public.pt_a": "id", "public.pt_b": "id"}
    assert driver.converge_tables(order_by) == driver.destinies()
    with driver.connect() as connect:
        assert connect.get_config("mt_pattern")["table.include.list"] == "public.pt_a,public.pt_b"
    driver.sql("CREATE TABLE public.pt_c (id int PRIMARY KEY, v text)")
    driver.sql("INSERT INTO public.pt_c SELECT g, 'pt_c ' || g FROM generate_series(1, 20) g")
    driver.sql("DROP TABLE public.pt_b")
    summary = driver.register()
    assert "public.pt_c added" in summary["tables_added"] and any("public.pt_b left" in n for n in summary["notes"])
    order_by = {"public.pt_a": "id", "public.pt_c": "id"}
    expected = driver.converge_tables(order_by)
    assert driver.destinies() == expected and expected["public.pt_c"].count(b"pt_c ") == 20
    assert (tmp_path / "data" / "mt_pattern" / "public.pt_b" / "retired.json").exists()
    assert load_connector_spec(path, tmp_path / "data").table_names == ("public.pt_a", "public.pt_c")


def test_a_one_table_pipeline_becomes_its_tables_folder_and_keeps_its_history(stack_services, tmp_path):
    single = drained_pipeline(stack_services.settings, tmp_path, "mt_solo", count=40)
    runs_before = [r["run_id"] for r in single.history.runs.recent_runs(100)]
    destiny_before = single.destiny()
    single.sql("DROP TABLE IF EXISTS public.mt_solo_more")
    single.sql("CREATE TABLE public.mt_solo_more (id int PRIMARY KEY, v text)")
    single.sql("INSERT INTO public.mt_solo_more SELECT g, 'more ' || g FROM generate_series(1, 25) g")
    list_tables(single.spec.path, ["public.mt_solo", "public.mt_solo_more"])
    grown = ConnectorDriver(stack_services.settings, single.spec.path, tmp_path / "data", group=single.group)
    grown.runs = single.runs
    summary = grown.register()
    assert any("moved into" in note for note in summary["notes"])
    moved = tmp_path / "data" / "mt_solo" / "public.mt_solo"
    assert grown.table("public.mt_solo").layout.folder == moved
    assert (moved / "destiny.csv").read_bytes() == destiny_before  # the table keeps its file while the others join
    kept = [r["run_id"] for r in grown.table("public.mt_solo").history.runs.recent_runs(100)]
    assert kept[1:] == runs_before and not (tmp_path / "data" / "mt_solo" / "runs.sqlite").exists()
    expected = grown.converge_tables({"public.mt_solo": "id", "public.mt_solo_more": "id"})
    assert grown.destinies() == expected and expected["public.mt_solo_more"].count(b"more ") == 25


def test_a_loss_on_one_tables_topic_fails_that_table_only_and_a_resnapshot_repairs_it(stack_services, tmp_path):
    """on_data_loss=fail: the table whose events Kafka deleted fails its run, naming the command; the other table
    goes on merging. The operator's resnapshot re-snapshots that table alone and both end identical."""
    from cdc_pipeline.commands import operations
    from cdc_pipeline.errors import RunFailedError
    from cdc_pipeline.tasks.finish import finish_tables

    path = write_connector(tmp_path / "connectors", "mt_loss", "public.mt_loss_a,public.mt_loss_b", "mtloss",
                           on_data_loss="fail")
    driver = ConnectorDriver(stack_services.settings, path, tmp_path / "data")
    for table in ("mt_loss_a", "mt_loss_b"):
        driver.sql(f"DROP TABLE IF EXISTS public.{table}")
        driver.sql(f"CREATE TABLE public.{table} (id int PRIMARY KEY, v text)")
        driver.sql(f"INSERT INTO public.{table} SELECT g, '{table} ' || g FROM generate_series(1, 40) g")
    order_by = {"public.mt_loss_a": "id", "public.mt_loss_b": "id"}
    assert driver.converge_tables(order_by) == driver.destinies()
    driver.sql("DELETE FROM public.mt_loss_b WHERE id <= 10")  # deletes Kafka will forget
    driver.wait_for_records(1)
    b_topic = driver.spec.for_table("public.mt_loss_b").topic
    from cdc_pipeline.waiting import wait_until

    wait_until(lambda: driver.published_count() and _records(driver, b_topic) >= 40 + 10 * 2,
               what="the deletes in mt_loss_b's topic", timeout=60, interval=0.5)
    driver.delete_records(b_topic)
    driver.sql("UPDATE public.mt_loss_a SET v = 'still flowing' WHERE id = 1")
    expected_a = driver.copy_table("public.mt_loss_a", "id")

    def a_merged():
        consumed, _ = driver.run_once()
        return driver.destinies()["public.mt_loss_a"] == expected_a and consumed

    consumed = wait_until(a_merged, what="mt_loss_a to go on while mt_loss_b fails", timeout=60, interval=1)
    assert "public.mt_loss_b" in consumed["failed"] and "on_data_loss is 'fail'" in consumed["failed"]["public.mt_loss_b"]
    last_run = driver.table("public.mt_loss_a").history.runs.recent_runs(1)[0]["run_id"]
    with pytest.raises(RunFailedError, match="1/2 tables ok; FAILED public.mt_loss_b.*resnapshot --connector mt_loss "
                                             "--table public.mt_loss_b"):
        finish_tables(driver.pipes, _ref(last_run), {})
    with driver.kafka() as kafka, driver.connect() as connect:
        operations.resnapshot(driver.table("public.mt_loss_b"), kafka, connect, origin="test",
                              connector_config=driver.connector_config())
    rebuilding = [p.spec.qualified_table for p in driver.pipes if p.history.incidents.active_recovery() is not None]
    assert rebuilding == ["public.mt_loss_b"]  # that table alone
    expected = driver.converge_tables(order_by)
    assert driver.destinies() == expected and b"mt_loss_b 5," not in expected["public.mt_loss_b"]


def _ref(run_id: str):
    from cdc_pipeline.history import RunRef

    return RunRef(run_id, 1, 1, "2026-11-24T00:00:00+00:00", "2026-11-24T00:01:00+00:00")


def _records(driver, topic: str) -> int:
    from cdc_pipeline.kafka.topic import topic_partitions, watermarks

    with driver.kafka("test.peek") as kafka:
        return sum(high - low for low, high in (watermarks(kafka, topic, p) for p in topic_partitions(kafka, topic) or []))
