"""Which tables of a connector a command works on: ``--table schema.table``.

A connector capturing one table is one pipeline, named by the connector alone, and ``--table`` may be left out.
A connector capturing several has one pipeline per table (``<data>/<connector>/<schema>.<table>/``): a command
that changes one table needs ``--table``, and the commands that only read or drain (status, history, verify,
drain) take every table in turn without it. The run history of a connector whose file is gone is found from
its folders, so ``history``, ``outages``, ``as-of`` and ``changes`` keep working on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cdc_pipeline.connector_spec import ConnectorSpec, load_connector_files
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.pipeline import Pipeline


def add_table_option(parser, *, every: bool = False) -> None:
    default = "default: each table in turn" if every else "required when the connector captures several tables"
    parser.add_argument("--table", metavar="SCHEMA.TABLE",
                        help=f"the table of the connector (one of its table.include.list); {default}")


def table_label(connector: str, table: str | None) -> str:
    """How a table's pipeline is named (as ``Pipeline.label``): ``connector``, or ``connector/schema.table``."""
    return f"{connector}/{table}" if table else connector


def pick_tables(connector: str, tables: Sequence[str], table: str | None, *, every: bool, where: str,
                option: str = "--table") -> list[str]:
    """``table`` among the connector's ``tables`` (schema.table), or all of them when it is None and the connector
    captures one table or ``every``; a ConfigError naming the tables and how to pick one (``option``) otherwise."""
    if table is None:
        if len(tables) <= 1 or every:
            return list(tables)
        raise ConfigError(f"connector {connector} captures {len(tables)} tables ({', '.join(tables)}): pass "
                          f"{option} with one of them")
    if table not in tables:
        raise ConfigError(f"connector {connector} does not capture {table!r}; it captures {', '.join(tables)} "
                          f"({where}): pass {option} with one of them")
    return [table]


def chosen_pipelines(data_dir: str | Path, spec: ConnectorSpec, table: str | None, *,
                     every: bool = False) -> list[Pipeline]:
    names = pick_tables(spec.name, spec.table_names, table, every=every,
                        where=f"table.include.list in {spec.path.name}")
    return [Pipeline.under(data_dir, spec.for_table(name)) for name in names]


def chosen_folders(data_dir: str | Path, connectors_dir: str | Path, connector: str, table: str | None, *,
                   every: bool = False) -> list[tuple[str, PipelineLayout]]:
    """(label, layout) of each chosen table: from the connector file when there is one, else from the folders
    holding a run history (a connector file that is gone). A folder with no history yet is answered as it is:
    the caller says what is missing."""
    spec = _spec_named(connectors_dir, connector, data_dir)
    if spec is not None:
        return [(pipe.label, pipe.layout) for pipe in chosen_pipelines(data_dir, spec, table, every=every)]
    folder = PipelineLayout.under(data_dir, connector)
    nested = recorded_tables(folder.folder)
    if folder.history.exists() or not nested:
        if table is not None:
            raise ConfigError(f"no connector file names {connector!r} and {folder.folder} holds one pipeline, not a "
                              "folder per table: leave out --table")
        return [(connector, folder)]
    names = pick_tables(connector, nested, table, every=every, where=f"the table folders in {folder.folder}")
    return [(table_label(connector, name), PipelineLayout(folder.folder / name)) for name in names]


def recorded_tables(connector_folder: Path) -> list[str]:
    """The table folders (schema.table) in a connector's folder that hold a run history; hidden folders (a move
    in progress) are not tables."""
    return sorted(h.parent.name for h in connector_folder.glob("*/runs.sqlite") if not h.parent.name.startswith("."))


def _spec_named(connectors_dir: str | Path, name: str, data_dir: str | Path | None = None) -> ConnectorSpec | None:
    """The connector file naming ``name``; other files, broken or not, do not matter here."""
    for _, loaded in load_connector_files(connectors_dir, data_dir):
        if isinstance(loaded, ConnectorSpec) and loaded.name == name:
            return loaded
    return None
