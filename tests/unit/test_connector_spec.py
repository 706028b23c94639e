import json

import pytest

from cdc_pipeline.connector_spec import discover_connector_specs, load_connector_spec
from cdc_pipeline.errors import ConfigError
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "include" / "connectors" / "clientes.json"


def write(tmp_path, config: dict, name="x", **settings) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"name": name, **settings, "config": config}))
    return path


def base_config() -> dict:
    return dict(json.loads(DEFAULT.read_text())["config"])


def test_default_connector_captures_clientes_on_the_prototypes_topic():
    spec = load_connector_spec(DEFAULT)
    assert (spec.name, spec.qualified_table, spec.topic) == ("clientes", "public.clientes", "pgserver1.public.clientes")
    assert spec.slot_name == "debezium_clientes"


def test_source_details_are_filled_in_at_registration_not_kept_in_the_file():
    spec = load_connector_spec(DEFAULT)
    assert "database.password" not in spec.config
    filled = spec.config_for_source(host="h", port=5, user="u", dbname="d")
    # Only a config-provider reference is sent: GET /connectors/<name>/config never shows the password.
    assert filled["database.password"] == "${env:CDC_CAPTURE_PASSWORD}" and filled["database.port"] == "5"
    assert filled["publication.autocreate.mode"] == "disabled"  # registration keeps the publication
    assert spec.config_for_source(host="h", port=5, user="u", dbname="d",
                                  password_reference="${file:/etc/cdc/pg.properties:password}")["database.password"] \
        == "${file:/etc/cdc/pg.properties:password}"
    with pytest.raises(ConfigError, match="not a config-provider reference"):
        spec.config_for_source(host="h", port=5, user="u", dbname="d", password_reference="plain-secret")
    assert "database.password" not in spec.config  # the spec itself is unchanged


def test_a_password_in_the_file_is_refused_with_the_fix(tmp_path):
    config = base_config() | {"database.password": "x"}
    with pytest.raises(ConfigError, match="remove database.password.*cdc_postgres"):
        load_connector_spec(write(tmp_path, config))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("decimal.handling.mode", "precise", "trailing zeros"),
        ("value.converter.schemas.enable", "false", "inline schema"),
        ("slot.drop.on.stop", "true", "discards every change"),
        ("skipped.operations", "t", "TRUNCATE"),
        ("snapshot.mode", "no_data", "take a new snapshot"),
        ("heartbeat.interval.ms", "0", "heartbeat"),
        ("topic.creation.default.cleanup.policy", "compact", "compacted topic.*delete.retention.ms"),
        ("topic.creation.default.cleanup.policy", "delete,compact", "compacted topic"),
    ],
)
def test_settings_that_break_fidelity_are_refused(tmp_path, key, value, message):
    with pytest.raises(ConfigError, match=message):
        load_connector_spec(write(tmp_path, base_config() | {key: value}))


def test_a_connector_captures_a_list_of_tables_each_with_its_topic_and_sinks(tmp_path):
    config = base_config() | {"table.include.list": " public.a , sales.b"}
    spec = load_connector_spec(write(tmp_path, config, sinks=[{"type": "csv"}, {"type": "postgres"}]))
    assert spec.many_tables and spec.table_names == ("public.a", "sales.b")
    scoped = spec.table_specs()
    assert [(s.qualified_table, s.topic) for s in scoped] == [("public.a", "pgserver1.public.a"),
                                                             ("sales.b", "pgserver1.sales.b")]
    assert [s.settings.sinks[1].table for s in scoped] == ["public.a_replica", "public.b_replica"]
    assert {s.name for s in scoped} == {spec.name} and spec.for_table("sales.b") == scoped[1]
    with pytest.raises(ConfigError, match="does not capture 'public.c'.*public.a, sales.b"):
        spec.for_table("public.c")


def test_one_table_keeps_the_connector_spec_as_it_is():
    spec = load_connector_spec(DEFAULT)
    assert not spec.many_tables and spec.table_specs() == [spec]


@pytest.mark.parametrize(("tables", "message"), [
    ("public.(", "neither a schema.table name nor a valid regular expression"),
    ("public.a,public.a", "more than once"),
    ("public.a,", "an empty entry"),
])
def test_table_lists_the_pipeline_cannot_name_are_refused(tmp_path, tables, message):
    with pytest.raises(ConfigError, match=message):
        load_connector_spec(write(tmp_path, base_config() | {"table.include.list": tables}))


