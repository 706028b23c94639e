"""A pipeline DAG of a test's own: its connector file in the DAG folder, its table, its DAG picked up and
unpaused; afterwards the DAG paused again, the file removed, the connector and its replication slot retired."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import httpx

from tests.stack.pipeline_driver import PipelineDriver, write_connector
from tests.stack.test_sinks_support import retire_connector


@contextlib.contextmanager
def pipeline_dag(airflow_stack, name: str, table: str, prefix: str, create_table: Callable[[PipelineDriver], None],
                 **settings) -> Iterator[PipelineDriver]:
    """Yields the driver of DAG ``cdc_<name>``, unpaused (a paused DAG's triggered runs stay queued)."""
    s = airflow_stack.settings
    path = write_connector(s.connectors_dir, name, table, prefix, **settings)
    driver = PipelineDriver(s, path, s.data_dir)
    dag_id = f"cdc_{name}"
    try:
        driver.sql(f"DROP TABLE IF EXISTS {table}")
        create_table(driver)
        airflow_stack.wait_for_dag(dag_id)
        airflow_stack.set_paused(dag_id, False)
        yield driver
    finally:
        with contextlib.suppress(httpx.HTTPError):  # Airflow may be what the test broke; the rest goes regardless
            airflow_stack.set_paused(dag_id, True)
        path.unlink(missing_ok=True)
        retire_connector(s, name, driver.spec.slot_name)
        driver.sql(f"DROP TABLE IF EXISTS {table}")
