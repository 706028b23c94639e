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


def test_a_linguistic_collation_an_enum_and_a_domain_are_named():
    problems = key_order_problems(describe(
        CatalogColumn("k", 1, "text", "text", "b", "S", collation="en-US-x-icu"),
        CatalogColumn("m", 2, "mood", "mood", "e", "E"),
        CatalogColumn("d", 3, "dint", "dint", "d", "N", base_type_name="int4"),
        CatalogColumn("v", 4, "text", "text", "b", "S", collation="en_US.UTF-8"), key=("k", "m", "d")))
    assert problems == ["key column k uses the collation 'en-US-x-icu', whose order is linguistic",
                        "key column m is of type mood, which has no order destiny.csv reproduces",
                        "key column d is of type dint, which has no order destiny.csv reproduces"]
