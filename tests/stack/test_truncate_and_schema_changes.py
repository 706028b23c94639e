"""Never silently wrong: TRUNCATE and schema changes end identical to COPY with no manual step.

Each case runs while other changes keep flowing (a background workload), then waits for the pipeline to
converge and compares destiny.csv with COPY byte for byte. Schema changes some of which send no event at
all (ADD COLUMN ... DEFAULT, ALTER COLUMN ... TYPE rewrite existing rows silently) are noticed by comparing
the catalog with what the state was built from, and repaired by the atomic rebuild; with
on_schema_change=fail the run fails instead, naming the command.
"""

from __future__ import annotations

import pytest

from cdc_pipeline.commands import operations
from cdc_pipeline.errors import SchemaChangedError
from tests.stack.pipeline_driver import PipelineDriver, drained_pipeline
from tests.stack.workload import BackgroundChanges

pytestmark = pytest.mark.stack


def make(stack, tmp_path, name: str, **settings) -> PipelineDriver:
    return drained_pipeline(stack.settings, tmp_path, name, columns="id int PRIMARY KEY, v text, c_int integer, c_gone text",
                            rows="g, 'v' || g, g, 'gone ' || g", count=60, **settings)


def test_a_truncate_in_the_middle_of_a_batch_removes_the_rows_before_it_only(stack_services, tmp_path):
    driver = make(stack_services, tmp_path, "trunc_mid")
    before = driver.published_count()
    driver.sql("INSERT INTO public.trunc_mid VALUES (100, 'before', 1, NULL)")
    driver.sql("UPDATE public.trunc_mid SET v = 'touched' WHERE id < 10")
    driver.sql("TRUNCATE public.trunc_mid")
    driver.sql("INSERT INTO public.trunc_mid SELECT g, 'after ' || g, g, NULL FROM generate_series(200, 230) g")
    driver.sql("UPDATE public.trunc_mid SET v = 'after, updated' WHERE id = 205")
    driver.wait_for_records(before + 1 + 9 + 1 + 31 + 1)
    consumed, merged = driver.run_once()  # one batch: inserts, updates, the TRUNCATE, inserts after it
    assert consumed["truncates"] == 1 and consumed["creates"] >= 32
    assert merged["truncated"] >= 60
    expected = driver.copy_csv("id")
    assert driver.destiny().decode() == expected.decode()
    assert b"after, updated" in expected and b"touched" not in expected


def test_a_truncate_as_the_last_event_of_a_batch_and_new_rows_in_the_next(stack_services, tmp_path):
    driver = make(stack_services, tmp_path, "trunc_edge")
    before = driver.published_count()
    driver.sql("UPDATE public.trunc_edge SET v = 'touched' WHERE id <= 5")
    driver.sql("TRUNCATE public.trunc_edge")
    driver.wait_for_records(before + 5 + 1)
    consumed, _ = driver.run_once(max_events=6)  # the batch ends exactly at the TRUNCATE
    assert (consumed["events"], consumed["truncates"]) == (6, 1), consumed
    assert driver.destiny().decode() == driver.copy_csv("id").decode()  # the header only
    assert driver.run_once()[0]["events"] == 0  # nothing after it yet: the boundary is the TRUNCATE itself
    driver.sql("INSERT INTO public.trunc_edge SELECT g, 'again ' || g, g, NULL FROM generate_series(1, 20) g")
    driver.wait_for_records(before + 6 + 20)
    consumed, _ = driver.run_once()  # the batch starts right after the TRUNCATE
    assert (consumed["events"], consumed["creates"], consumed.get("truncates", 0)) == (20, 20, 0), consumed
    expected = driver.copy_csv("id")
    assert driver.destiny().decode() == expected.decode() and expected.count(b"again") == 20


def test_a_truncate_while_changes_flow_then_new_rows(stack_services, tmp_path):
    driver = make(stack_services, tmp_path, "trunc_flow")
    with BackgroundChanges(driver, "public.trunc_flow", seed=3):
        driver.run_once()
        driver.sql("TRUNCATE public.trunc_flow")
        driver.run_once()
        driver.sql("INSERT INTO public.trunc_flow SELECT g, 'again ' || g, g, NULL FROM generate_series(1, 20) g")
        driver.run_once()
    expected = driver.converge("id")
    assert driver.destiny().decode() == expected.decode()
    assert sum(r["truncates"] or 0 for r in driver.history.runs.recent_runs(100)) == 1


