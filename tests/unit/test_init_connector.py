"""The connector file ``init`` writes: the shipped settings, the connector's own names, checked as the DAGs check it."""

from __future__ import annotations

import json

import pytest

from cdc_pipeline.connector_spec import load_connector_spec
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.commands.init_connector import TableVerdict, write_connector_file


def test_the_written_file_captures_the_tables_under_the_connectors_own_slot_and_prefix(tmp_path):
    path = write_connector_file(tmp_path, "Sales-EU", ["sales.orders", "sales.lines"])
    spec = load_connector_spec(path)
    assert spec.table_names == ("sales.orders", "sales.lines") and spec.many_tables
    assert spec.slot_name == "debezium_sales_eu" and spec.config["publication.name"] == "debezium_sales_eu"
    assert spec.topic == "Sales-EU.sales.orders"
    assert json.loads(path.read_text())["config"]["decimal.handling.mode"] == "string"  # the shipped settings


def test_an_existing_file_is_kept_unless_forced(tmp_path):
    write_connector_file(tmp_path, "shop", ["public.a"])
    with pytest.raises(ConfigError, match="exists; pass --force"):
        write_connector_file(tmp_path, "shop", ["public.b"])
    assert load_connector_spec(write_connector_file(tmp_path, "shop", ["public.b"], overwrite=True)).table == "b"


@pytest.mark.parametrize(("name", "tables", "message"), [
    ("shop", [], "no table to capture"),
    ("bad name", ["public.a"], "may hold only"),
])
def test_nothing_to_capture_or_a_bad_name_is_refused(tmp_path, name, tables, message):
    with pytest.raises(ConfigError, match=message):
        write_connector_file(tmp_path, name, tables)
    assert not list(tmp_path.iterdir())


def test_a_verdict_line_says_ok_or_why_not():
    assert TableVerdict("public.a", 10).line() == "  ok       public.a (~10 rows)"
    assert TableVerdict("public.b", 0, ("no primary key", "UNLOGGED")).line() == \
        "  skipped  public.b: no primary key; UNLOGGED"
