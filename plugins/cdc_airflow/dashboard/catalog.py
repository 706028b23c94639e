"""Which pipelines the dashboard knows: every connector file (its DAG and operations DAG), one pipeline per table
of a connector that captures several, and every pipeline folder with a run history whose connector file (or
whose table in it) is gone (its history stays readable)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cdc_pipeline.connector_spec import ConnectorSpec, load_connector_files
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.pipeline import connector_pipelines
from cdc_pipeline.commands.table_choice import recorded_tables, table_label


@dataclass(frozen=True)
class Pipeline:
    name: str                         # the connector, or "connector/schema.table" when it captures several tables
    layout: PipelineLayout
    spec: ConnectorSpec | None        # scoped to the table; None: only its folder is left

    @property
    def connector(self) -> str:
        return self.name.partition("/")[0]

    @property
    def table(self) -> str | None:
        """schema.table for a table of a connector of several; None for a one-table connector's pipeline."""
        return self.name.partition("/")[2] or None

    @property
    def dag_id(self) -> str:
        return self.spec.dag_id if self.spec else f"cdc_{self.connector}"

    @property
    def dag_ids(self) -> tuple[str, ...]:
        """The DAGs whose page shows this pipeline's dashboard tab."""
        return (self.dag_id, f"{self.dag_id}_ops")


@dataclass(frozen=True)
class Catalog:
    pipelines: dict[str, Pipeline]    # by name, sorted
    broken: dict[str, str]            # connector file name -> what is wrong with it

    @classmethod
    def load(cls, connectors_dir: Path, data_dir: Path) -> Catalog:
        pipelines: dict[str, Pipeline] = {}
        broken: dict[str, str] = {}
        for path, loaded in load_connector_files(connectors_dir, data_dir):
            if isinstance(loaded, ConfigError):
                broken[path.name] = str(loaded)
                continue
            for pipe in connector_pipelines(data_dir, loaded):
                pipelines[pipe.label] = Pipeline(pipe.label, pipe.layout, pipe.spec)
        for history in sorted(Path(data_dir).glob("*/runs.sqlite")):
            name = history.parent.name
            pipelines.setdefault(name, Pipeline(name, PipelineLayout(history.parent), None))
        for folder in sorted(p for p in Path(data_dir).glob("*") if p.is_dir()):
            for table in recorded_tables(folder):
                name = table_label(folder.name, table)
                pipelines.setdefault(name, Pipeline(name, PipelineLayout(folder / table), None))
        return cls(dict(sorted(pipelines.items())), broken)

    def tables(self, connector: str) -> list[Pipeline]:
        """The pipelines of a connector: its one pipeline, or one per table (by name)."""
        return [p for p in self.pipelines.values() if p.connector == connector]

    def by_dag_id(self, dag_id: str) -> Pipeline | None:
        """The first pipeline of the connector whose DAG (or operations DAG) this is."""
        for pipeline in self.pipelines.values():
            if dag_id in pipeline.dag_ids:
                return pipeline
        return None
