"""Registration refuses a key whose ORDER BY destiny.csv cannot reproduce, unless the connector file accepts
code-point order for such keys."""

from __future__ import annotations

from cdc_pipeline.source.catalog import CatalogColumn, TableDescription
from cdc_pipeline.tasks.register import key_order_problems


def describe(*columns: CatalogColumn, key=("k",)) -> TableDescription:
    return TableDescription("public", "t", tuple(columns), key, {})


def test_byte_order_keys_have_no_problem():
    assert key_order_problems(describe(CatalogColumn("k", 1, "text", "text", "b", "S", collation="C"))) == []
    assert key_order_problems(describe(CatalogColumn("k", 1, "integer", "int4", "b", "N"))) == []
    assert key_order_problems(describe(CatalogColumn("k", 1, "text", "text", "b", "S", collation="C.UTF-8"))) == []


def test_a_linguistic_collation_and_a_type_without_an_order_are_named_enums_and_domains_are_not():
    problems = key_order_problems(describe(
        CatalogColumn("k", 1, "text", "text", "b", "S", collation="en-US-x-icu"),
        CatalogColumn("m", 2, "mood", "mood", "e", "E", enum_labels=("sad", "ok", "happy")),
        CatalogColumn("d", 3, "dint", "dint", "d", "N", base_type_name="int4", order_type="integer"),
        CatalogColumn("r", 4, "int4range", "int4range", "r", "R"),
        CatalogColumn("v", 5, "text", "text", "b", "S", collation="en_US.UTF-8"), key=("k", "m", "d", "r")))
    assert problems == ["key column k uses the collation 'en-US-x-icu', whose order is linguistic",
                        "key column r is of type int4range, which has no order destiny.csv reproduces"]


def test_an_enum_key_orders_by_its_declared_labels_and_a_domain_by_its_base_type():
    from cdc_pipeline.state.sort_keys import KeyEncoder, key_orders

    description = describe(CatalogColumn("m", 1, "mood", "mood", "e", "E", enum_labels=("sad", "ok", "happy")),
                           CatalogColumn("d", 2, "dnum", "dnum", "d", "N", order_type="numeric(6,2)"), key=("m", "d"))
    orders = key_orders(description)
    assert list(orders.values()) == ["mood", "numeric(6,2)"] and orders["m"].labels == ("sad", "ok", "happy")
    rows = [("sad", "10.5"), ("sad", "9"), ("happy", "-1"), ("ok", "100"), ("ok", "2")]
    encoded = KeyEncoder(tuple(orders.values())).encode_rows(rows)
    assert [row for _, row in sorted(zip(encoded, rows))] == [("sad", "9"), ("sad", "10.5"), ("ok", "2"), ("ok", "100"),
                                                             ("happy", "-1")]


def test_a_label_the_state_does_not_know_fails_naming_the_change():
    import pytest

    from cdc_pipeline.errors import BatchFileError
    from cdc_pipeline.state.sort_keys import KeyEncoder, key_orders

    description = describe(CatalogColumn("k", 1, "mood", "mood", "e", "E", enum_labels=("sad", "ok")))
    with pytest.raises(BatchFileError, match="'meh' is not a label of enum mood.*ALTER TYPE"):
        KeyEncoder(tuple(key_orders(description).values())).encode_rows([("meh",)])


def test_labels_added_to_a_key_enum_are_a_schema_change_and_a_description_keeps_them():
    from cdc_pipeline.source.catalog import schema_differences

    before = describe(CatalogColumn("k", 1, "mood", "mood", "e", "E", enum_labels=("sad", "ok")))
    after = describe(CatalogColumn("k", 1, "mood", "mood", "e", "E", enum_labels=("sad", "meh", "ok")))
    assert schema_differences(before, after) == [
        "key column k's order changed (its enum labels were ['sad', 'ok'], now ['sad', 'meh', 'ok']): rows are ordered by it"]
    assert TableDescription.from_json(after.to_json()) == after
