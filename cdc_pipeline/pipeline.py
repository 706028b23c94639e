"""One pipeline: a table of a connector, its folder, and the run history in it.

A connector capturing one table keeps the flat folder ``<data dir>/<connector>/``; a connector capturing
several gives each table ``<data dir>/<connector>/<schema>.<table>/`` with the same files inside, so
everything that works for one table works per table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cdc_pipeline.connector_spec import ConnectorSpec
from cdc_pipeline.history import History
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.source.catalog import TableDescription


@dataclass(frozen=True)
class Pipeline:
    spec: ConnectorSpec
    layout: PipelineLayout

    @classmethod
    def under(cls, data_dir: str | Path, spec: ConnectorSpec) -> Pipeline:
        """``spec`` scoped to one table (``ConnectorSpec.table_specs``)."""
        return cls(spec, table_layout(data_dir, spec))

    @property
    def label(self) -> str:
        """How logs and status name it: the connector, and the table when the connector has several."""
        return f"{self.spec.name}/{self.spec.qualified_table}" if self.spec.many_tables else self.spec.name

    @property
    def connector_folder(self) -> Path:
        return self.layout.folder.parent if self.spec.many_tables else self.layout.folder

    def siblings(self) -> list[Pipeline]:
        """The connector's other tables: a re-snapshot of the connector rebuilds them too."""
        return [other for other in connector_pipelines(self.connector_folder.parent, self.spec)
                if other.spec.qualified_table != self.spec.qualified_table]

    @cached_property
    def history(self) -> History:
        return History.open(self.layout.history)

    def table_description(self) -> TableDescription | None:
        """The source table as register_connector last read it (table.json), or None before its first success."""
        path = self.layout.table_info
        if not path.exists():
            return None
        return TableDescription.from_json(json.loads(path.read_text(encoding="utf-8")))


def table_layout(data_dir: str | Path, spec: ConnectorSpec) -> PipelineLayout:
    connector = PipelineLayout.under(data_dir, spec.name)
    return PipelineLayout(connector.folder / spec.qualified_table) if spec.many_tables else connector


def connector_pipelines(data_dir: str | Path, spec: ConnectorSpec) -> list[Pipeline]:
    """One pipeline per table of the connector, in the connector file's order."""
    return [Pipeline.under(data_dir, scoped) for scoped in spec.table_specs()]
