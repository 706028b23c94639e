"""Which pipelines the dashboard knows: every connector file (its DAG and operations DAG), and every
pipeline folder with a run history whose connector file is gone (its history stays readable)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cdc_pipeline.connector_spec import ConnectorSpec, load_connector_files
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.layout import PipelineLayout


@dataclass(frozen=True)
class Pipeline:
    name: str
    layout: PipelineLayout
    spec: ConnectorSpec | None        # None: only its folder is left

    @property
    def dag_id(self) -> str:
        return self.spec.dag_id if self.spec else f"cdc_{self.name}"

    @property
    def dag_ids(self) -> tuple[str, ...]:
        """The DAGs whose page shows this pipeline's dashboard tab."""
        return (self.dag_id, f"{self.dag_id}_ops")


@dataclass(frozen=True)
class Catalog:
    pipelines: dict[str, Pipeline]
    broken: dict[str, str]            # connector file name -> what is wrong with it

    @classmethod
    def load(cls, connectors_dir: Path, data_dir: Path) -> Catalog:
        pipelines: dict[str, Pipeline] = {}
        broken: dict[str, str] = {}
        for path, loaded in load_connector_files(connectors_dir):
            if isinstance(loaded, ConfigError):
                broken[path.name] = str(loaded)
                continue
            pipelines[loaded.name] = Pipeline(loaded.name, PipelineLayout.under(data_dir, loaded.name), loaded)
        for history in sorted(Path(data_dir).glob("*/runs.sqlite")):
            name = history.parent.name
            pipelines.setdefault(name, Pipeline(name, PipelineLayout(history.parent), None))
        return cls(dict(sorted(pipelines.items())), broken)

    def by_dag_id(self, dag_id: str) -> Pipeline | None:
        for pipeline in self.pipelines.values():
            if dag_id in pipeline.dag_ids:
                return pipeline
        return None