SCHEMA_CHANGES = {  # table name -> the change
    "sc_add_default": "ALTER TABLE public.{t} ADD COLUMN c_added integer DEFAULT 7",
    "sc_add_plain": "ALTER TABLE public.{t} ADD COLUMN c_added text",
    "sc_drop": "ALTER TABLE public.{t} DROP COLUMN c_gone",
    "sc_type": "ALTER TABLE public.{t} ALTER COLUMN c_int TYPE numeric(12,2)",
    "sc_rename": "ALTER TABLE public.{t} RENAME COLUMN c_gone TO c_renamed",
}


@pytest.mark.parametrize("table", SCHEMA_CHANGES)
def test_a_schema_change_is_rebuilt_to_the_new_shape_while_changes_flow(stack_services, tmp_path, table):
    driver = make(stack_services, tmp_path, table)
    with BackgroundChanges(driver, f"public.{table}", seed=len(table)):
        driver.run_once()
        driver.sql(SCHEMA_CHANGES[table].format(t=table))
        for _ in range(3):
            driver.register()
            driver.run_once()
    expected = driver.converge("id")
    assert driver.destiny().decode() == expected.decode()
    changes = [r["schema_change"] for r in driver.history.runs.recent_runs(200) if r["schema_change"]]
    assert changes and "rebuilding from a new snapshot" in changes[0]
    assert [r["reason"] for r in driver.history.incidents.recoveries()][-1] == "schema_change"


@pytest.mark.parametrize("table", SCHEMA_CHANGES)
def test_with_on_schema_change_fail_the_run_fails_naming_the_command_which_then_repairs_it(stack_services, tmp_path,
                                                                                          table):
    name = f"{table}_f"
    driver = make(stack_services, tmp_path, name, on_schema_change="fail")
    last_good = driver.destiny()
    with BackgroundChanges(driver, f"public.{name}", seed=len(name)):
        driver.sql(SCHEMA_CHANGES[table].format(t=name))
        with pytest.raises(SchemaChangedError, match=rf"column c_.*python -m cdc_pipeline resnapshot --connector {name}"):
            driver.register()
        before = driver.published_count()
        driver.sql(f"INSERT INTO public.{name} (id, v) VALUES (500, 'new shape')")
        driver.wait_for_records(before + 1)
        with pytest.raises(SchemaChangedError, match=rf"column c_.*on_schema_change.*resnapshot --connector {name}"):
            driver.run_once()
        assert driver.destiny() == last_good  # nothing of the batch was merged
        assert "on_schema_change=fail" in driver.history.runs.recent_runs(1)[0]["schema_change"]
        with driver.kafka() as kafka, driver.connect() as connect:  # the command the refusal names
            operations.resnapshot(driver.pipe, kafka, connect, origin="test",
                                  connector_config=driver.connector_config())
        driver.register()
        driver.run_once()
    expected = driver.converge("id")
    assert driver.destiny().decode() == expected.decode()


def test_a_table_dropped_and_created_again_with_the_same_shape_is_rebuilt(stack_services, tmp_path):
    """A migration that swaps in a copy of the table (or a restore) keeps the name and the columns, but the
    publication loses the table: nothing more would arrive and the rows the swap left out would stay. Its
    identity (OID) changed, so registration rebuilds it as for a schema change."""
    driver = make(stack_services, tmp_path, "sc_replaced")
    driver.sql("DROP TABLE IF EXISTS public.sc_replaced_new")
    driver.sql("CREATE TABLE public.sc_replaced_new (LIKE public.sc_replaced INCLUDING ALL)")
    driver.sql("INSERT INTO public.sc_replaced_new SELECT * FROM public.sc_replaced WHERE id % 2 = 0")
    driver.sql("DROP TABLE public.sc_replaced")
    driver.sql("ALTER TABLE public.sc_replaced_new RENAME TO sc_replaced")
    driver.sql("INSERT INTO public.sc_replaced (id, v) VALUES (500, 'after the swap')")
    summary = driver.register()
    assert "was dropped and created again" in summary["schema_change"]
    expected = driver.converge("id")
    assert driver.destiny().decode() == expected.decode()
    assert b"after the swap" in expected and b"\n1,v1," not in expected
    assert driver.history.incidents.recoveries()[0]["reason"] == "schema_change"
