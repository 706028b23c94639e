"""interval text. The oracle is PostgreSQL 15's own output for 3,000 seeded random intervals under every
IntervalStyle (tests/fixtures/types2/pg15-text-oracle.jsonl.gz, made by capture.py); the ISO inputs are
Debezium 3.1.1's, as seen on the real chain."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from cdc_pipeline.pgtext.intervals import format_interval, interval_converter, parse_debezium_interval

ORACLE = Path(__file__).resolve().parents[1] / "fixtures" / "types2" / "pg15-text-oracle.jsonl.gz"
STYLES = ("postgres", "postgres_verbose", "sql_standard", "iso_8601")


def _oracle() -> list[dict]:
    with gzip.open(ORACLE, "rt", encoding="utf-8") as handle:
        return [line for line in map(json.loads, handle) if line["kind"] == "interval"]


def test_the_oracle_covers_extremes_and_mixed_signs():
    values = _oracle()
    assert len(values) > 2000
    assert any(v["months"] < 0 < v["micros"] for v in values)
    assert any(abs(v["micros"]) > 2**62 for v in values)


@pytest.mark.parametrize("style", STYLES)
def test_format_matches_postgresql_for_every_oracle_value(style):
    mismatches = [
        (v["months"], v["days"], v["micros"], v[style], format_interval(v["months"], v["days"], v["micros"], style))
        for v in _oracle()
        if format_interval(v["months"], v["days"], v["micros"], style) != v[style]
    ]
    assert mismatches == []


@pytest.mark.parametrize(("iso", "fields"), [
    # Debezium's Interval.toIsoString(years, months, days, hours, minutes, seconds), as seen on the real chain
    ("P1Y2M3DT4H5M6.78S", (14, 3, 14706780000)),
    ("P-1Y-2M3DT-4H-5M-6.000001S", (-14, 3, -14706000001)),
    ("P0Y0M0DT0H0M0S", (0, 0, 0)),
    ("P0Y0M0DT0H0M-0.5S", (0, 0, -500000)),
    ("P0Y1M-1DT0H0M0.000001S", (1, -1, 1)),
    ("P178000000Y0M0DT0H0M0S", (2136000000, 0, 0)),
    ("P0Y0M-2147483648DT-2147483647H-59M-59.999999S", (0, -2147483648, -7730941132799999999)),
    ("P0Y0M0DT0H0M6.779999999S", (0, 0, 6780000)),  # a double's digits truncated at 9 decimals
    ("P0Y0M0DT0H0M-0.299999999S", (0, 0, -300000)),
])
def test_parse_debezium_iso(iso, fields):
    assert parse_debezium_interval(iso) == fields


@pytest.mark.parametrize("iso", ["PT1S", "P1Y2M", "1 day", "P0Y0M0DT0H0M1,5S", "P0Y0M2147483648DT0H0M0S"])
def test_other_forms_are_errors(iso):
    with pytest.raises(ValueError):
        parse_debezium_interval(iso)


@pytest.mark.parametrize(("style", "expected"), [
    ("postgres", "-1 years -2 mons +3 days -04:05:06.000001"),
    ("postgres_verbose", "@ 1 year 2 mons -3 days 4 hours 5 mins 6.000001 secs ago"),
    ("iso_8601", "P-1Y-2M3DT-4H-5M-6.000001S"),
])
def test_converter_renders_the_source_style(style, expected):
    assert interval_converter(style)("P-1Y-2M3DT-4H-5M-6.000001S") == expected


def test_sql_standard_has_no_converter():
    with pytest.raises(ValueError, match="sql_standard"):
        interval_converter("sql_standard")
