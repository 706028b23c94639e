"""Helpers shared by the tests of cdc_pipeline.state (no tests here): table descriptions and batches."""

from __future__ import annotations

import pandas as pd

from cdc_pipeline.source.catalog import CatalogColumn, TableDescription


def describe(columns: dict[str, str], key: tuple[str, ...], table: str = "clientes") -> TableDescription:
    """A TableDescription of ``columns`` (name -> format_type) with primary key ``key``."""
    return TableDescription(
        schema="public", table=table, key_columns=key,
        columns=tuple(
            CatalogColumn(name=name, attnum=number, format_type=format_type, type_name=format_type,
                          type_kind="b", type_category="S", not_null=name in key)
            for number, (name, format_type) in enumerate(columns.items(), start=1)
        ),
    )


CLIENTES = describe({"id": "integer", "nombre": "text", "email": "text"}, ("id",))


def events(*rows: tuple, incarnation: int | None = None) -> pd.DataFrame:
    """Rows of (op, id, nombre, email, lsn, partition, offset) as buffer.csv holds them (all text)."""
    records = []
    for op, id_, nombre, email, lsn, partition, offset in rows:
        record = {"operacion": op, "id": id_, "nombre": nombre, "email": email, "timestamp": "2026-11-24 00:00:00+00",
                  "_topic": "t", "_partition": str(partition), "_offset": str(offset), "_lsn": str(lsn)}
        if incarnation is not None:
            record["_incarnation"] = str(incarnation)
        records.append(record)
    return pd.DataFrame(records, dtype=object)


def frame(records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(records, dtype=object)
