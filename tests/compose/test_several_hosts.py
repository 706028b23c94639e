"""The shape on several hosts, checked by Docker Compose itself (no Docker engine): the control host's override
and a worker host's file resolve, refuse to start without their variables, and agree with each other: every
service a worker reaches, by the names the shared settings use, is published by the control host on that port,
on its private address only; each worker serves its own queue, with its own disk and name."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.compose.test_docker_compose import (COMPOSE_FILE, REPO_ROOT, env_of, env_with_sentinels, run_compose,
                                               services, unescape)

WORKER_FILE = REPO_ROOT / "docker-compose.worker.yml"
CONTROL_FILE = REPO_ROOT / "docker-compose.control.yml"
WORKER_VARIABLES = {"CDC_WORKER_NAME": "worker-a", "CDC_WORKER_QUEUE": "host-a", "CDC_CONTROL_ADDRESS": "10.0.0.10",
                    "CDC_WORKER_ADDRESS": "10.0.0.11"}
CONTROL_VARIABLES = {"PRIVATE_ADDRESS": "10.0.0.10", "AIRFLOW_EXECUTOR": "CeleryExecutor"}
# Where each service listens inside its container, by the control host's service name.
CONTAINER_PORTS = {"redis": 6379, "airflow-db": 5432, "airflow-apiserver": 8080, "kafka": 9092, "connect": 8083,
                   "postgres": 5432}


def worker_model(tmp_path: Path, text: str | None = None, env: dict[str, str] | None = None) -> dict:
    env = env if env is not None else {**env_with_sentinels(), **WORKER_VARIABLES}
    text = (text or WORKER_FILE.read_text()).replace("file: docker-compose.yml", f"file: {COMPOSE_FILE}")
    result = run_compose(tmp_path, env, "config", "--format", "json", compose_text=text)
    assert result.returncode == 0, result.stderr
    return unescape(json.loads(result.stdout))


def control_model(tmp_path: Path) -> dict:
    result = run_compose(tmp_path, {**env_with_sentinels(), **CONTROL_VARIABLES}, "-f", str(CONTROL_FILE),
                         "--profile", "celery", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return unescape(json.loads(result.stdout))


def endpoints(env: dict[str, str]) -> set[tuple[str, int]]:
    """Every (host, port) the worker's settings and Airflow connections reach."""
    found: set[tuple[str, int]] = set()
    for key, value in env.items():
        if key.startswith("AIRFLOW_CONN_"):
            conn = json.loads(value)
            if conn.get("host"):
                found.add((conn["host"], int(conn["port"])))
            for server in str((conn.get("extra") or {}).get("bootstrap.servers", "")).split(","):
                if server:
                    host, _, port = server.rpartition(":")
                    found.add((host, int(port)))
        elif "://" in value:
            url = urlsplit(value.removeprefix("db+"))
            if url.hostname and url.port:
                found.add((url.hostname, url.port))
    return found


def published(model: dict) -> dict[tuple[str, int], str]:
    """(service, host port) -> the address it is published on."""
    return {(name, int(port["published"])): port.get("host_ip") or "0.0.0.0"
            for name, svc in services(model).items() for port in svc.get("ports") or []}


# ----------------------------------------------------------------------------------------------- checks

def check_worker(model: dict) -> list[str]:
    problems = []
    svcs = services(model)
    if set(svcs) != {"airflow-worker"}:
        return [f"a worker host runs the worker only, found {sorted(svcs)}"]
    worker = svcs["airflow-worker"]
    env = env_of(worker)
    if worker.get("command") != ["celery", "worker", "--queues", WORKER_VARIABLES["CDC_WORKER_QUEUE"]]:
        problems.append(f"the worker must serve its own queue: command is {worker.get('command')}")
    if worker.get("hostname") != WORKER_VARIABLES["CDC_WORKER_NAME"] or env.get("CDC_WORKER_NAME") != worker.get("hostname"):
        problems.append("hostname and CDC_WORKER_NAME must both be the worker's name")
    if env.get("AIRFLOW__CORE__EXECUTOR") != "CeleryExecutor":
        problems.append("the worker host runs the CeleryExecutor")
    mounts = {v.get("target"): v.get("source") for v in worker.get("volumes") or []}
    if mounts.get(env.get("CDC_DATA_DIR")) != "cdc-data" or "cdc-data" not in (model.get("volumes") or {}):
        problems.append("CDC_DATA_DIR must be the host's own cdc-data volume")
    if worker.get("depends_on") or worker.get("profiles"):
        problems.append("a worker host has no services to wait for and no profile")
    hosts = dict(entry.split("=", 1) if "=" in entry else entry.split(":", 1) for entry in worker.get("extra_hosts") or [])
    for host, _port in sorted(endpoints(env)):
        if hosts.get(host) != WORKER_VARIABLES["CDC_CONTROL_ADDRESS"]:
            problems.append(f"{host} (in the worker's settings) must resolve to the control host's address")
    for (_svc, port), address in published(model).items():
        if address != WORKER_VARIABLES["CDC_WORKER_ADDRESS"]:
            problems.append(f"port {port} is published on {address}, not only on the worker's private address")
    return problems


