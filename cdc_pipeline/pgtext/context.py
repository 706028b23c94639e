"""The source settings that change the text PostgreSQL prints for some types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["RenderContext", "DEFAULT_CONTEXT", "INTERVAL_STYLES"]

INTERVAL_STYLES = ("postgres", "postgres_verbose", "sql_standard", "iso_8601")


@dataclass(frozen=True, slots=True)
class RenderContext:
    """``IntervalStyle`` and ``lc_monetary`` of the source, as ``current_setting()`` reports them.

    Frozen and hashable: decoding plans are cached per (schema, context).
    """

    interval_style: str = "postgres"
    lc_monetary: str = "C"

    def __post_init__(self) -> None:
        if self.interval_style not in INTERVAL_STYLES:
            raise ValueError(
                f"IntervalStyle {self.interval_style!r} is not one of {', '.join(INTERVAL_STYLES)} "
                "(PostgreSQL's own values, lower case as current_setting() reports them)"
            )

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> RenderContext:
        """From ``TableDescription.settings`` (``IntervalStyle``, ``lc_monetary``); missing ones keep the default."""
        return cls(
            interval_style=str(settings.get("IntervalStyle", "postgres")).lower(),
            lc_monetary=str(settings.get("lc_monetary", "C")),
        )


DEFAULT_CONTEXT = RenderContext()
