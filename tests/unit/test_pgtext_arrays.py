"""Array text (array_out). The oracle is PostgreSQL 15's ``x::text[]::text`` for 1,500 seeded arrays built
from every quoting case (tests/fixtures/types2/pg15-text-oracle.jsonl.gz)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from cdc_pipeline.pgtext.arrays import array_converter, format_array
from cdc_pipeline.pgtext.scalars import format_int

ORACLE = Path(__file__).resolve().parents[1] / "fixtures" / "types2" / "pg15-text-oracle.jsonl.gz"


def test_format_matches_postgresql_for_every_oracle_array():
    with gzip.open(ORACLE, "rt", encoding="utf-8") as handle:
        arrays = [line for line in map(json.loads, handle) if line["kind"] == "text[]"]
    assert len(arrays) > 1000
    assert [a["text"] for a in arrays] == [format_array(a["elements"]) for a in arrays]


@pytest.mark.parametrize(("elements", "expected"), [
    ([], "{}"),
    ([None], "{NULL}"),
    (["", "NULL", "null", "a b", 'q"', "b\\s", "{", "c,d", "ñ"], '{"","NULL","null","a b","q\\"","b\\\\s","{","c,d",ñ}'),
])
def test_quoting_rules(elements, expected):
    assert format_array(elements) == expected


def test_elements_go_through_the_element_converter():
    assert array_converter(format_int, text_elements=False)([1, None, -3]) == "{1,NULL,-3}"


def test_a_flattened_multidimensional_text_array_is_refused():
    with pytest.raises(ValueError, match="multi-dimensional"):
        array_converter(None, text_elements=True)(["[Ljava.lang.String;@2161a11", "[Ljava.lang.String;@7139449a"])


def test_a_text_that_only_looks_like_java_is_kept():
    assert array_converter(None, text_elements=True)(["[Lx"]) == "{[Lx}"


def test_not_an_array_is_an_error():
    with pytest.raises(ValueError, match="JSON array"):
        array_converter(None, text_elements=True)("x")
