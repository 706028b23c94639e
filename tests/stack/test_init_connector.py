"""Start from a database: ``python -m cdc_pipeline init`` surveys a real schema, says why a table cannot be
captured exactly, writes the connector file, and that file runs: every table it lists ends identical to COPY."""

from __future__ import annotations

import json

import pytest

from cdc_pipeline.commands import cli
from tests.stack.pipeline_driver import ConnectorDriver, PipelineDriver, write_connector

pytestmark = pytest.mark.stack

SCHEMA_SQL = """
DROP SCHEMA IF EXISTS init_demo CASCADE;
CREATE SCHEMA init_demo;
CREATE TABLE init_demo.customers (id int PRIMARY KEY, name text, since date);
CREATE TABLE init_demo.order_lines (order_id int, line int, amount numeric(10,2), PRIMARY KEY (order_id, line));
CREATE TABLE init_demo.no_key (id int, v text);
CREATE UNLOGGED TABLE init_demo.scratch (id int PRIMARY KEY);
CREATE TABLE init_demo.shapes (id int PRIMARY KEY, where_ point);
CREATE TABLE init_demo.events (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE init_demo.events_2026 PARTITION OF init_demo.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE VIEW init_demo.big_customers AS SELECT * FROM init_demo.customers WHERE id > 10;
INSERT INTO init_demo.customers SELECT g, 'customer ' || g, DATE '2026-01-01' + g FROM generate_series(1, 30) g;
INSERT INTO init_demo.order_lines SELECT g / 3, g % 3, g * 1.5 FROM generate_series(3, 90) g;
"""


def test_init_lists_every_table_with_its_verdict_and_writes_a_connector_that_runs(stack_services, tmp_path, capsys,
                                                                                  monkeypatch):
    for key, value in stack_services.settings.as_env().items():
        monkeypatch.setenv(key, value)
    helper = PipelineDriver(stack_services.settings, write_connector(tmp_path / "scratch", "init_probe", "public.x", "p"),
                            tmp_path / "unused")
    helper.sql(SCHEMA_SQL)
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    args = ["--connectors-dir", str(connectors), "--data-dir", str(tmp_path / "data"), "init", "--schema", "init_demo",
            "--name", "init_demo_shop"]
    assert cli.main(args) == 0  # a dry run: prints, writes nothing
    out = capsys.readouterr().out
    assert not list(connectors.iterdir())
    lines = {line.split()[1].rstrip(":"): line for line in out.splitlines()
             if line.startswith(("  ok ", "  skipped "))}
    assert lines["init_demo.customers"].lstrip().startswith("ok")
    assert lines["init_demo.order_lines"].lstrip().startswith("ok")
    assert "no primary key" in lines["init_demo.no_key"]
    assert "UNLOGGED" in lines["init_demo.scratch"]
    assert "where_ (point)" in lines["init_demo.shapes"]
    assert "partitioned table" in lines["init_demo.events"]
    assert "a partition of init_demo.events" in lines["init_demo.events_2026"]
    assert "a view, not a table" in lines["init_demo.big_customers"]

    assert cli.main([*args, "--write"]) == 0
    path = connectors / "init_demo_shop.json"
    document = json.loads(path.read_text())
    assert document["config"]["table.include.list"] == "init_demo.customers,init_demo.order_lines"
    assert cli.main([*args, "--write"]) == 1  # an existing file is kept
    assert "exists; pass --force" in capsys.readouterr().err

    driver = ConnectorDriver(stack_services.settings, path, tmp_path / "data")
    order_by = {"init_demo.customers": "id", "init_demo.order_lines": "order_id, line"}
    expected = driver.converge_tables(order_by)
    assert driver.destinies() == expected and expected["init_demo.customers"].count(b"customer ") == 30
