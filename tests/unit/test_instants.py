"""Instants given by people: one parser for the DAG params and the command line."""

import pytest

from cdc_pipeline.errors import ConfigError
from cdc_pipeline.instants import compact, parse_instant


@pytest.mark.parametrize(("text", "iso"), [
    ("2026-11-24", "2026-11-24T00:00:00+00:00"),
    ("2026-11-24T08:00:00Z", "2026-11-24T08:00:00+00:00"),
    ("2026-11-24 09:30+01:00", "2026-11-24T08:30:00+00:00"),
    (" 2026-11-24T08:00:00.5 ", "2026-11-24T08:00:00.500000+00:00"),
])
def test_dates_and_date_times_become_utc(text, iso):
    assert parse_instant(text).isoformat() == iso


def test_nothing_is_none():
    assert parse_instant(None) is None and parse_instant("") is None


@pytest.mark.parametrize("text", ["yesterday", "24/11/2026", "2026-11-24T", "2026-13-01"])
def test_garbage_gets_a_readable_error_with_an_example(text):
    with pytest.raises(ConfigError, match=r"not an ISO date or date-time; write it like 2026-11-24"):
        parse_instant(text, "start_from")


def test_compact_names_files():
    assert compact(parse_instant("2026-11-24T12:00:05+01:00")) == "20261124T110005Z"
