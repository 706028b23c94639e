"""The local broker keeps memory only: after it restarts, a re-snapshot brings destiny.csv back in step.

Runs last among the stack tests (file order), because it restarts the session's broker.
"""

from __future__ import annotations

import pytest

from cdc_pipeline import cli
from tests.stack.pipeline_driver import PipelineDriver, write_connector

pytestmark = pytest.mark.stack


def test_resnapshot_rebuilds_destiny_after_the_broker_lost_its_data(stack_services, tmp_path):
    s = stack_services.settings
    folder = tmp_path / "connectors"
    folder.mkdir()
    driver = PipelineDriver(s, write_connector(folder, "rs_items", "public.rs_items", "rs"), tmp_path / "data")
    driver.sql("DROP TABLE IF EXISTS public.rs_items")
    driver.sql("CREATE TABLE public.rs_items (id int PRIMARY KEY, v text)")
    driver.sql("INSERT INTO public.rs_items SELECT g, 'v' || g FROM generate_series(1, 10) g")
    driver.register()
    expected = driver.drain_until_equal("id")
    assert driver.destiny() == expected

    stack_services.stop(["broker"])
    stack_services.start(["broker"])  # every topic and committed offset is gone
    driver.sql("INSERT INTO public.rs_items SELECT g, 'after ' || g FROM generate_series(11, 15) g")
    driver.sql("UPDATE public.rs_items SET v = 'changed' WHERE id IN (2, 12)")
    driver.sql("DELETE FROM public.rs_items WHERE id IN (3, 13)")

    code = cli.main([
        "--data-dir", str(tmp_path / "data"), "--connectors-dir", str(folder), "resnapshot", "--connector", "rs_items",
        "--connect-url", s.connect_url, "--bootstrap-servers", s.kafka_bootstrap, "--group-prefix", "test", "--yes",
    ])
    assert code == 0
    assert list((tmp_path / "data").glob("rs_items.before-reset-*/destiny.csv"))
    expected = driver.drain_until_equal("id")
    assert driver.destiny().decode() == expected.decode()
    assert b"changed" in expected and b"\n3," not in expected
