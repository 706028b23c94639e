"""A pipeline is defined by one connector file in include/connectors/.

The file is Kafka Connect's own shape, ``{"name": ..., "config": {...}}``, so its ``config`` can be sent to any
Connect worker as it is, plus optional top-level pipeline settings (``on_data_loss``, ``sinks``, ...; see
``PipelineSettings``). What the pipeline needs to know about the connector (the captured tables, one topic
each, the slot) is derived here, and every setting it depends on is checked once, at load time, with a
message that says which key to change.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cdc_pipeline.errors import ConfigError
from cdc_pipeline.sent_tables import sent_tables

POSTGRES_CONNECTOR_CLASS = "io.debezium.connector.postgresql.PostgresConnector"

# The connection details of the source come from the Airflow connection at registration time, so one
# connector file serves the local stack and docker-compose alike, and no secret sits in git.
SOURCE_KEYS = ("database.hostname", "database.port", "database.user", "database.password", "database.dbname")
DEFAULT_PASSWORD_REFERENCE = "${env:CDC_CAPTURE_PASSWORD}"

# Settings the pipeline relies on; a different value would silently change what destiny.csv holds.
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
        "Infinity, money, bit, timetz) and to notice type changes",
    ),
    "skipped.operations": (
        "none",
        "Debezium skips TRUNCATE by default ('t'), and every truncated row would stay in destiny.csv forever",
    ),
}
# Settings that change what Debezium or Kafka Connect send, so destiny.csv would differ from COPY while every run
# stays green: refused, naming the setting. Keys, then key prefixes; each with why and what to do instead.
DATA_CHANGING_KEYS = {
    "column.exclude.list": "the excluded columns would be missing from destiny.csv while COPY prints them",
    "column.include.list": "the columns left out would be missing from destiny.csv while COPY prints them",
    "column.blacklist": "the excluded columns would be missing from destiny.csv while COPY prints them",
    "column.whitelist": "the columns left out would be missing from destiny.csv while COPY prints them",
    "message.key.columns": "the merge keeps one row per primary key; another key would merge different rows",
    "transforms": "a single message transform rewrites the events the renderer reads",
    "converters": "a custom converter changes how values arrive, which the renderer cannot know",
    "snapshot.select.statement.overrides": "a snapshot with its own SELECT leaves rows out of destiny.csv",
}
DATA_CHANGING_PREFIXES = {
    "column.truncate.to.": "truncated values would differ from what COPY prints",
    "column.mask.": "masked or hashed values would differ from what COPY prints",
    "snapshot.select.statement.overrides.": "a snapshot with its own SELECT leaves rows out of destiny.csv",
}
# Settings with one value the renderer reads exactly (absent means Debezium's default, the same value).
EXACT_VALUES = {
    "binary.handling.mode": ("bytes", "bytea must arrive as bytes; as base64 or hex text it cannot be told from a "
                                      "text column"),
    "errors.tolerance": ("none", "with 'all' Kafka Connect drops an event it cannot convert and goes on, and "
                                 "destiny.csv silently lacks that change"),
}
# A table of a connector of several re-snapshots alone through Debezium's incremental snapshot: the pipeline
# sends execute-snapshot signals on a Kafka topic of its own and reads Debezium's notifications from another
# (docs/reliability.md, "One table re-snapshots alone"). The worker resolves the broker's address from its own
# environment, as it does the source password, so the same config serves every host.
CONNECT_BOOTSTRAP_REFERENCE = "${env:CDC_SIGNAL_BOOTSTRAP_SERVERS}"
# What the pipeline sets itself for those snapshots; a connector file setting them would break the re-snapshots.
PIPELINE_OWNED_PREFIXES = ("signal.", "notification.")
PIPELINE_OWNED_KEYS = ("read.only",)
# snapshot.mode must take a snapshot when the connector has no offsets: that is how a rebuild starts.
SNAPSHOT_MODES = ("initial", "when_needed")

ON_DATA_LOSS = ("resnapshot", "fail")
ON_SCHEMA_CHANGE = ("resnapshot", "fail")
KEY_ORDERS = ("exact", "code_point")
SINK_TYPES = ("csv", "parquet", "postgres")
PIPELINE_KEYS = ("on_data_loss", "on_schema_change", "max_dead_letters", "changelog_retention_days", "verify_every",
                 "max_table_tasks", "key_order", "queue",
                 "sinks")
DEFAULT_QUEUE = "default"  # Airflow's [operators] default_queue, where tasks of a connector without "queue" go

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_TABLE_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_$]*)\.([A-Za-z_][A-Za-z0-9_$]*)$")
MAX_TABLES = 500  # one Debezium task and one slot stream them all; beyond this, split the connector
_EVERY_RE = re.compile(r"^(\d+)\s*(m|h|d)$")
# A Celery queue name that also reads well in a folder's owner file and a command line.
_QUEUE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class SinkSpec:
    """One output beside destiny.csv: ``csv`` (destiny.csv itself), ``parquet``, or ``postgres``."""

    type: str
    conn_id: str | None = None
    table: str | None = None

    @property
    def name(self) -> str:
        return self.type if self.type != "postgres" else f"postgres:{self.table}"

    @property
    def task_id(self) -> str:
        return f"sink_{self.type}" if self.type != "postgres" else f"sink_postgres_{re.sub(r'[^A-Za-z0-9_]', '_', self.table or '')}"


@dataclass(frozen=True)
class PipelineSettings:
    """What the connector file says about the pipeline beside Kafka Connect's config."""

    on_data_loss: str = "resnapshot"           # Kafka forgot unread events: rebuild from a new snapshot, or fail
    on_schema_change: str = "resnapshot"       # the table's columns or types changed: rebuild, or fail
    max_dead_letters: int = 0                  # undecodable messages one batch may set aside before the run fails
    changelog_retention_days: int = 30         # how long the change log (as-of, backfill) keeps events
    verify_every_minutes: int | None = None    # compare destiny.csv with the source on a schedule
    # A connector of several tables: the most per-table task instances one run starts; when more tables have
    # something new, they share them (each task merges its tables in turn), so a run's cost stays bounded.
    max_table_tasks: int = 4  # the local stack's Airflow runs 4 tasks at once (docs/performance.md, 200 tables)
    # "exact": registration refuses a key whose ORDER BY destiny.csv cannot reproduce (a linguistic collation, a
    # type with no order of its own); "code_point": such keys are ordered by their text's code points instead.
    key_order: str = "exact"
    # The Airflow queue every task of the connector's DAGs runs on: the worker serving it holds the connector's
    # folder on its disk (docs/several-hosts.md). None: Airflow's default queue.
    queue: str | None = None
    sinks: tuple[SinkSpec, ...] = (SinkSpec("csv"),)

    @property
    def queue_name(self) -> str:
        return self.queue or DEFAULT_QUEUE


