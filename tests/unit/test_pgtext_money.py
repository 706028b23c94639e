"""money text. The oracle is PostgreSQL 15's own output for 1,000 seeded amounts under each supported
lc_monetary (tests/fixtures/types2/pg15-text-oracle.jsonl.gz); the inputs are Debezium 3.1.1's two forms."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from cdc_pipeline.pgtext.money import conventions_for, format_money_cents, money_converter, parse_debezium_money

ORACLE = Path(__file__).resolve().parents[1] / "fixtures" / "types2" / "pg15-text-oracle.jsonl.gz"


def _oracle() -> list[dict]:
    with gzip.open(ORACLE, "rt", encoding="utf-8") as handle:
        return [line for line in map(json.loads, handle) if line["kind"] == "money"]


@pytest.mark.parametrize("locale", ["C", "C.UTF-8", "en_US.UTF-8"])
def test_format_matches_postgresql_for_every_oracle_amount(locale):
    conventions = conventions_for(locale)
    values = _oracle()
    assert len(values) > 900
    assert [v[locale] for v in values] == [format_money_cents(v["cents"], conventions) for v in values]


@pytest.mark.parametrize(("raw", "cents"), [
    # streamed changes: BigDecimal.toPlainString, exact
    ("0.10", 10), ("-0.01", -1), ("1000000.00", 100000000), ("-92233720368547758.08", -9223372036854775808),
    ("92233720368547758.07", 9223372036854775807),
    # snapshot reads: Double.toString of pgjdbc's double
    ("0.1", 10), ("0.0", 0), ("1000000.0", 100000000), ("1.234567890123456E13", 1234567890123456),
    ("-7.036874417766399E13", -7036874417766399),
])
def test_both_debezium_forms_give_the_stored_cents(raw, cents):
    assert parse_debezium_money(raw, 2) == cents


@pytest.mark.parametrize("raw", ["9.223372036854776E16", "-9.223372036854776E16", "1.2345678901234568E16",
                                 "7.0368744177664E13"])
def test_a_snapshot_double_too_large_for_cents_is_refused(raw):
    with pytest.raises(ValueError, match="2\\^46"):
        parse_debezium_money(raw, 2)


def test_converter_formats_under_the_locale():
    convert = money_converter("en_US.UTF-8")
    assert convert("-1234.56") == "-$1,234.56"
    assert convert("1.234567890123456E13") == "$12,345,678,901,234.56"


@pytest.mark.parametrize("raw", ["$1.00", "", "NaN", 1.5])
def test_other_values_are_errors(raw):
    with pytest.raises(ValueError):
        money_converter("C")(raw)


def test_unsupported_locale_has_no_converter():
    with pytest.raises(ValueError, match="de_DE.UTF-8"):
        money_converter("de_DE.UTF-8")
