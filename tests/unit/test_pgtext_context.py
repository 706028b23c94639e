"""RenderContext: the source settings and domains a decoding plan depends on."""

from __future__ import annotations

import pytest

from cdc_pipeline.pgtext.context import DEFAULT_CONTEXT, RenderContext
from cdc_pipeline.source.catalog import CatalogColumn, TableDescription


def _column(name, type_name, kind="b", category="N", base=None):
    return CatalogColumn(name=name, attnum=1, format_type=type_name, type_name=type_name, type_kind=kind,
                         type_category=category, base_type_name=base)


def test_defaults_are_postgresql_defaults():
    assert (DEFAULT_CONTEXT.interval_style, DEFAULT_CONTEXT.lc_monetary, DEFAULT_CONTEXT.domains) == ("postgres", "C", ())


def test_from_settings_reads_current_setting_names():
    context = RenderContext.from_settings({"IntervalStyle": "ISO_8601", "lc_monetary": "en_US.UTF-8"})
    assert (context.interval_style, context.lc_monetary) == ("iso_8601", "en_US.UTF-8")


def test_from_description_maps_domains_to_their_base():
    description = TableDescription(
        schema="public", table="t", key_columns=("k",), settings={"IntervalStyle": "postgres_verbose", "lc_monetary": "C"},
        columns=(_column("k", "int4"), _column("m", "dmoney", kind="d", base="money"),
                 _column("n", "dnum", kind="d", base="numeric")))
    context = RenderContext.from_description(description)
    assert context.domains == (("DMONEY", "MONEY"), ("DNUM", "NUMERIC"))
    assert context.base_type("DMONEY") == "MONEY"
    assert context.base_type("INT4") == "INT4"
    assert hash(context) == hash(RenderContext.from_description(description))


def test_unknown_interval_style_is_refused():
    with pytest.raises(ValueError, match="IntervalStyle 'german'"):
        RenderContext(interval_style="german")