@dataclass(frozen=True)
class CapturedTable:
    """One table of a connector and the topic Debezium writes its changes to."""

    schema: str
    table: str
    topic: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"

    @classmethod
    def named(cls, schema: str, table: str, prefix: str) -> CapturedTable:
        """The table and the topic Debezium writes it to (``<topic.prefix>.<schema>.<table>``)."""
        return cls(schema, table, f"{prefix}.{schema}.{table}")


NO_TABLE = CapturedTable("", "", "")  # the first table of a connector whose patterns matched none yet


@dataclass(frozen=True)
class ConnectorSpec:
    """One connector file and what the pipeline derives from it.

    A connector captures ``tables`` (one slot, one publication, one Debezium task, one topic per table). The
    per-table work (consume a topic, merge, sinks, verify) runs on a spec scoped to one of them
    (``table_specs()``), whose ``schema``/``table``/``topic`` name that table; the connector file's spec is
    scoped to its first table.
    """

    name: str
    config: dict[str, str]
    path: Path
    schema: str
    table: str
    topic: str
    slot_name: str
    settings: PipelineSettings = field(default_factory=PipelineSettings)
    tables: tuple[CapturedTable, ...] = ()
    # table.include.list entries that are patterns (Debezium's syntax: a regular expression matched against the
    # whole schema.table). Registration expands them against the catalog and sends Kafka Connect the tables they
    # match; ``tables`` holds those once known (``expanded``), after the tables the file names plainly.
    patterns: tuple[str, ...] = ()
    listed: tuple[CapturedTable, ...] = ()
    expanded: bool = True

    @property
    def qualified_table(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def publication_name(self) -> str:
        return self.config.get("publication.name", "dbz_publication")  # Debezium's default

    @property
    def many_tables(self) -> bool:
        """Several tables, or patterns: each table gets its own folder under the connector's (one table named
        plainly keeps the flat folder)."""
        return len(self.tables) > 1 or bool(self.patterns)

    def matches(self, qualified: str) -> bool:
        """Does one of the file's patterns match ``schema.table`` (whole, case-insensitive, as Debezium matches)?"""
        return any(re.fullmatch(pattern, qualified, re.IGNORECASE) for pattern in self.patterns)

    def with_matching_tables(self, names) -> ConnectorSpec:
        """This connector with the tables its patterns match among ``names`` (the catalog's at registration, the
        list last sent to Kafka Connect otherwise), sorted, after the ones the file names plainly."""
        if not self.patterns:
            return self
        listed = {t.qualified for t in self.listed}
        prefix = self.config["topic.prefix"]
        matched = sorted({n for n in names if n not in listed and self.matches(n)})
        unnameable = [n for n in matched if not _TABLE_RE.match(n)]
        if unnameable:
            raise ConfigError(f"{self.path}: table.include.list matches {', '.join(unnameable)}, whose names cannot name "
                              "a folder and a topic as they are: narrow the pattern, or list the other tables by name.")
        tables = self.listed + tuple(CapturedTable.named(*n.split(".", 1), prefix) for n in matched)
        _refuse_too_many(self.path, tables, "matches")
        first = tables[0] if tables else NO_TABLE
        return replace(self, tables=tables, schema=first.schema, table=first.table, topic=first.topic, expanded=True)

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(t.qualified for t in self.tables)

    def table_specs(self) -> list[ConnectorSpec]:
        """This connector scoped to each of its tables, in the connector file's order."""
        return [self._scoped(t) for t in self.tables]

    def _scoped(self, t: CapturedTable) -> ConnectorSpec:
        if not self.many_tables:
            return self
        sinks = tuple(replace(s, table=replica_table(t.table)) if s.type == "postgres" else s
                      for s in self.settings.sinks)
        return replace(self, schema=t.schema, table=t.table, topic=t.topic,
                       settings=replace(self.settings, sinks=sinks))

    @property
    def signal_topic(self) -> str:
        """Where the pipeline sends this connector's execute-snapshot signals (one partition, read by Debezium)."""
        return f"{self.config['topic.prefix']}.cdc-signals"

    @property
    def notification_topic(self) -> str:
        """Where Debezium tells how its incremental snapshots went (started, each table scanned, completed)."""
        return f"{self.config['topic.prefix']}.cdc-notifications"

    def incremental_snapshot_settings(self) -> dict[str, str]:
        """Kafka signals and notifications for re-snapshotting one table while the others stream. read.only: the
        snapshot's watermarks are PostgreSQL snapshots (pg_current_snapshot), so nothing is written to the source."""
        return {
            "signal.enabled.channels": "kafka",
            "signal.kafka.topic": self.signal_topic,
            "signal.kafka.bootstrap.servers": CONNECT_BOOTSTRAP_REFERENCE,
            "signal.kafka.groupId": f"cdc-signals.{self.name}",
            # Debezium polls the topic every 5 s for this long; its consumer only progresses while it polls, so
            # the default 100 ms took ~30 s to find the topic and its offsets after each start.
            "signal.kafka.poll.timeout.ms": "1000",
            "notification.enabled.channels": "sink",
            "notification.sink.topic.name": self.notification_topic,
            "read.only": "true",
        }

    def for_table(self, qualified: str) -> ConnectorSpec:
        for t in self.tables:  # only the one asked for is scoped: a merge task calls this for each of its tables
            if t.qualified == qualified:
                return self._scoped(t)
        raise ConfigError(f"connector {self.name} does not capture {qualified!r}; it captures "
                          f"{', '.join(self.table_names)} (table.include.list in {self.path.name})")

    @property
    def dag_id(self) -> str:
        return f"cdc_{self.name}"

    def config_for_source(self, *, host: str, port: int, user: str, dbname: str,
                          password_reference: str = DEFAULT_PASSWORD_REFERENCE) -> dict[str, str]:
        """The config to send to Kafka Connect: the file's settings plus the source's connection details.

        The password is never sent: only a reference the worker resolves with its config provider
        (``${env:...}`` or ``${file:...}``), so ``GET /connectors/<name>/config`` shows no secret.
        """
        if not (password_reference.startswith("${") and password_reference.endswith("}")):
            raise ConfigError(
                f"the source password reference {password_reference!r} is not a config-provider reference such as "
                "${env:CDC_PG_PASSWORD}: set the 'cdc_postgres' connection's extra connect_password to one, so the "
                "password never sits in Kafka Connect's stored config")
        filled = dict(self.config)
        filled.update({"database.hostname": host, "database.port": str(port), "database.user": user,
                       "database.password": password_reference, "database.dbname": dbname,
                       # Registration keeps the publication (cdc_pipeline/source/publication.py): Debezium only
                       # reads it, so its role needs no ownership of the tables.
                       "publication.autocreate.mode": "disabled"})
        if self.patterns:
            if not self.expanded:
                raise ConfigError(f"{self.path}: the patterns of table.include.list are not expanded yet")
            # The tables the patterns match now: a table created later joins at a later registration, with a
            # snapshot of its own, instead of being streamed by Debezium without its existing rows.
            filled["table.include.list"] = ",".join(self.table_names)
        if self.many_tables:
            filled.update(self.incremental_snapshot_settings())
        return filled


def load_connector_spec(path: str | Path, data_dir: str | Path | None = None) -> ConnectorSpec:
    """Read and check one connector file; raise ConfigError naming the file, the key and the fix. With
    ``data_dir``, the patterns of its table list take the tables last sent to Kafka Connect (registration
    expands them against the catalog)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}). Fix the file; it must be {{\"name\": ..., \"config\": {{...}}}}.") from exc
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict) or "name" not in document:
        raise ConfigError(f"{path}: expected an object with \"name\" and \"config\" keys, the shape Kafka Connect's POST /connectors takes.")
    unknown = sorted(set(document) - {"name", "config", *PIPELINE_KEYS})
    if unknown:
        raise ConfigError(f"{path}: unknown top-level keys {unknown}; besides \"name\" and \"config\" a connector file "
                          f"may set {', '.join(PIPELINE_KEYS)} (include/connectors/README.md).")
    name = str(document["name"])
    if not _NAME_RE.match(name):
        raise ConfigError(f"{path}: connector name {name!r} may hold only letters, digits, '_', '.' and '-' (it names the DAG and the data folder).")
    config = {str(k): _as_config_string(v) for k, v in document["config"].items()}
    _check_config(path, config)

    tables, patterns = _captured_tables(path, config["table.include.list"], config["topic.prefix"])
    first = tables[0] if tables else NO_TABLE
    spec = ConnectorSpec(
        name=name, config=config, path=path, schema=first.schema, table=first.table, topic=first.topic,
        slot_name=config.get("slot.name", "debezium"),
        settings=_pipeline_settings(path, document, first.qualified, many=len(tables) > 1 or bool(patterns)),
        tables=tables, patterns=patterns, listed=tables, expanded=not patterns,
    )
    if patterns and data_dir is not None:
        recorded = sent_tables(Path(data_dir) / name)
        if recorded is not None:
            spec = spec.with_matching_tables(recorded)
    return spec


def _captured_tables(path: Path, include_list: str, prefix: str) -> tuple[tuple[CapturedTable, ...], tuple[str, ...]]:
    """``table.include.list`` as the tables it names plainly (``schema.table``) and its patterns (Debezium's
    syntax: any other entry is a regular expression matched against the whole ``schema.table``)."""
    entries = [entry.strip() for entry in include_list.split(",")]
    tables: list[CapturedTable] = []
    patterns: list[str] = []
    for entry in entries:
        match = _TABLE_RE.match(entry)
        if match:
            tables.append(CapturedTable.named(*match.groups(), prefix))
            continue
        if not entry:
            raise ConfigError(f"{path}: table.include.list has an empty entry (two commas in a row, or one at an end).")
        try:
            re.compile(entry)
        except re.error as exc:
            raise ConfigError(f"{path}: table.include.list entry {entry!r} is neither a schema.table name nor a valid "
                              f"regular expression ({exc}).") from exc
        patterns.append(entry)
    names = [t.qualified for t in tables]
    repeated = sorted({n for n in names if names.count(n) > 1} | {p for p in patterns if patterns.count(p) > 1})
    if repeated:
        raise ConfigError(f"{path}: table.include.list names {', '.join(repeated)} more than once.")
    _refuse_too_many(path, tables, "names")
    return tuple(tables), tuple(patterns)


def _refuse_too_many(path: Path, tables, verb: str) -> None:
    if len(tables) > MAX_TABLES:
        raise ConfigError(f"{path}: table.include.list {verb} {len(tables)} tables; one connector takes at most "
                          f"{MAX_TABLES}. Split them over several connector files (each its own slot).")


def load_connector_files(folder: str | Path, data_dir: str | Path | None = None
                         ) -> list[tuple[Path, ConnectorSpec | ConfigError]]:
    """Every ``*.json`` in ``folder``, sorted by file name, each with its spec or what is wrong with it
    (names must be unique: a second file with a taken name is an error). ``data_dir``: see load_connector_spec."""
    results: list[tuple[Path, ConnectorSpec | ConfigError]] = []
    seen: dict[str, Path] = {}
    for path in sorted(Path(folder).glob("*.json")):
        try:
            spec = load_connector_spec(path, data_dir)
            if spec.name in seen:
                raise ConfigError(f"{path} and {seen[spec.name]} both name the connector {spec.name!r}; names must be unique.")
        except ConfigError as exc:
            results.append((path, exc))
            continue
        seen[spec.name] = path
        results.append((path, spec))
    return results


def discover_connector_specs(folder: str | Path, data_dir: str | Path | None = None) -> list[ConnectorSpec]:
    """Every valid connector of ``folder``; the first broken file raises its ConfigError."""
    specs = []
    for _, loaded in load_connector_files(folder, data_dir):
        if isinstance(loaded, ConfigError):
            raise loaded
        specs.append(loaded)
    return specs


def find_connector_spec(folder: str | Path, name: str, data_dir: str | Path | None = None) -> ConnectorSpec:
    for spec in discover_connector_specs(folder, data_dir):
        if spec.name == name:
            return spec
    raise ConfigError(f"no connector named {name!r} in {folder} (--connectors-dir or CDC_CONNECTORS_DIR)")


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
            f"{path}: remove {', '.join(present_secrets)}: the source's host, port, user and database come from the "
            "Airflow connection 'cdc_postgres' at registration, and the password from Kafka Connect's config "
            "provider, so no secret sits in the file."
        )
    for key, (wanted, why) in REQUIRED_SETTINGS.items():
        value = config.get(key)
        if value is None or value.lower() != wanted:
            raise ConfigError(f"{path}: set \"{key}\": \"{wanted}\" (found {value!r}): {why}.")
    _refuse_data_changing_settings(path, config)
    owned = sorted(k for k in config if k in PIPELINE_OWNED_KEYS or k.startswith(PIPELINE_OWNED_PREFIXES))
    if owned:
        raise ConfigError(f"{path}: remove {', '.join(owned)}: the pipeline sets Debezium's signal and notification "
                          "channels itself, so a table can re-snapshot alone (docs/reliability.md).")
    publication_mode = config.get("publication.autocreate.mode", "disabled").lower()
    if publication_mode not in ("disabled", "filtered"):
        raise ConfigError(f"{path}: remove \"publication.autocreate.mode\" (found {publication_mode!r}): registration "
                          "keeps the connector's publication to exactly its tables itself, so Debezium's role needs "
                          "no ownership of them (docs/source-privileges.md).")
    mode = config.get("snapshot.mode", "initial")
    if mode not in SNAPSHOT_MODES:
        raise ConfigError(f"{path}: set \"snapshot.mode\" to one of {SNAPSHOT_MODES} (found {mode!r}): a rebuild after a "
                          "data loss or a schema change starts by removing the connector's offsets, and only these modes "
                          "then take a new snapshot.")
    compacted = sorted(k for k, v in config.items()
                       if k.startswith("topic.creation.") and k.endswith(".cleanup.policy") and "compact" in v.lower())
    if compacted:
        raise ConfigError(f"{path}: {', '.join(compacted)} asks for a compacted topic. Set it to \"delete\": compaction "
                          "keeps only a deleted row's tombstone, then drops that too after delete.retention.ms, so a "
                          "pipeline that falls behind would never learn of the delete while its offsets look normal.")
    heartbeat = config.get("heartbeat.interval.ms", "0")
    if not heartbeat.isdigit() or int(heartbeat) <= 0:
        raise ConfigError(f"{path}: set \"heartbeat.interval.ms\" to a positive number of milliseconds, e.g. \"10000\" "
                          f"(found {heartbeat!r}): without heartbeats Debezium confirms no WAL position while the table "
                          "is quiet, so the slot retains WAL and verify cannot tell when it has caught up.")


def _refuse_data_changing_settings(path: Path, config: dict[str, str]) -> None:
    problems = [f"\"{key}\" ({why})" for key, why in DATA_CHANGING_KEYS.items() if config.get(key, "").strip()]
    problems += [f"\"{key}\" ({why})" for key in sorted(config) for prefix, why in DATA_CHANGING_PREFIXES.items()
                 if key.startswith(prefix) and key not in DATA_CHANGING_KEYS and config[key].strip()]
    problems += [f"\"{key}\": \"{config[key]}\" (set \"{wanted}\" or remove it: {why})"
                 for key, (wanted, why) in EXACT_VALUES.items() if config.get(key, wanted).strip().lower() != wanted]
    if problems:
        raise ConfigError(f"{path}: remove {'; '.join(problems)}. destiny.csv is what COPY prints of the whole table; "
                          "these settings change what Debezium sends, so it would differ while every run succeeds.")


def _pipeline_settings(path: Path, document: dict, table: str, *, many: bool = False) -> PipelineSettings:
    def choice(key: str, allowed: tuple[str, ...], default: str) -> str:
        value = document.get(key, default)
        if value not in allowed:
            raise ConfigError(f"{path}: \"{key}\" must be one of {', '.join(allowed)} (found {value!r}).")
        return value

    def count(key: str, default: int, minimum: int) -> int:
        value = document.get(key, default)
        if type(value) is not int or value < minimum:
            raise ConfigError(f"{path}: \"{key}\" must be a whole number >= {minimum} (found {value!r}), e.g. {default}.")
        return value

    return PipelineSettings(
        on_data_loss=choice("on_data_loss", ON_DATA_LOSS, "resnapshot"),
        on_schema_change=choice("on_schema_change", ON_SCHEMA_CHANGE, "resnapshot"),
        key_order=choice("key_order", KEY_ORDERS, "exact"),
        max_dead_letters=count("max_dead_letters", 0, 0),
        changelog_retention_days=count("changelog_retention_days", 30, 1),
        verify_every_minutes=_every(path, document.get("verify_every")),
        max_table_tasks=count("max_table_tasks", PipelineSettings.max_table_tasks, 1),
        queue=_queue(path, document.get("queue")),
        sinks=_sinks(path, document.get("sinks"), table, many=many),
    )


def _every(path: Path, value: Any) -> int | None:
    if value in (None, ""):
        return None
    match = _EVERY_RE.match(str(value).strip())
    if not match or int(match.group(1)) == 0:
        raise ConfigError(f"{path}: \"verify_every\" must be a duration like \"30m\", \"6h\" or \"1d\" (found {value!r}).")
    return int(match.group(1)) * {"m": 1, "h": 60, "d": 1440}[match.group(2)]


def _queue(path: Path, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _QUEUE_RE.match(value):
        raise ConfigError(f"{path}: \"queue\" must be an Airflow queue name of letters, digits, '_', '.' and '-' "
                          f"(at most 64, found {value!r}), e.g. \"host-a\": the queue a Celery worker serves with "
                          "airflow celery worker --queues host-a.")
    return value


def replica_table(table: str) -> str:
    """The postgres sink's default target for a source table: ``public.<table>_replica``."""
    return f"public.{table.split('.')[-1]}_replica"


def _sinks(path: Path, raw: Any, table: str, *, many: bool = False) -> tuple[SinkSpec, ...]:
    if raw is None:
        return (SinkSpec("csv"),)
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{path}: \"sinks\" must be a non-empty list such as [{{\"type\": \"csv\"}}, {{\"type\": \"parquet\"}}].")
    sinks: list[SinkSpec] = []
    for item in raw:
        if not isinstance(item, dict) or item.get("type") not in SINK_TYPES:
            raise ConfigError(f"{path}: each sink needs \"type\": one of {', '.join(SINK_TYPES)} (found {item!r}).")
        extra = sorted(set(item) - {"type", "conn_id", "table"})
        if extra:
            raise ConfigError(f"{path}: sink {item['type']} has unknown keys {extra}.")
        if item["type"] == "postgres":
            if many and item.get("table"):
                raise ConfigError(f"{path}: the postgres sink names one \"table\" ({item['table']}) but the connector "
                                  "captures several; remove \"table\": each source table goes to public.<table>_replica.")
            target = item.get("table") or replica_table(table)
            if not _TABLE_RE.match(target):
                raise ConfigError(f"{path}: the postgres sink's \"table\" must be schema.table (found {target!r}).")
            sinks.append(SinkSpec("postgres", item.get("conn_id") or "cdc_sink_postgres", target))
        else:
            sinks.append(SinkSpec(item["type"]))
    if "csv" not in [s.type for s in sinks]:
        raise ConfigError(f"{path}: \"sinks\" must include {{\"type\": \"csv\"}}: destiny.csv is the state the other sinks "
                          "are rendered from.")
    names = [s.name for s in sinks]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: \"sinks\" names the same sink twice ({names}).")
    return tuple(sinks)
