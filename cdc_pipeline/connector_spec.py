"""A pipeline is defined by one Kafka Connect connector file in include/connectors/.

The file is the standard Kafka Connect shape, ``{"name": ..., "config": {...}}``, so it can be sent to any
Connect worker as it is. What the pipeline needs to know about it (the one captured table, the topic, the
slot) is derived here, and the settings the pipeline depends on for fidelity are checked once, at load time,
with a message that says which key to change.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdc_pipeline.errors import ConfigError

POSTGRES_CONNECTOR_CLASS = "io.debezium.connector.postgresql.PostgresConnector"

# The connection details of the source come from the Airflow connection at registration time, so one
# connector file serves the local stack and docker-compose alike, and no password sits in git.
SOURCE_KEYS = ("database.hostname", "database.port", "database.user", "database.password", "database.dbname")

# Settings the decoder relies on; a different value would silently change what destiny.csv holds.
REQUIRED_SETTINGS = {
    "decimal.handling.mode": (
        "string",
        "under 'precise' an unconstrained numeric loses trailing zeros (3.10 arrives as 3.1), "
        "and 'double' loses digits",
    ),
    "key.converter.schemas.enable": ("true", "logical types (dates, times, decimals) are decoded from the inline schema"),
    "value.converter.schemas.enable": ("true", "logical types (dates, times, decimals) are decoded from the inline schema"),
    "slot.drop.on.stop": ("false", "dropping the slot on stop discards every change not yet read"),
    "column.propagate.source.type": (
        ".*",
        "the decoder needs each column's PostgreSQL type where the Connect schema hides it (numeric NaN and "
        "Infinity, money, bit, timetz)",
    ),
}

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_TABLE_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_$]*)\.([A-Za-z_][A-Za-z0-9_$]*)$")


@dataclass(frozen=True)
class ConnectorSpec:
    """One connector file and what the pipeline derives from it."""

    name: str
    config: dict[str, str]
    path: Path
    schema: str
    table: str
    topic: str
    slot_name: str

    @property
    def qualified_table(self) -> str:
        return f"{self.schema}.{self.table}"

    def config_for_source(self, *, host: str, port: int, user: str, password: str, dbname: str) -> dict[str, str]:
        """The config to send to Kafka Connect: the file's settings plus the source's connection details."""
        filled = dict(self.config)
        filled.update(
            {
                "database.hostname": host,
                "database.port": str(port),
                "database.user": user,
                "database.password": password,
                "database.dbname": dbname,
            }
        )
        return filled


def load_connector_spec(path: str | Path) -> ConnectorSpec:
    """Read and check one connector file; raise ConfigError naming the file, the key and the fix."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}). Fix the file; it must be {{\"name\": ..., \"config\": {{...}}}}.") from exc
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict) or "name" not in document:
        raise ConfigError(f"{path}: expected an object with \"name\" and \"config\" keys, the shape Kafka Connect's POST /connectors takes.")
    name = str(document["name"])
    if not _NAME_RE.match(name):
        raise ConfigError(f"{path}: connector name {name!r} may hold only letters, digits, '_', '.' and '-' (it names the DAG and the data folder).")
    config = {str(k): _as_config_string(v) for k, v in document["config"].items()}
    _check_config(path, config)

    table_list = config["table.include.list"].strip()
    match = _TABLE_RE.match(table_list)
    if not match:
        raise ConfigError(
            f"{path}: table.include.list is {table_list!r}; a pipeline captures exactly one table, written as "
            "schema.table (no regular expressions, no list). Add one connector file per table."
        )
    schema, table = match.groups()
    prefix = config["topic.prefix"]
    return ConnectorSpec(
        name=name,
        config=config,
        path=path,
        schema=schema,
        table=table,
        topic=f"{prefix}.{schema}.{table}",
        slot_name=config.get("slot.name", "debezium"),
    )


def load_connector_files(folder: str | Path) -> list[tuple[Path, ConnectorSpec | ConfigError]]:
    """Every ``*.json`` in ``folder``, sorted by file name, each with its spec or what is wrong with it
    (names must be unique: a second file with a taken name is an error)."""
    results: list[tuple[Path, ConnectorSpec | ConfigError]] = []
    seen: dict[str, Path] = {}
    for path in sorted(Path(folder).glob("*.json")):
        try:
            spec = load_connector_spec(path)
            if spec.name in seen:
                raise ConfigError(f"{path} and {seen[spec.name]} both name the connector {spec.name!r}; names must be unique.")
        except ConfigError as exc:
            results.append((path, exc))
            continue
        seen[spec.name] = path
        results.append((path, spec))
    return results


def discover_connector_specs(folder: str | Path) -> list[ConnectorSpec]:
    """Every valid connector of ``folder``; the first broken file raises its ConfigError."""
    specs = []
    for _, loaded in load_connector_files(folder):
        if isinstance(loaded, ConfigError):
            raise loaded
        specs.append(loaded)
    return specs


def _as_config_string(value: Any) -> str:
    # Kafka Connect stores every setting as a string; normalise so a later comparison with
    # GET /connectors/{name}/config sees equal values as equal.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_config(path: Path, config: dict[str, str]) -> None:
    if config.get("connector.class") != POSTGRES_CONNECTOR_CLASS:
        raise ConfigError(f"{path}: connector.class must be {POSTGRES_CONNECTOR_CLASS} (got {config.get('connector.class')!r}).")
    for key in ("topic.prefix", "table.include.list"):
        if not config.get(key):
            raise ConfigError(f"{path}: {key} is missing; it decides the topic the pipeline reads.")
    present_secrets = [k for k in SOURCE_KEYS if k in config]
    if present_secrets:
        raise ConfigError(
            f"{path}: remove {', '.join(present_secrets)}: the source's host, port, user, password and database "
            "come from the Airflow connection 'cdc_postgres' at registration, so no secret sits in the file."
        )
    for key, (wanted, why) in REQUIRED_SETTINGS.items():
        value = config.get(key)
        if value is None or value.lower() != wanted:
            raise ConfigError(f"{path}: set \"{key}\": \"{wanted}\" (found {value!r}): {why}.")
