"""Why a type cannot be written as PostgreSQL's text, and what to do instead: one wording for the catalog check
(before the first event) and for the decoder (a schema seen in an event).

Every reason was seen on the real chain (PostgreSQL 15, Debezium 3.1.1, pgoutput); see docs/types.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdc_pipeline.pgtext.intervals import FAITHFUL_STYLES
from cdc_pipeline.pgtext.money import SUPPORTED_LC_MONETARY

if TYPE_CHECKING:
    from cdc_pipeline.source.catalog import CatalogColumn

__all__ = ["refusal_fix", "column_refusal", "SUPPORTED_SCALAR_TYPES"]

# pg_type.typname of the built-in scalar types rendered exactly (interval and money depend on settings).
SUPPORTED_SCALAR_TYPES = frozenset({
    "int2", "int4", "int8", "numeric", "float4", "float8", "text", "varchar", "bpchar", "bool", "date", "time",
    "timestamp", "timestamptz", "uuid", "json", "jsonb", "bytea", "interval", "money", "inet", "cidr",
    "macaddr", "macaddr8", "bit", "xml",
})

_TYPE_CHANGE = "change the column's type (ALTER TABLE ... ALTER COLUMN ... TYPE {to})"

# By PostgreSQL type name (pg_type.typname, or "<element>[]" for arrays) or Debezium logical name.
_REFUSED: dict[str, str] = {
    "varbit": "bit varying arrives as a number in little-endian bytes without its own length, so leading zeros "
              "are lost (B'0001' and B'1' arrive alike); " + _TYPE_CHANGE.format(to="bit(n) or text"),
    "timetz": "time with time zone arrives shifted to UTC (io.debezium.time.ZonedTime), so the offset "
              "PostgreSQL prints is lost; " + _TYPE_CHANGE.format(to="timestamptz, or text"),
    "io.debezium.time.ZonedTime": "time with time zone arrives shifted to UTC, so the offset PostgreSQL prints "
                                  "is lost; " + _TYPE_CHANGE.format(to="timestamptz, or text"),
    "hstore": "hstore arrives as JSON or a map, not hstore text; " + _TYPE_CHANGE.format(to="jsonb or text"),
    "io.debezium.time.MicroDuration": "interval arrives as approximate microseconds (a month is 30.4375 days); "
                                      'set "interval.handling.mode": "string" in the connector file',
    "io.debezium.data.VariableScaleDecimal": "unconstrained numeric under decimal.handling.mode=precise loses "
                                             'trailing zeros; set "decimal.handling.mode": "string"',
    "org.apache.kafka.connect.data.Time": 'time.precision.mode=connect keeps milliseconds only; set '
                                          '"time.precision.mode": "adaptive"',
    "org.apache.kafka.connect.data.Timestamp": 'time.precision.mode=connect keeps milliseconds only; set '
                                               '"time.precision.mode": "adaptive"',
    "numeric[]": "an array holding a NaN element arrives as NULL as a whole; " + _TYPE_CHANGE.format(to="float8[] or text"),
    "date[]": "array elements lose the era (0044-03-15 BC arrives as 0044-03-15) in snapshot and streamed "
              "changes alike; " + _TYPE_CHANGE.format(to="text[]"),
    "timestamp[]": "array elements before 1582-10-15 are shifted by the Julian calendar (0001-01-01 arrives "
                   "two days later); " + _TYPE_CHANGE.format(to="timestamptz[] or text[]"),
    "time[]": "array elements lose their microseconds and 24:00:00 arrives as 00:00:00; "
              + _TYPE_CHANGE.format(to="text[]"),
    "enum[]": "an array holding a NULL element arrives as NULL as a whole; " + _TYPE_CHANGE.format(to="text[]"),
    "array without source type": 'the element type is unknown without the connector setting '
                                 '"column.propagate.source.type": ".*"; add it to the connector file',
}

_DROPPED_ARRAY = ("Debezium leaves arrays of this element type out of its change events altogether; "
                  + _TYPE_CHANGE.format(to="text[]"))
_UNKNOWN = ("it is not a type this pipeline renders exactly (the supported ones are listed in docs/types.md); "
            + _TYPE_CHANGE.format(to="one of them, e.g. text"))


def refusal_fix(key: str, *, lc_monetary: str | None = None, interval_style: str | None = None) -> str | None:
    """Why ``key`` is refused and the fix, or None when it is not refused.

    ``key`` is a lower-case type name, ``<element>[]``, a Debezium logical name, ``money``/``interval``
    (with the setting that makes them unfaithful), or ``unknown``.
    """
    if key == "money" and lc_monetary is not None:
        return (f"money is printed under lc_monetary {lc_monetary!r}, whose format Debezium (pgjdbc) cannot read "
                f"back; set lc_monetary to one of {', '.join(SUPPORTED_LC_MONETARY)} for the database "
                "(ALTER DATABASE ... SET lc_monetary = 'C'), or " + _TYPE_CHANGE.format(to="numeric(20,2)"))
    if key == "interval" and interval_style is not None:
        return (f"under IntervalStyle {interval_style!r} pgjdbc misreads PostgreSQL's interval text (1-2 3 4:05:06 "
                f"loses years, months and days); set IntervalStyle to one of {', '.join(FAITHFUL_STYLES)} for the "
                "database (ALTER DATABASE ... SET IntervalStyle = 'postgres'), or " + _TYPE_CHANGE.format(to="text"))
    if key == "unknown":
        return _UNKNOWN
    if key.endswith("[]") and key not in _REFUSED:
        return _DROPPED_ARRAY
    return _REFUSED.get(key)


def column_refusal(
    column: CatalogColumn, *, interval_style: str, lc_monetary: str, array_elements: frozenset[str]
) -> str | None:
    """Why this catalog column cannot be rendered exactly (with the fix), or None when it can."""
    kind, name = column.type_kind, column.type_name
    if kind == "d":
        if not column.base_type_name or column.base_type_name not in SUPPORTED_SCALAR_TYPES:
            return (f"domain {name} over {column.base_type_name or 'an unknown type'}: only domains over a "
                    f"supported built-in type are written; " + _TYPE_CHANGE.format(to="its base type"))
        name, kind = column.base_type_name, "b"
    if kind == "e":
        return None
    if column.type_category == "A" and kind == "b":
        element, element_kind = column.element_type_name, column.element_type_kind
        if element_kind == "e":
            return _REFUSED["enum[]"]
        if element_kind != "b":
            return _DROPPED_ARRAY
        if element in array_elements:
            return None
        return refusal_fix(f"{element}[]")
    if kind != "b":
        return _UNKNOWN
    if name == "interval" and interval_style not in FAITHFUL_STYLES:
        return refusal_fix("interval", interval_style=interval_style)
    if name == "money" and lc_monetary not in SUPPORTED_LC_MONETARY:
        return refusal_fix("money", lc_monetary=lc_monetary)
    if name in SUPPORTED_SCALAR_TYPES:
        return None
    return _REFUSED.get(name, _UNKNOWN)
