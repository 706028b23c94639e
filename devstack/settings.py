"""The launcher's settings: one frozen dataclass, read once, typed.

Precedence, for every field: an explicit argument to ``StackSettings.load(...)``, then the
environment variable named in ``SETTINGS``, then the value ``./stack up`` recorded (devstack.recorded),
then the default in ``SETTINGS``. Paths that
default to a place inside another setting (``CDC_DATA_DIR`` inside ``CDC_STACK_HOME``) follow
that setting. ``SETTINGS`` is the one table of variables: the docs and the docker-compose
checks import it instead of repeating it.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cdc_pipeline import defaults
from cdc_pipeline.kafka_connect import url_with_credentials
from cdc_pipeline.layout import CONNECTORS_DIR, REPO_ROOT, STACK_HOME, data_dir_in
from devstack.errors import SettingsError


@dataclass(frozen=True)
class Setting:
    """One environment variable: the field it fills, its default as documented, and what it means."""

    env: str
    field: str
    default: str
    description: str


SETTINGS: tuple[Setting, ...] = (
    Setting("CDC_STACK_HOME", "stack_home", "<repo>/.stack",
            "All local state: pgdata, the Kafka log, logs, pids, Airflow home, data dir."),
    Setting("CDC_DATA_DIR", "data_dir", "$CDC_STACK_HOME/data",
            "buffer.csv, destiny.csv and the run history: one subfolder per connector."),
    Setting("CDC_JARS_DIR", "jars_dir", "<repo>/.cache/jars",
            "Apache Kafka's and Debezium's jars from Maven Central (devstack/maven), fetched once by "
            "scripts/bootstrap.sh and shared by every stack home."),
    Setting("CDC_CONNECTORS_DIR", "connectors_dir", "<repo>/include/connectors",
            "Connector JSON files, one DAG each."),
    Setting("CDC_PG_HOST", "pg_host", defaults.PG_HOST, "PostgreSQL host."),
    Setting("CDC_PG_PORT", "pg_port", str(defaults.PG_PORT), "PostgreSQL port."),
    Setting("CDC_PG_DB", "pg_db", defaults.PG_DB, "PostgreSQL database holding the source tables."),
    Setting("CDC_PG_USER", "pg_user", defaults.PG_USER, "PostgreSQL user."),
    Setting("CDC_PG_PASSWORD", "pg_password", "cdc-<16 random hex digits>",
            "PostgreSQL password of `CDC_PG_USER`: generated once when unset, recorded, and set on the user at "
            "every start (TCP asks for it, scram-sha-256; only the cluster's own socket is trusted)."),
    Setting("CDC_CAPTURE_USER", "capture_user", defaults.CAPTURE_USER,
            "The role the pipeline and Debezium connect as: LOGIN REPLICATION and SELECT on the tables, nothing "
            "more (created at start, with the grants of docs/source-privileges.md). `CDC_PG_USER` creates the "
            "publications (connection `cdc_postgres_admin`)."),
    Setting("CDC_CAPTURE_PASSWORD", "capture_password", "cdc-<16 random hex digits>",
            "Password of `CDC_CAPTURE_USER`: generated once when unset, recorded, and set on the role at every start; "
            "Kafka Connect reads it from its environment (`${env:CDC_CAPTURE_PASSWORD}`)."),
    Setting("CDC_SINK_DB", "sink_db", defaults.SINK_DB,
            "Database on the same PostgreSQL for the PostgreSQL sink (connection `cdc_sink_postgres`); "
            "created at start if missing."),
    Setting("CDC_KAFKA_PORT", "kafka_port", str(defaults.KAFKA_PORT), "Apache Kafka's client port (PLAINTEXT listener)."),
    Setting("CDC_KAFKA_CONTROLLER_PORT", "kafka_controller_port", str(defaults.KAFKA_CONTROLLER_PORT),
            "Apache Kafka's KRaft controller port (the one node is broker and controller)."),
    Setting("CDC_CONNECT_PORT", "connect_port", str(defaults.CONNECT_PORT), "Kafka Connect REST port."),
    Setting("CDC_CONNECT_USER", "connect_user", defaults.CONNECT_USER,
            "User of Kafka Connect's REST API (basic authentication, as in docker-compose.yml)."),
    Setting("CDC_CONNECT_PASSWORD", "connect_password", "cdc-<16 random hex digits>",
            "Password of `CDC_CONNECT_USER` on Kafka Connect's REST API: generated once when unset, recorded, "
            "and written into the worker's credentials file at every start."),
    Setting("CDC_AIRFLOW_PORT", "airflow_port", str(defaults.AIRFLOW_PORT), "Airflow api-server and UI port."),
    Setting("CDC_AIRFLOW_USER", "airflow_user", defaults.AIRFLOW_USER, "Airflow login (SimpleAuthManager, role admin)."),
    Setting("CDC_AIRFLOW_PASSWORD", "airflow_password", defaults.AIRFLOW_PASSWORD, "Airflow password."),
    Setting("CDC_KAFKA_GROUP_ID", "kafka_group_id", defaults.GROUP_PREFIX, "Kafka consumer group prefix."),
    Setting("CDC_NEW_DAGS_PAUSED", "new_dags_paused", "false",
            "Whether a DAG Airflow sees for the first time starts paused. `false`: a connector file added to a "
            "running stack runs at once, like the ones `./stack up` found (the tests set `true` and unpause what "
            "they run)."),
)

_BY_FIELD = {s.field: s for s in SETTINGS}
_PORT_FIELDS = ("pg_port", "kafka_port", "kafka_controller_port", "connect_port", "airflow_port")
_PATH_FIELDS = ("stack_home", "data_dir", "jars_dir", "connectors_dir")
_BOOL_FIELDS = ("new_dags_paused",)


@dataclass(frozen=True)
class StackSettings:
    stack_home: Path
    data_dir: Path
    jars_dir: Path
    connectors_dir: Path
    pg_host: str
    pg_port: int
    pg_db: str
    pg_user: str
    pg_password: str
    capture_user: str
    capture_password: str
    sink_db: str
    kafka_port: int
    kafka_controller_port: int
    connect_port: int
    connect_user: str
    connect_password: str
    airflow_port: int
    airflow_user: str
    airflow_password: str
    kafka_group_id: str
    new_dags_paused: bool = False

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, recorded: Mapping[str, str] | None = None,
             **overrides: object) -> StackSettings:
        """Build settings: ``overrides`` win over ``env`` (default ``os.environ``), which wins over ``recorded``
        (the values ``./stack up`` recorded, see devstack.recorded), which wins over the defaults.

        With no password (PostgreSQL's two roles', Kafka Connect's) from any of them, a new one is generated (``cdc-`` + 16 hex digits): a common word
        would be masked everywhere in Airflow's task logs, since Airflow hides connection passwords.
        """
        unknown = set(overrides) - set(_BY_FIELD)
        if unknown:
            raise SettingsError(f"Unknown setting(s) {sorted(unknown)}; known: {sorted(_BY_FIELD)}")
        env = os.environ if env is None else env
        recorded = recorded or {}

        def raw(field: str) -> object | None:
            if overrides.get(field) is not None:
                return overrides[field]
            for source in (env, recorded):
                value = source.get(_BY_FIELD[field].env)
                if value not in (None, ""):
                    return value
            return None

        stack_home = Path(raw("stack_home") or STACK_HOME).expanduser().absolute()
        values: dict[str, object] = {
            "stack_home": stack_home,
            "data_dir": Path(raw("data_dir") or data_dir_in(stack_home)).expanduser().absolute(),
            "jars_dir": Path(raw("jars_dir") or REPO_ROOT / ".cache" / "jars").expanduser().absolute(),
            "connectors_dir": Path(raw("connectors_dir") or CONNECTORS_DIR).expanduser().absolute(),
            "pg_password": raw("pg_password") or generate_password(),
            "connect_password": raw("connect_password") or generate_password(),
            "capture_password": raw("capture_password") or generate_password(),
        }
        for setting in SETTINGS:
            if setting.field in values:
                continue
            value = raw(setting.field)
            value = setting.default if value is None else value
            if setting.field in _PORT_FIELDS:
                value = _parse_port(setting, value)
            elif setting.field in _BOOL_FIELDS:
                value = _parse_bool(setting, value)
            values[setting.field] = value
        return cls(**values)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> StackSettings:
        return dataclasses.replace(self, **changes)

    def as_env(self) -> dict[str, str]:
        """Every setting as ``CDC_*`` variables, for child processes (Airflow tasks read some of them)."""
        return {s.env: str(getattr(self, s.field)) for s in SETTINGS}

    # Derived places; all local state lives under stack_home.
    @property
    def repo_root(self) -> Path:
        return REPO_ROOT

    @property
    def logs_dir(self) -> Path:
        return self.stack_home / "logs"

    @property
    def pids_dir(self) -> Path:
        return self.stack_home / "pids"

    @property
    def pgdata(self) -> Path:
        return self.stack_home / "pgdata"

    @property
    def pg_socket_dir(self) -> Path:
        return self.stack_home / "run"

    @property
    def connect_dir(self) -> Path:
        return self.stack_home / "connect"

    @property
    def airflow_home(self) -> Path:
        return self.stack_home / "airflow"

    @property
    def dags_folder(self) -> Path:
        return REPO_ROOT / "dags"

    @property
    def plugins_folder(self) -> Path:
        return REPO_ROOT / "plugins"

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def connect_address(self) -> str:
        """Kafka Connect's REST API, to show (no credentials)."""
        return f"http://127.0.0.1:{self.connect_port}"

    @property
    def connect_url(self) -> str:
        """Kafka Connect's REST API with the basic-auth credentials in its user part (httpx sends them)."""
        return url_with_credentials(self.connect_address, self.connect_user, self.connect_password)

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.airflow_port}"

    @property
    def capture_conninfo(self) -> str:
        """The pipeline's and Debezium's role (least privilege), where pg_conninfo is the administrator's."""
        return (f"host={self.pg_host} port={self.pg_port} dbname={self.pg_db} "
                f"user={self.capture_user} password={self.capture_password} connect_timeout=3")

    @property
    def pg_conninfo(self) -> str:
        return (f"host={self.pg_host} port={self.pg_port} dbname={self.pg_db} "
                f"user={self.pg_user} password={self.pg_password} connect_timeout=3")


def generate_password() -> str:
    """A local password that no log line contains by accident (Airflow masks it wherever it appears)."""
    return f"cdc-{secrets.token_hex(8)}"


def _parse_bool(setting: Setting, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false", "1", "0", "yes", "no"):
        raise SettingsError(f"{setting.env}={value!r} is not true or false")
    return text in ("true", "1", "yes")


def _parse_port(setting: Setting, value: object) -> int:
    try:
        port = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        port = -1
    if not 1 <= port <= 65535:
        raise SettingsError(f"{setting.env}={value!r} is not a TCP port: set it to a number from 1 to 65535")
    return port


def settings_table_markdown() -> str:
    """The settings table as Markdown, for docs/local-stack.md (a test checks the doc matches)."""
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    lines += [f"| `{s.env}` | `{s.default}` | {s.description} |" for s in SETTINGS]
    return "\n".join(lines)
