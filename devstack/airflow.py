"""Airflow 3 standalone (api-server, scheduler, dag-processor, triggerer), configured only through environment."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from cdc_pipeline.atomic import atomic_write_text
from devstack import process
from devstack.airflow_api import AirflowClient
from devstack.errors import PartStartError
from devstack.part import Part
from devstack.ports import ensure_port_free
from devstack.settings import StackSettings

log = logging.getLogger(__name__)

REQUIRED_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
# Resolved by Kafka Connect's EnvVarConfigProvider from the worker's environment (devstack/connect.py).
CONNECT_PASSWORD_REFERENCE = "${env:CDC_CAPTURE_PASSWORD}"


def airflow_environment(settings: StackSettings) -> dict[str, str]:
    """Every variable the launcher gives Airflow: its config, the CDC_* settings and the six connections.

    No airflow.cfg is edited by hand: Airflow writes a default one in AIRFLOW_HOME and these win over it.
    """
    s = settings
    api = s.airflow_url
    connections = {
        "cdc_kafka": {
            "conn_type": "kafka",
            "extra": {"bootstrap.servers": s.kafka_bootstrap, "group.id": s.kafka_group_id,
                      "enable.auto.commit": False, "auto.offset.reset": "earliest"},
        },
        "cdc_kafka_connect": {"conn_type": "http", "host": "127.0.0.1", "port": s.connect_port, "schema": "http",
                              "login": s.connect_user, "password": s.connect_password},
        # The extra's connect_password is what the pipeline registers as database.password: a reference
        # Kafka Connect resolves from its own environment (config.providers=env), never the password.
        # The pipeline and Debezium connect as the capture role (LOGIN REPLICATION, SELECT); the administrator's
        # connection only creates and alters the connector's publication (docs/source-privileges.md).
        "cdc_postgres": {"conn_type": "postgres", "host": s.pg_host, "port": s.pg_port, "login": s.capture_user,
                         "password": s.capture_password, "schema": s.pg_db,
                         "extra": {"connect_password": CONNECT_PASSWORD_REFERENCE}},
        "cdc_postgres_admin": {"conn_type": "postgres", "host": s.pg_host, "port": s.pg_port, "login": s.pg_user,
                               "password": s.pg_password, "schema": s.pg_db},
        "cdc_sink_postgres": {"conn_type": "postgres", "host": s.pg_host, "port": s.pg_port, "login": s.pg_user,
                              "password": s.pg_password, "schema": s.sink_db},
        # Lets finish_run put each run's one-line summary on the run as its note (plugins/cdc_airflow/run_notes.py).
        "cdc_airflow_api": {"conn_type": "http", "host": "127.0.0.1", "port": s.airflow_port, "login": s.airflow_user,
                            "password": s.airflow_password, "schema": "http"},
    }
    env = {
        **s.as_env(),
        "AIRFLOW_HOME": str(s.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(s.dags_folder),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(s.plugins_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # A connector file added to a running stack gives a DAG that runs, like the ones ./stack up unpaused.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": str(s.new_dags_paused),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(s.airflow_port),
        "AIRFLOW__API__BASE_URL": f"{api}/",
        "AIRFLOW__API__WORKERS": "1",
        # Without this, tasks try the default port 8080 and fail with "Connection refused" before they start.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        # New DAG files show up within 30 s instead of the default 300 s.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        # A skipped or failed task's end is only seen when the supervisor next looks (up to this many seconds,
        # 5 by default), and finish_run waits for it: 1 s takes 3-5 s off every run (docs/performance.md).
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
        # After a crash of Airflow itself, its orphaned tasks are failed (then retried) within 1.5 minutes instead
        # of 5: the one-minute pipeline waits behind them (max_active_runs=1).
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "90",
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "60",
        # Each LocalExecutor worker is a ~180 MB process started up front: 4 is plenty on 2 cores.
        "AIRFLOW__CORE__PARALLELISM": "4",
        # The scheduler's and the triggerer's log servers: Airflow binds them on all interfaces (no host
        # setting exists) at 8793/8794 by default, where a second stack would collide. Tie them to our port.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_server_ports(s)[0]),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(log_server_ports(s)[1]),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{s.airflow_user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file(s)),
        "NO_COLOR": "1",
    }
    for conn_id, conn in connections.items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
    return env


def process_environment(settings: StackSettings) -> dict[str, str]:
    """The environment an Airflow process of the stack starts with: ours, ``airflow_environment``, the venv's bin
    first on PATH (standalone starts its components as ``airflow ...``) and the repository on PYTHONPATH."""
    env = {**os.environ, **airflow_environment(settings)}
    env["PATH"] = f"{Path(sys.prefix) / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(settings.repo_root), env.get("PYTHONPATH")]))
    return env


def log_server_ports(settings: StackSettings) -> tuple[int, int]:
    """The worker and triggerer log-server ports: CDC_AIRFLOW_PORT + 1 and + 2."""
    return settings.airflow_port + 1, settings.airflow_port + 2


def passwords_file(settings: StackSettings) -> Path:
    return settings.airflow_home / "simple_auth_manager_passwords.json"


def dag_files(settings: StackSettings) -> list[Path]:
    """Files the dag-processor would parse (its safe mode: the text mentions both 'airflow' and 'dag')."""
    found = []
    for path in sorted(settings.dags_folder.rglob("*.py")) if settings.dags_folder.is_dir() else []:
        text = path.read_text(errors="replace").lower()
        if "airflow" in text and "dag" in text:
            found.append(path)
    return found


class AirflowPart(Part):
    name = "airflow"
    port_env = "CDC_AIRFLOW_PORT"
    port_field = "airflow_port"
    marker = "airflow standalone"
    other = "another Airflow api-server"
    start_timeout = 300.0
    stop_timeout = 40.0

    def client(self) -> AirflowClient:
        return AirflowClient(self.settings.airflow_url, self.settings.airflow_user, self.settings.airflow_password)

    def prepare(self) -> None:
        for port in log_server_ports(self.settings):
            ensure_port_free(port, f"{self.port_env} (+1 and +2: Airflow's log servers)", self.other,
                             grace=self.release_grace())
        self.settings.airflow_home.mkdir(parents=True, exist_ok=True)
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        # A fixed password instead of a generated one: SimpleAuthManager keeps users already in this file.
        atomic_write_text(passwords_file(self.settings),
                          json.dumps({self.settings.airflow_user: self.settings.airflow_password}))

    def launch(self) -> None:
        venv_bin = Path(sys.prefix) / "bin"
        airflow = venv_bin / "airflow"
        if not airflow.exists():
            raise PartStartError(f"{airflow} not found: run scripts/bootstrap.sh to install Airflow in the venv")
        process.start_detached([str(airflow), "standalone"], log_path=self.log_path, pid_path=self.pid_path,
                               env=process_environment(self.settings), cwd=self.settings.airflow_home)

    def probe(self) -> str:
        """Health all green, and when dags/ holds DAG files, the dag-processor has parsed them."""
        with self.client() as client:
            health = client.health()
            sick = [c for c in REQUIRED_COMPONENTS if (health.get(c) or {}).get("status") != "healthy"]
            if sick:
                raise PartStartError(f"not healthy yet: {', '.join(sick)}")
            detail = "health: " + ", ".join(REQUIRED_COMPONENTS) + " healthy"
            if not dag_files(self.settings):
                return detail + f"; no DAG files in {self.settings.dags_folder}"
            dags = client.list_dags()
            errors = client.import_errors()
            if not dags and not errors:
                raise PartStartError(f"the dag-processor has not parsed {self.settings.dags_folder} yet")
        detail += f"; {len(dags)} DAG(s): {', '.join(d['dag_id'] for d in dags)}"
        if errors:
            detail += f"; {len(errors)} import error(s) in {', '.join(e['filename'] for e in errors)}"
        return detail
