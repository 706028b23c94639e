"""Start from a database, not from a JSON file: list a schema's tables, say which can be captured exactly and
why not, and write the connector file that captures them.

The file is the shipped connector's settings (include/connectors/clientes.json: every setting the pipeline
relies on) with this connector's name, slot, publication, topic prefix and table list, so a new connector
passes ``load_connector_spec`` by construction.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from cdc_pipeline.atomic import atomic_write_text
from cdc_pipeline.connector_spec import MAX_TABLES, load_connector_spec
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.layout import CONNECTORS_DIR
from cdc_pipeline.pgtext.types import unsupported_columns
from cdc_pipeline.source.catalog import read_description
from cdc_pipeline.source.checks import SourceParams, generated_problems, kind_problems

TEMPLATE = CONNECTORS_DIR / "clientes.json"
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")

_TABLES_SQL = """
SELECT c.relname, c.relkind, c.relispartition, c.relpersistence, greatest(c.reltuples, 0)::bigint,
       (SELECT p.relname FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = c.oid LIMIT 1)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY c.relname
"""


@dataclass(frozen=True)
class TableVerdict:
    """One relation of the schema and what stands between it and an exact destiny.csv."""

    qualified: str
    rows_estimate: int
    problems: tuple[str, ...] = ()

    @property
    def capturable(self) -> bool:
        return not self.problems

    def line(self) -> str:
        if self.capturable:
            return f"  ok       {self.qualified} (~{self.rows_estimate} rows)"
        return f"  skipped  {self.qualified}: " + "; ".join(self.problems)


def survey_schema(source: SourceParams, schema: str) -> list[TableVerdict]:
    """Every table, view and foreign table of ``schema``, each with why it cannot be captured exactly ([] if it can)."""
    verdicts = []
    with source.connect(autocommit=True) as conn:
        for name, kind, is_partition, persistence, rows, parent in conn.execute(_TABLES_SQL, (schema,)).fetchall():
            qualified = f"{schema}.{name}"
            problems = kind_problems(schema, kind, is_partition, persistence, parent)
            if not _PLAIN_NAME.match(name):
                problems.append("its name needs quoting, which table.include.list and topic names cannot carry")
            if not problems:
                description = read_description(conn, schema, name)
                if not description.key_columns:
                    problems.append("no primary key: destiny.csv keeps one row per key (ALTER TABLE ... ADD PRIMARY "
                                    "KEY (...))")
                problems.extend(problem.replace(f"{qualified}.", "column ", 1) for problem in unsupported_columns(description))
                problems.extend(generated_problems(conn, f'"{schema}"."{name}"'))
            verdicts.append(TableVerdict(qualified, int(rows), tuple(problems)))
    return verdicts


def connector_document(name: str, tables: list[str]) -> dict:
    """The connector file for ``tables``: the shipped settings, this connector's names."""
    if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", name):
        raise ConfigError(f"connector name {name!r} may hold only letters, digits, '_', '.' and '-'")
    if not tables:
        raise ConfigError("no table to capture: every table of the schema was skipped (see why above)")
    if len(tables) > MAX_TABLES:
        raise ConfigError(f"{len(tables)} tables: one connector takes at most {MAX_TABLES}; pick some with --tables "
                          "and write a second connector for the rest")
    document = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    slot = "debezium_" + re.sub(r"[^a-z0-9_]", "_", name.lower())
    document["name"] = name
    document["config"].update({"table.include.list": ",".join(tables), "topic.prefix": name, "slot.name": slot,
                               "publication.name": slot})
    return document


def write_connector_file(folder: str | Path, name: str, tables: list[str], *, overwrite: bool = False) -> Path:
    """Write ``<folder>/<name>.json`` atomically and check it as the DAGs will; an existing file is kept unless
    ``overwrite``."""
    path = Path(folder) / f"{name}.json"
    if path.exists() and not overwrite:
        raise ConfigError(f"{path} exists; pass --force to replace it (its pipeline keeps its files and history)")
    text = json.dumps(connector_document(name, tables), indent=2) + "\n"
    atomic_write_text(path, text)
    load_connector_spec(path)
    return path


def add_init_command(sub, environment) -> None:
    """``init``: survey a schema and write its connector file. ``environment(args)`` gives the services."""
    init = sub.add_parser("init", help="list a schema's tables, say which can be captured exactly, write the connector "
                                       "file that captures them")
    init.add_argument("--schema", default="public", help="the schema to survey (default public)")
    init.add_argument("--name", help="the connector's name (default: the schema's); names its DAG, folder and topics")
    init.add_argument("--tables", help="only these tables of the schema, comma-separated (default: every table that "
                                       "can be captured)")
    init.add_argument("--write", action="store_true", help="write <connectors dir>/<name>.json (else only print it)")
    init.add_argument("--force", action="store_true", help="replace an existing connector file of that name")
    init.set_defaults(func=lambda args: run_init(args, environment(args)))


def run_init(args, env) -> int:
    verdicts = survey_schema(env.source, args.schema)
    if args.tables:
        wanted = {f"{args.schema}.{t.strip().split('.')[-1]}" for t in args.tables.split(",") if t.strip()}
        missing = sorted(wanted - {v.qualified for v in verdicts})
        if missing:
            raise ConfigError(f"{', '.join(missing)} not found in schema {args.schema}")
        verdicts = [v for v in verdicts if v.qualified in wanted]
    print(f"schema {args.schema} of {env.source.describe()}: {len(verdicts)} relations")
    for verdict in verdicts:
        print(verdict.line())
    tables = [v.qualified for v in verdicts if v.capturable]
    name = args.name or args.schema
    if not args.write:
        print(json.dumps(connector_document(name, tables), indent=2))
        print(f"\n{len(tables)} tables can be captured; write the file with --write")
        return 0
    path = write_connector_file(env.connectors_dir, name, tables, overwrite=args.force)
    print(f"\nwrote {path}: {len(tables)} tables, DAG cdc_{name} (the dag-processor picks it up within 30 s)")
    return 0
