"""A connector of several tables through the real Airflow: one DAG, register and consume once, the mapped
``table`` group merging each table that has something new, one line per table on the run's note."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import httpx
import pytest

from cdc_pipeline.waiting import WaitTimeout, wait_until
from tests.airflow.test_dag_end_to_end import run_dag
from tests.stack.pipeline_driver import ConnectorDriver, write_connector
from tests.stack.test_sinks_support import retire_connector

pytestmark = pytest.mark.airflow

DAG_ID = "cdc_af_shop"
# The categories are keyed by a name under a Spanish ICU collation: ordered as ORDER BY orders it, not by code point.
ORDER_BY = {"public.af_shop_items": "id", "public.af_shop_orders": "order_id, line", "public.af_shop_categories": "name"}
TABLES = ", ".join(ORDER_BY)


@pytest.fixture(scope="module")
def shop(airflow_stack):
    s = airflow_stack.settings
    path = write_connector(s.connectors_dir, "af_shop", ",".join(ORDER_BY), "afshop", sinks=[{"type": "csv"},
                                                                                           {"type": "parquet"}])
    driver = ConnectorDriver(s, path, s.data_dir)
    driver.sql(f"DROP TABLE IF EXISTS {TABLES}")
    driver.sql("CREATE TABLE public.af_shop_items (id int PRIMARY KEY, name text, price numeric(10,2))")
    driver.sql("CREATE TABLE public.af_shop_orders (order_id int, line int, item int, PRIMARY KEY (order_id, line))")
    driver.sql("INSERT INTO public.af_shop_items SELECT g, 'item ' || g, g * 0.5 FROM generate_series(1, 60) g")
    driver.sql("INSERT INTO public.af_shop_orders SELECT g / 3, g % 3, g % 60 + 1 FROM generate_series(3, 300) g")
    driver.sql('CREATE TABLE public.af_shop_categories (name text COLLATE "es-x-icu" PRIMARY KEY, items int)')
    driver.sql("INSERT INTO public.af_shop_categories VALUES ('Zumos', 1), ('ñame', 2), ('nueces', 3), ('Árboles', 4), "
               "('azúcar', 5), ('café', 6), ('Cafe', 7), ('chocolate', 8)")
    try:
        airflow_stack.wait_for_dag(DAG_ID)
        airflow_stack.set_paused(DAG_ID, False)
        yield driver
    finally:
        with contextlib.suppress(httpx.HTTPError):
            airflow_stack.set_paused(DAG_ID, True)
        path.unlink(missing_ok=True)
        retire_connector(s, "af_shop", driver.spec.slot_name)
        driver.sql(f"DROP TABLE IF EXISTS {TABLES}")


def drain(airflow_stack, driver: ConnectorDriver, *, at_least_one_run: bool = True) -> list[str]:
    """Trigger runs until every table equals COPY (none when ``at_least_one_run`` is off and they already do)."""
    run_ids: list[str] = []
    if not at_least_one_run and driver.destinies() == driver.copies(ORDER_BY):
        return run_ids

    def identical() -> bool:
        run_ids.append(run_dag(airflow_stack, DAG_ID))
        return driver.destinies() == driver.copies(ORDER_BY)

    with contextlib.suppress(WaitTimeout):  # the comparison below shows what differs
        wait_until(identical, what="every table of af_shop to equal COPY", timeout=300, interval=0)
    return run_ids


def mapped(airflow_stack, run_id: str) -> dict[tuple[str, int], str]:
    return {(ti["task_id"], ti["map_index"]): ti["state"] for ti in airflow_stack.task_instances(DAG_ID, run_id)}


def runs_ended_since(airflow_stack, instant: datetime) -> list[str]:
    """The DAG's runs that ended after ``instant`` (or still run), oldest first. The DAG is unpaused: a scheduled
    run, even one started just before a change, may merge it before the runs a test triggers."""
    runs = airflow_stack.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns",
                                 params={"limit": 100, "order_by": "start_date"}).json()["dag_runs"]
    return [run["dag_run_id"] for run in runs
            if not run.get("end_date") or datetime.fromisoformat(run["end_date"]) >= instant]


def test_every_table_is_merged_by_its_own_mapped_task_and_ends_identical(airflow_stack, shop):
    # A change in every table, so each gets a merge of its own whatever this module's tests ran before it.
    drain(airflow_stack, shop, at_least_one_run=False)
    changed_at = datetime.now(UTC)
    shop.sql("UPDATE public.af_shop_items SET price = price + 1 WHERE id = 1")
    shop.sql("UPDATE public.af_shop_orders SET item = item + 1 WHERE order_id = 1 AND line = 1")
    shop.sql("UPDATE public.af_shop_categories SET items = items + 1 WHERE name = 'café'")
    run_ids = drain(airflow_stack, shop)
    assert shop.destinies() == shop.copies(ORDER_BY)
    for pipe in shop.pipes:  # the parquet sink rendered per table, in the table's folder
        assert pipe.layout.sink_file("parquet").exists(), pipe.layout.folder
    # Each table's merge and sink ran as a mapped instance named by its table (the grid shows the name).
    states: dict[tuple[str, str], set[str]] = {}
    for run_id in runs_ended_since(airflow_stack, changed_at):
        for ti in airflow_stack.task_instances(DAG_ID, run_id):
            if ti["task_id"] in ("table.merge_batch", "table.sink_parquet"):
                states.setdefault((ti["task_id"], ti["rendered_map_index"]), set()).add(ti["state"])
    for table in ORDER_BY:
        assert "success" in states.get(("table.merge_batch", table), set()), (table, states)
        assert "success" in states.get(("table.sink_parquet", table), set()), (table, states)
    note = airflow_stack.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_ids[-1]}").json()["note"]
    assert note.startswith("3/3 tables ok"), note
    categories = shop.destinies()["public.af_shop_categories"]
    assert categories != shop.copy_table("public.af_shop_categories", 'name COLLATE "C"')  # not code-point order


def test_a_change_on_one_table_maps_one_merge_only(airflow_stack, shop):
    drain(airflow_stack, shop, at_least_one_run=False)
    updated_at = datetime.now(UTC)
    shop.sql("UPDATE public.af_shop_items SET price = price + 1 WHERE id <= 5")
    drain(airflow_stack, shop)
    assert shop.destinies() == shop.copies(ORDER_BY)
    # Any run that ended after the update may hold it; the earliest of them that merged the items table did.
    since = runs_ended_since(airflow_stack, updated_at)
    merged = [run_id for run_id in since if ("table.merge_batch", 0) in mapped(airflow_stack, run_id)]
    assert merged, "no run merged the update"
    first = mapped(airflow_stack, merged[0])
    assert ("table.merge_batch", 1) not in first  # the quiet table got no task
    log = airflow_stack.task_log(DAG_ID, merged[0], "table.merge_batch", 1, map_index=0)
    assert "merge: 5 events" in log and "af_shop_items" in log


def test_the_dashboard_shows_each_table_and_opens_one(airflow_stack, shop, page, shots):
    """In Chromium: the connector's CDC dashboard tab lists both tables with their state; picking one shows its
    status strip and its runs; the pipelines list has one row per table."""
    from tests.airflow.test_dashboard_browser import assert_fits_the_window, expect, shoot

    drain(airflow_stack, shop, at_least_one_run=False)
    page.goto(f"{airflow_stack.base_url}/dags/{DAG_ID}")
    page.get_by_role("link", name="CDC dashboard").click()
    frame = page.frame_locator("iframe[title='CDC dashboard']")
    overview = frame.locator("table.overview")
    expect(overview).to_be_visible()
    for table in ORDER_BY:
        expect(overview.get_by_role("link", name=table)).to_be_visible()
    expect(overview).to_contain_text("OK")
    shoot(page, shots, "many-tables-connector")
    overview.get_by_role("link", name="public.af_shop_orders").click()
    expect(frame.locator("header.top h1")).to_contain_text("public.af_shop_orders")
    expect(frame.locator("#strip .cell[data-key=state]")).to_be_visible()
    expect(frame.locator("table.runs tbody tr").first).to_be_visible()
    assert_fits_the_window(page)
    page.goto(f"{airflow_stack.base_url}/cdc/pipelines")
    for table in ORDER_BY:
        expect(page.get_by_role("link", name=f"af_shop/{table}")).to_be_visible()
    shoot(page, shots, "many-tables-pipelines-list")


from tests.airflow.test_dashboard_browser import browser, page, shots  # noqa: E402,F401 - the browser's fixtures
