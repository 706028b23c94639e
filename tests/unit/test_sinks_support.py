"""Helpers shared by the sink tests (no tests here): a description with real catalog fields, and change events."""

from __future__ import annotations

import dataclasses
import itertools

import pandas as pd

from cdc_pipeline.source.catalog import CatalogColumn, TableDescription

_POSITIONS = itertools.count(1)


def column(name: str, format_type: str, *, kind: str = "b", category: str = "S", element: str | None = None,
           base: str | None = None, type_name: str | None = None, not_null: bool = False) -> CatalogColumn:
    return CatalogColumn(name=name, attnum=0, format_type=format_type, type_name=type_name or format_type,
                         type_kind=kind, type_category=category, element_type_name=element,
                         element_type_kind="b" if element else None, base_type_name=base, not_null=not_null)


def table(*columns: CatalogColumn, key: tuple[str, ...] = ("id",), name: str = "items") -> TableDescription:
    numbered = tuple(dataclasses.replace(c, attnum=i) for i, c in enumerate(columns, start=1))
    return TableDescription(schema="public", table=name, columns=numbered, key_columns=key,
                            settings={"IntervalStyle": "postgres", "lc_monetary": "C.UTF-8"})


def change_events(description: TableDescription, rows: list[tuple[str, dict[str, str | None]]]) -> pd.DataFrame:
    """(op, {column: COPY text}) per event, as buffer.csv holds them; positions increase across calls."""
    records = []
    for op, values in rows:
        position = next(_POSITIONS)
        record = {"operacion": op}
        record.update({name: values.get(name) for name in description.column_names})
        record.update({"timestamp": "2026-11-24 00:00:00+00", "_topic": "t", "_partition": "0",
                       "_offset": str(position), "_lsn": str(1000 + position)})
        records.append(record)
    return pd.DataFrame(records, dtype=object)


def pipeline(tmp_path, sinks: list[dict], name: str = "items"):
    """A Pipeline whose connector file names ``sinks`` (the shipped clientes.json's config otherwise)."""
    import json
    from pathlib import Path

    from cdc_pipeline.connector_spec import load_connector_spec
    from cdc_pipeline.pipeline import Pipeline

    shipped = json.loads((Path(__file__).resolve().parents[2] / "include" / "connectors" / "clientes.json").read_text())
    document = {"name": name, "sinks": sinks, "config": {**shipped["config"], "table.include.list": f"public.{name}"}}
    path = tmp_path / "connectors" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return Pipeline.under(tmp_path / "data", load_connector_spec(path))