def test_one_postgres_target_for_several_tables_is_refused(tmp_path):
    config = base_config() | {"table.include.list": "public.a,public.b"}
    with pytest.raises(ConfigError, match="remove \"table\""):
        load_connector_spec(write(tmp_path, config, sinks=[{"type": "csv"}, {"type": "postgres", "table": "public.x"}]))


def test_invalid_json_names_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{nope")
    with pytest.raises(ConfigError, match="bad.json: not valid JSON"):
        load_connector_spec(path)


def test_duplicate_names_are_refused(tmp_path):
    write(tmp_path, base_config(), name="same")
    (tmp_path / "other.json").write_text(json.dumps({"name": "same", "config": base_config()}))
    with pytest.raises(ConfigError, match="unique"):
        discover_connector_specs(tmp_path)


def test_booleans_and_numbers_are_normalised_to_connect_strings(tmp_path):
    spec = load_connector_spec(write(tmp_path, base_config() | {"tasks.max": 1, "tombstones.on.delete": True}))
    assert spec.config["tasks.max"] == "1" and spec.config["tombstones.on.delete"] == "true"


def test_pipeline_settings_have_safe_defaults():
    settings = load_connector_spec(DEFAULT).settings
    assert (settings.on_data_loss, settings.on_schema_change, settings.max_dead_letters) == ("resnapshot", "resnapshot", 0)
    assert [s.type for s in settings.sinks] == ["csv"] and settings.changelog_retention_days == 30


def test_pipeline_settings_are_read_and_checked(tmp_path):
    spec = load_connector_spec(write(
        tmp_path, base_config(), on_data_loss="fail", on_schema_change="fail", max_dead_letters=5, verify_every="6h",
        sinks=[{"type": "csv"}, {"type": "parquet"}, {"type": "postgres", "table": "public.copy"}]))
    settings = spec.settings
    assert (settings.on_data_loss, settings.max_dead_letters, settings.verify_every_minutes) == ("fail", 5, 360)
    assert [s.name for s in settings.sinks] == ["csv", "parquet", "postgres:public.copy"]
    assert settings.sinks[2].conn_id == "cdc_sink_postgres"


def test_a_connector_names_the_airflow_queue_its_tasks_run_on_or_takes_the_default(tmp_path):
    assert load_connector_spec(write(tmp_path, base_config(), queue="host-a.eu_1")).settings.queue_name == "host-a.eu_1"
    default = load_connector_spec(DEFAULT).settings
    assert (default.queue, default.queue_name) == (None, "default")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"on_data_loss": "ignore"}, "on_data_loss.*resnapshot, fail"),
        ({"max_dead_letters": -1}, "max_dead_letters.*whole number"),
        ({"verify_every": "often"}, "verify_every.*30m"),
        ({"sinks": [{"type": "parquet"}]}, "must include"),
        ({"sinks": [{"type": "excel"}]}, "one of csv, parquet, postgres"),
        ({"colour": "blue"}, "unknown top-level keys"),
        ({"queue": "host a"}, "queue.*letters, digits.*airflow celery worker --queues"),
        ({"queue": ""}, "queue.*Airflow queue name"),
        ({"queue": 7}, "queue.*Airflow queue name"),
    ],
)
def test_bad_pipeline_settings_are_refused_with_the_fix(tmp_path, settings, message):
    with pytest.raises(ConfigError, match=message):
        load_connector_spec(write(tmp_path, base_config(), **settings))


def test_a_compacted_topic_group_is_refused_and_delete_is_accepted(tmp_path):
    with pytest.raises(ConfigError, match="topic.creation.cdc.cleanup.policy"):
        load_connector_spec(write(tmp_path, base_config() | {"topic.creation.cdc.cleanup.policy": "compact"}))
    spec = load_connector_spec(write(tmp_path, base_config() | {"topic.creation.default.cleanup.policy": "delete"}))
    assert spec.config["topic.creation.default.cleanup.policy"] == "delete"


