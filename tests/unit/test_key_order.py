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


def icu_key(locale="es", version="153.120.42", format_type="text") -> CatalogColumn:
    return CatalogColumn("k", 1, format_type, "text", "b", "S", collation=f"{locale}-x-icu", icu_locale=locale,
                         icu_collation=f'pg_catalog."{locale}-x-icu"', collation_version=version)


def test_an_icu_key_is_ordered_by_icus_collator_then_its_bytes_and_is_no_problem():
    """Spanish ICU: case and accents are secondary to the letters, ñ sorts after n, and PostgreSQL's tie-break of
    equal strings (the bytes) keeps 'e' + combining accent and 'é' apart, in byte order. (The same orders against
    PostgreSQL's own ORDER BY: tests/stack/test_operations.py.)"""
    from cdc_pipeline.state.sort_keys import KeyEncoder, key_orders

    description = describe(icu_key())
    assert key_order_problems(description) == []
    encoder = KeyEncoder(tuple(key_orders(description).values()))
    words = ["Zumos", "ñu", "nube", "Cafe", "café", "cafe", "e\u0301", "é", "ch", "cz", "Árbol", "azul"]
    keys = encoder.encode_columns([words])
    ordered = [words[i] for i in sorted(range(len(words)), key=lambda i: keys[i])]
    assert ordered == ["Árbol", "azul", "cafe", "Cafe", "café", "ch", "cz", "e\u0301", "é", "nube", "ñu", "Zumos"]
    # Both paths agree (numpy's S array drops the trailing zero bytes, which never decide an order).
    assert [key.rstrip(b"\0") for key in encoder.encode_rows([[w] for w in words])] == [bytes(k) for k in keys]
    assert sorted(words) != ordered  # not the code points' order


def test_an_icu_char_key_compares_without_its_trailing_blanks_and_keys_are_prefix_free():
    from cdc_pipeline.state.key_components import CollatedOrder, component_encoder

    encode = component_encoder(CollatedOrder("character(4)", "und"))
    assert encode("ab  ") == encode("ab")
    values = ["a", "ab", "abc", "A", "", "b"]
    encoded = [encode(v) for v in values]
    assert not any(x != y and y.startswith(x) for x in encoded for y in encoded)


def test_an_icu_collation_change_on_a_key_is_a_schema_change_and_a_description_keeps_it():
    from cdc_pipeline.source.catalog import schema_differences

    code_point = describe(CatalogColumn("k", 1, "text", "text", "b", "S", collation="C"))
    assert schema_differences(code_point, describe(icu_key())) == [
        "key column k's order changed (its ICU collation was none version -, now es version 153.120.42): rows are "
        "ordered by it"]
    assert schema_differences(describe(icu_key()), describe(icu_key(version="153.121"))) == [
        "key column k's order changed (its ICU collation was es version 153.120.42, now es version 153.121): rows "
        "are ordered by it"]
    assert TableDescription.from_json(describe(icu_key()).to_json()) == describe(icu_key())