def check_agreement(worker: dict, control: dict) -> list[str]:
    """Each endpoint a worker reaches is a control-host service published on that port, privately."""
    problems = []
    env = env_of(services(worker)["airflow-worker"])
    ports = published(control)
    for host, port in sorted(endpoints(env)):
        if host not in CONTAINER_PORTS:
            problems.append(f"the worker reaches {host}:{port}, which is no control-host service")
        elif (host, port) not in ports:
            problems.append(f"the worker reaches {host}:{port}, which the control host does not publish")
        elif ports[(host, port)] not in (CONTROL_VARIABLES["PRIVATE_ADDRESS"], "127.0.0.1"):
            problems.append(f"{host}:{port} is published on {ports[(host, port)]}, not on the private address")
    control_worker = services(control)["airflow-worker"]
    if (control_worker.get("deploy") or {}).get("replicas") != 0:
        problems.append("no worker runs on the control host (deploy.replicas 0)")
    if services(worker)["airflow-worker"].get("image") != control_worker.get("image"):
        problems.append("the worker host runs the control host's Airflow image")
    # Besides the settings a worker host overrides, it shares docker-compose.yml's worker environment.
    own = {"AIRFLOW__CORE__EXECUTOR", "CDC_WORKER_NAME", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
           "AIRFLOW__CELERY__RESULT_BACKEND"}
    theirs = {k: v for k, v in env_of(control_worker).items() if k not in own}
    differing = sorted(k for k, v in theirs.items() if env.get(k) != v)
    if differing:
        problems.append(f"the worker host's settings differ from docker-compose.yml's: {differing}")
    return problems


# ----------------------------------------------------------------------------------------------- tests

def test_a_worker_host_serves_its_own_queue_with_its_own_disk_and_name(tmp_path):
    problems = check_worker(worker_model(tmp_path))
    assert not problems, "\n".join(problems)


def test_the_control_host_publishes_privately_every_service_a_worker_reaches(tmp_path):
    problems = check_agreement(worker_model(tmp_path), control_model(tmp_path))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("variable", sorted(WORKER_VARIABLES))
def test_a_worker_host_refuses_to_start_without_each_of_its_variables(tmp_path, variable):
    env = {**env_with_sentinels(), **WORKER_VARIABLES, variable: ""}
    text = WORKER_FILE.read_text().replace("file: docker-compose.yml", f"file: {COMPOSE_FILE}")
    result = run_compose(tmp_path, env, "config", "--quiet", compose_text=text)
    assert result.returncode != 0 and f"required variable {variable} is missing" in result.stderr, result.stderr


def test_the_control_host_refuses_to_start_without_its_private_address(tmp_path):
    env = {**env_with_sentinels(), **CONTROL_VARIABLES, "PRIVATE_ADDRESS": ""}
    result = run_compose(tmp_path, env, "-f", str(CONTROL_FILE), "--profile", "celery", "config", "--quiet")
    assert result.returncode != 0 and "required variable PRIVATE_ADDRESS is missing" in result.stderr


@pytest.mark.parametrize("case", ["kafka-unmapped", "no-queue", "shared-name"])
def test_each_check_notices_the_copy_it_guards(tmp_path, case):
    text = WORKER_FILE.read_text()
    broken = {
        "kafka-unmapped": lambda t: "\n".join(line for line in t.splitlines() if '"kafka:' not in line),
        "no-queue": lambda t: t.replace("command: celery worker --queues", "command: celery worker --autoscale 2,1 #"),
        "shared-name": lambda t: t.replace("    hostname: ${CDC_WORKER_NAME", "    hostname: shared-${CDC_WORKER_NAME"),
    }[case](text)
    assert broken != text
    assert check_worker(worker_model(tmp_path, broken)), case
