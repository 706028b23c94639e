"""schema_differences: what changes destiny.csv, including a table dropped and created again under its name."""

from __future__ import annotations

import dataclasses

from cdc_pipeline.source.catalog import CatalogColumn, TableDescription, schema_differences

ID = CatalogColumn("id", 1, "integer", "int4", "b", "N", not_null=True)
NAME = CatalogColumn("name", 2, "text", "text", "b", "S")


def describe(*columns: CatalogColumn, oid: int | None = 16384) -> TableDescription:
    return TableDescription("public", "t", tuple(columns), ("id",), {}, oid=oid)


def test_the_same_table_has_no_difference():
    assert schema_differences(describe(ID, NAME), describe(ID, NAME)) == []


def test_a_table_replaced_with_the_same_shape_is_a_change_naming_both_identities():
    changes = schema_differences(describe(ID, NAME), describe(ID, NAME, oid=16999))
    assert changes == ["public.t was dropped and created again (relation OID 16384 is now 16999): changes made "
                       "meanwhile were never captured"]


def test_a_description_from_before_oids_were_recorded_is_compared_by_its_columns_only():
    assert schema_differences(describe(ID, NAME, oid=None), describe(ID, NAME, oid=16999)) == []
    assert schema_differences(describe(ID, NAME, oid=None), describe(ID, oid=16999)) == ["column name (text) dropped"]


def test_the_oid_survives_the_json_the_state_and_table_json_keep():
    described = describe(ID, NAME)
    assert TableDescription.from_json(described.to_json()) == described
    legacy = described.to_json()
    del legacy["oid"]
    assert TableDescription.from_json(legacy) == dataclasses.replace(described, oid=None)
