"""The Parquet sink's type mapping: one PostgreSQL column (its catalog description) -> one Arrow type.

The issue's list is followed exactly (smallint -> int16 ... bytea -> binary); types outside it get a faithful
Arrow type where one exists (money -> decimal128(19,2), one-dimensional arrays -> list<element>) and the
exact PostgreSQL text otherwise (interval, inet, bit, xml, enums). A value a type cannot hold (a date's
``infinity``, a numeric(p,s) ``NaN``, ``24:00:00``) becomes null and is counted in the file's metadata
(:mod:`cdc_pipeline.sinks.arrow_convert`). The table is in docs/types.md ("Parquet").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

from cdc_pipeline.source.catalog import CatalogColumn, TableDescription

# Converter kinds (cdc_pipeline.sinks.arrow_convert) and the Arrow type of each base type, by the base name that
# format_type prints (typmod removed) and by pg_type.typname (domains name their base by typname).
_SCALARS: dict[str, tuple[str, pa.DataType]] = {}
for _names, _kind, _type in (
    (("smallint", "int2"), "int", pa.int16()),
    (("integer", "int", "int4"), "int", pa.int32()),
    (("bigint", "int8"), "int", pa.int64()),
    (("real", "float4"), "float", pa.float32()),
    (("double precision", "float8"), "float", pa.float64()),
    (("boolean", "bool"), "bool", pa.bool_()),
    (("date",), "date", pa.date32()),
    (("time without time zone", "time"), "time", pa.time64("us")),
    (("timestamp without time zone", "timestamp"), "timestamp", pa.timestamp("us")),
    (("timestamp with time zone", "timestamptz"), "timestamptz", pa.timestamp("us", tz="UTC")),
    (("bytea",), "binary", pa.binary()),
    (("money",), "money", pa.decimal128(19, 2)),
):
    for _name in _names:
        _SCALARS[_name] = (_kind, _type)

# Largest precision each Arrow decimal holds; Parquet also needs 0 <= scale <= precision.
_DECIMAL128_MAX = 38
_DECIMAL256_MAX = 76
_TYPMOD = re.compile(r"\(([^)]*)\)")


@dataclass(frozen=True)
class ArrowColumn:
    """How one column is written: its Arrow type and the converter that makes it from COPY text."""

    name: str
    pg_type: str                      # format_type, kept in the Parquet field's metadata
    kind: str                         # converter: string, int, float, decimal, bool, date, time, timestamp, ...
    arrow_type: pa.DataType
    element: ArrowColumn | None = None  # a list's element

    def field(self) -> pa.Field:
        return pa.field(self.name, self.arrow_type, nullable=True, metadata={"pg_type": self.pg_type})


def arrow_column(column: CatalogColumn) -> ArrowColumn:
    """The mapping of one column (see the module docstring and docs/types.md)."""
    pg_type = column.format_type
    if pg_type.endswith("[]") or column.type_category == "A":
        element_type = pg_type[:-2] if pg_type.endswith("[]") else (column.element_type_name or "text")
        element = _scalar(column.name, element_type, kind_of_type=column.element_type_kind or "b",
                          base_type_name=None)
        return ArrowColumn(column.name, pg_type, "list", pa.list_(element.arrow_type), element)
    return _scalar(column.name, pg_type, kind_of_type=column.type_kind, base_type_name=column.base_type_name)


def arrow_columns(description: TableDescription) -> tuple[ArrowColumn, ...]:
    return tuple(arrow_column(c) for c in description.columns)


def arrow_schema(description: TableDescription, metadata: dict[str, str] | None = None) -> pa.Schema:
    """The Parquet file's schema: one field per column, each with its PostgreSQL type as field metadata."""
    return pa.schema([c.field() for c in arrow_columns(description)], metadata=metadata)


def _scalar(name: str, pg_type: str, *, kind_of_type: str, base_type_name: str | None) -> ArrowColumn:
    if kind_of_type == "e":
        return ArrowColumn(name, pg_type, "string", pa.string())  # an enum's label
    if kind_of_type == "d" and base_type_name:
        # A domain: its base type by typname. The base's typmod is not in the description, so a domain over
        # numeric(p,s) is written as the exact text, like an unconstrained numeric.
        base = _SCALARS.get(base_type_name.lower())
        if base is None:
            return ArrowColumn(name, pg_type, "string", pa.string())
        return ArrowColumn(name, pg_type, base[0], base[1])
    normalized = _base_name(pg_type)
    if normalized in ("numeric", "decimal"):
        return _numeric(name, pg_type)
    kind, arrow_type = _SCALARS.get(normalized, ("string", pa.string()))
    return ArrowColumn(name, pg_type, kind, arrow_type)


def _numeric(name: str, pg_type: str) -> ArrowColumn:
    """numeric(p,s) -> decimal128(p,s) (decimal256 past 38 digits); unconstrained numeric, and typmods Parquet
    cannot hold (precision past 76, a negative scale or one above the precision) -> the exact text."""
    match = _TYPMOD.search(pg_type)
    if match is None:
        return ArrowColumn(name, pg_type, "string", pa.string())
    parts = [p.strip() for p in match.group(1).split(",")]
    precision, scale = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    if not 0 <= scale <= precision or precision > _DECIMAL256_MAX:
        return ArrowColumn(name, pg_type, "string", pa.string())
    decimal = pa.decimal128(precision, scale) if precision <= _DECIMAL128_MAX else pa.decimal256(precision, scale)
    return ArrowColumn(name, pg_type, "decimal", decimal)


def _base_name(pg_type: str) -> str:
    """'timestamp(3) with time zone' -> 'timestamp with time zone'; 'interval year to month' -> 'interval'."""
    text = " ".join(_TYPMOD.sub("", pg_type.lower()).split())
    if text.startswith("interval"):
        return "interval"
    return text
