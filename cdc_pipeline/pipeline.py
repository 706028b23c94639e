"""One pipeline: its connector file, its folder, and the run history in it."""

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
        return cls(spec, PipelineLayout.under(data_dir, spec.name))

    @cached_property
    def history(self) -> History:
        return History.open(self.layout.history)

    def table_description(self) -> TableDescription | None:
        """The source table as register_connector last read it (table.json), or None before its first success."""
        path = self.layout.table_info
        if not path.exists():
            return None
        return TableDescription.from_json(json.loads(path.read_text(encoding="utf-8")))
