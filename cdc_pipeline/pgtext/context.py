"""The source settings that change the text PostgreSQL prints for some types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cdc_pipeline.source.catalog import TableDescription

__all__ = ["RenderContext", "DEFAULT_CONTEXT", "INTERVAL_STYLES"]

INTERVAL_STYLES = ("postgres", "postgres_verbose", "sql_standard", "iso_8601")


@dataclass(frozen=True, slots=True)
class RenderContext:
    """``IntervalStyle`` and ``lc_monetary`` of the source, as ``current_setting()`` reports them, and the
    table's domains (``(DOMAIN, BASE)`` pairs of upper-case type names, as Debezium spells them in
    ``__debezium.source.column.type``) so a domain's values get its base type's text.

    Frozen and hashable: decoding plans are cached per (schema, context).
    """

    interval_style: str = "postgres"
    lc_monetary: str = "C"
    domains: tuple[tuple[str, str], ...] = ()

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

    @classmethod
    def from_description(cls, description: TableDescription) -> RenderContext:
        """From the catalog description: its settings and the base type of each domain column."""
        context = cls.from_settings(description.settings)
        domains = sorted({
            (column.type_name.upper(), column.base_type_name.upper())
            for column in description.columns
            if column.type_kind == "d" and column.base_type_name
        })
        return cls(context.interval_style, context.lc_monetary, tuple(domains))

    def base_type(self, source_type: str) -> str:
        """The built-in type behind ``source_type`` (itself unless it is one of the table's domains)."""
        for domain, base in self.domains:
            if domain == source_type:
                return base
        return source_type


DEFAULT_CONTEXT = RenderContext()
