"""Instants given by people (a DAG param, a CLI flag): one parser, one readable error, UTC when no zone is given."""

from __future__ import annotations

from datetime import UTC, datetime

from cdc_pipeline.errors import ConfigError


def parse_instant(value: str | None, what: str = "start_from") -> datetime | None:
    """``2026-11-24``, ``2026-11-24T08:00:00Z``, ``2026-11-24 08:00+01:00`` → an aware UTC datetime; None for empty."""
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).strip())  # Python 3.11 reads a trailing "Z"
    except ValueError as exc:
        raise ConfigError(f"{what} {value!r} is not an ISO date or date-time; write it like 2026-11-24 or "
                          "2026-11-24T08:00:00Z (UTC when no zone is given).") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def compact(moment: datetime) -> str:
    """``20261124T120000Z``: an instant as a file name part."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