@pytest.mark.parametrize("key, value, named", [
    ("column.exclude.list", "public.clientes.email", '"column.exclude.list"'),
    ("column.include.list", "public.clientes.id", '"column.include.list"'),
    ("column.truncate.to.20.chars", "public.clientes.nombre", '"column.truncate.to.20.chars"'),
    ("column.mask.with.6.chars", "public.clientes.email", '"column.mask.with.6.chars"'),
    ("column.mask.hash.SHA-256.with.salt.x", "public.clientes.email", '"column.mask.hash.SHA-256.with.salt.x"'),
    ("transforms", "unwrap", '"transforms"'),
    ("converters", "boolean", '"converters"'),
    ("message.key.columns", "public.clientes:email", '"message.key.columns"'),
    ("snapshot.select.statement.overrides", "public.clientes", '"snapshot.select.statement.overrides"'),
    ("snapshot.select.statement.overrides.public.clientes", "SELECT * FROM public.clientes WHERE id > 5",
     '"snapshot.select.statement.overrides.public.clientes"'),
    ("binary.handling.mode", "hex", '"binary.handling.mode": "hex" (set "bytes"'),
    ("errors.tolerance", "all", '"errors.tolerance": "all" (set "none"'),
])
def test_settings_that_change_what_debezium_sends_are_refused_naming_them(tmp_path, key, value, named):
    path = write(tmp_path, base_config() | {key: value})
    with pytest.raises(ConfigError) as refused:
        load_connector_spec(path)
    assert named in str(refused.value) and "COPY" in str(refused.value)


def test_data_changing_settings_left_empty_or_at_the_value_the_renderer_reads_are_accepted(tmp_path):
    path = write(tmp_path, base_config() | {"transforms": "", "binary.handling.mode": "BYTES", "errors.tolerance": "none"})
    assert load_connector_spec(path).name


def test_patterns_in_the_table_list_take_the_tables_registration_found_and_send_them_by_name(tmp_path):
    config = base_config() | {"table.include.list": r"public.clientes,sales\.order_.*"}
    path = write(tmp_path, config, name="shop")
    spec = load_connector_spec(path)
    assert spec.patterns == (r"sales\.order_.*",) and spec.many_tables and not spec.expanded
    assert spec.table_names == ("public.clientes",)
    with pytest.raises(ConfigError, match="not expanded yet"):
        spec.config_for_source(host="h", port=1, user="u", dbname="d")
    catalog = ["public.clientes", "sales.order_lines", "sales.ORDER_items", "sales.orders", "public.order_x"]
    expanded = spec.with_matching_tables(catalog)
    assert expanded.table_names == ("public.clientes", "sales.ORDER_items", "sales.order_lines")  # as Debezium: any case
    assert [t.topic for t in expanded.tables][1:] == ["pgserver1.sales.ORDER_items", "pgserver1.sales.order_lines"]
    sent = expanded.config_for_source(host="h", port=1, user="u", dbname="d")["table.include.list"]
    assert sent == "public.clientes,sales.ORDER_items,sales.order_lines"
    with pytest.raises(ConfigError, match="sales.order_a-b.*cannot name a folder"):
        spec.with_matching_tables(["sales.order_a-b"])


def test_a_pattern_connector_reads_the_tables_last_sent_to_kafka_connect_from_its_data_folder(tmp_path):
    from cdc_pipeline.connector_folder import retire_missing_tables
    from cdc_pipeline.sent_tables import record_sent_tables

    path = write(tmp_path, base_config() | {"table.include.list": r"public\.t_.*"}, name="pat")
    data = tmp_path / "data"
    assert load_connector_spec(path, data).tables == ()  # never registered: no table yet
    unexpanded = load_connector_spec(path, data)
    (data / "pat" / "public.t_old").mkdir(parents=True)
    (data / "pat" / "public.t_old" / "runs.sqlite").write_text("")
    assert retire_missing_tables(data, unexpanded) == []  # unknown tables: nothing can have left
    record_sent_tables(data / "pat", "pat", unexpanded.with_matching_tables(["public.t_a", "public.t_b", "public.x"]).table_names)
    known = load_connector_spec(path, data)
    assert known.expanded and known.table_names == ("public.t_a", "public.t_b") and known.qualified_table == "public.t_a"
    assert any("public.t_old left pat" in note for note in retire_missing_tables(data, known))
