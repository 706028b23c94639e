"""Airflow on the CeleryExecutor beside the stack's services: several worker hosts, on one machine.

Redis (Debian's ``redis-server``) is the Celery broker; Airflow's api-server, scheduler and dag-processor run as
their own processes (``airflow standalone`` would force the LocalExecutor), and one ``airflow celery worker`` per
queue, each with its own data folder and ``CDC_WORKER_NAME``, as if each ran on its own host with its own disk
(docs/several-hosts.md). The two-worker tests and benchmark use it; the metadata database is SQLite in its own
AIRFLOW_HOME, like the local stack's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from cdc_pipeline.atomic import atomic_write_text
from cdc_pipeline.waiting import wait_until
from devstack import process
from devstack.airflow import passwords_file, process_environment
from devstack.airflow_api import AirflowClient
from devstack.errors import PartStartError
from devstack.testing import free_ports
from devstack.settings import StackSettings

CONTROL_COMPONENTS = ("metadatabase", "scheduler", "dag_processor")
WORKER_CONCURRENCY = 2  # task processes per worker: a pipeline run needs two at once (register beside consume)


@dataclass(frozen=True)
class CeleryWorker:
    """One worker "host": the queue it serves, its name and its own data folder."""

    queue: str
    name: str
    data_dir: Path


class CeleryAirflow:
    """Start, stop and kill the parts; ``client()`` talks to its api-server."""

    def __init__(self, services: StackSettings, home: Path, connectors_dir: Path, workers: list[CeleryWorker]):
        self.home = home
        self.workers = {w.name: w for w in workers}
        # The last port's +1 and +2 are free too: Airflow's log servers take them (devstack.airflow.log_server_ports).
        self.redis_port, airflow_port = free_ports(2)
        self.settings = replace(services, stack_home=home, data_dir=home / "control-data",
                                connectors_dir=connectors_dir, airflow_port=airflow_port, new_dags_paused=False)
        self.pids: dict[str, int] = {}

    # ------------------------------------------------------------------------------------------ environment

    def environment(self, worker: CeleryWorker | None = None) -> dict[str, str]:
        env = process_environment(self.settings)
        redis = f"redis://127.0.0.1:{self.redis_port}"
        env.update({
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": f"{redis}/0",
            # Results in Redis too: the SQLite metadata database takes one writer at a time.
            "AIRFLOW__CELERY__RESULT_BACKEND": f"{redis}/1",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
        })
        if worker is not None:
            env.update({"CDC_DATA_DIR": str(worker.data_dir), "CDC_WORKER_NAME": worker.name})
        return env

    def client(self) -> AirflowClient:
        s = self.settings
        return AirflowClient(s.airflow_url, s.airflow_user, s.airflow_password)

    # ------------------------------------------------------------------------------------------ start, stop

    def start(self) -> None:
        """Redis, the metadata database, the control plane, then every worker; waits until the DAGs are parsed."""
        redis = shutil.which("redis-server")
        if redis is None:
            raise PartStartError("redis-server not found: run scripts/bootstrap.sh (Debian package redis-server)")
        self.settings.airflow_home.mkdir(parents=True, exist_ok=True)
        atomic_write_text(passwords_file(self.settings),
                          json.dumps({self.settings.airflow_user: self.settings.airflow_password}))
        (self.home / "redis").mkdir(parents=True, exist_ok=True)
        self._launch("redis", [redis, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(self.home / "redis")])
        migrated = subprocess.run([self._airflow(), "db", "migrate"], env=self.environment(), cwd=self.home,
                                  capture_output=True, text=True, timeout=300)
        if migrated.returncode != 0:
            raise PartStartError(f"airflow db migrate failed: {migrated.stdout[-2000:]}{migrated.stderr[-2000:]}")
        for component in ("api-server", "scheduler", "dag-processor"):
            self._launch(component, [self._airflow(), component])
        for worker in self.workers.values():
            self.start_worker(worker.name)
        wait_until(self._ready, what="the Celery Airflow's api-server, scheduler and dag-processor", timeout=300,
                   interval=2.0, log_path=self.log_path("api-server"))

    def start_worker(self, name: str) -> None:
        worker = self.workers[name]
        worker.data_dir.mkdir(parents=True, exist_ok=True)
        # Task logs go to the shared AIRFLOW_HOME/logs, where the api-server reads them: no log server needed.
        self._launch(f"worker-{name}", [self._airflow(), "celery", "worker", "--queues", worker.queue,
                                        "--celery-hostname", f"{name}@%h", "--skip-serve-logs"],
                     env=self.environment(worker))
        wait_until(lambda: self._worker_ready(name), what=f"Celery worker {name}", timeout=120, interval=1.0,
                   log_path=self.log_path(f"worker-{name}"))

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker and its task processes at once, as a host that loses power."""
        pid = self.pids.pop(f"worker-{name}")
        for target in [pid, *process.descendants(pid)]:
            try:
                os.kill(target, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        for part in reversed(list(self.pids)):
            process.stop_process(self.pids.pop(part), timeout=30)

    # ------------------------------------------------------------------------------------------ helpers

    def log_path(self, part: str) -> Path:
        return self.home / "logs" / f"{part}.log"

    def _airflow(self) -> str:
        return str(Path(sys.prefix) / "bin" / "airflow")

    def _launch(self, part: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.pids[part] = process.start_detached(argv, log_path=self.log_path(part),
                                                 pid_path=self.home / "pids" / f"{part}.pid",
                                                 env=env or self.environment(), cwd=self.home)

    def _ready(self) -> bool:
        with self.client() as client:
            try:
                health = client.health()
            except Exception:  # noqa: BLE001 - not listening yet
                return False
            if any((health.get(c) or {}).get("status") != "healthy" for c in CONTROL_COMPONENTS):
                return False
            return bool(client.list_dags())

    def _worker_ready(self, name: str) -> bool:
        if not process.is_alive(self.pids[f"worker-{name}"]):
            raise PartStartError(f"Celery worker {name} exited: see {self.log_path(f'worker-{name}')}")
        log = self.log_path(f"worker-{name}").read_text(errors="replace")
        return f"{name}@" in log and "ready." in log  # Celery's "celery@<name> ready." once it consumes
