"""A small client for Airflow 3's REST API (httpx): token, health, DAGs, runs, task logs.

``./stack up`` and the test fixtures use the same code.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from cdc_pipeline.waiting import wait_until
from devstack.errors import AirflowApiError

TERMINAL_RUN_STATES = frozenset({"success", "failed"})


class AirflowClient:
    def __init__(self, base_url: str, user: str, password: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.user = user
        self.password = password
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self._token: str | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AirflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def token(self, refresh: bool = False) -> str:
        """A bearer token from ``POST /auth/token`` (SimpleAuthManager), cached until a 401."""
        if self._token is None or refresh:
            response = self._http.post("/auth/token", json={"username": self.user, "password": self.password})
            _check(response, f"login as {self.user!r} (check CDC_AIRFLOW_USER / CDC_AIRFLOW_PASSWORD)")
            self._token = response.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An authenticated request; logs in again once if the token expired, and tries again (up to five times)
        when the standalone Airflow's SQLite metadata database was locked by a concurrent writer: a 500 "Database
        error", or the 503 "Database is locked" that backfill creation answers. In both the request's transaction
        was rolled back, so repeating it is safe."""
        extra_headers = kwargs.pop("headers", {})
        attempts = 6
        for attempt in range(attempts):
            headers = {"Authorization": f"Bearer {self.token(refresh=attempt == 1)}", **extra_headers}
            response = self._http.request(method, path, headers=headers, **kwargs)
            if _metadata_db_locked(response) and attempt < attempts - 1:
                time.sleep(0.5 * (attempt + 1))
                continue
            if response.status_code != 401 or attempt >= 1:
                break
        _check(response, f"{method} {path}")
        return response

    def health(self) -> dict[str, Any]:
        response = self._http.get("/api/v2/monitor/health")
        _check(response, "GET /api/v2/monitor/health")
        return response.json()

    def list_dags(self) -> list[dict[str, Any]]:
        return self.request("GET", "/api/v2/dags", params={"limit": 1000}).json()["dags"]

    def import_errors(self) -> list[dict[str, Any]]:
        return self.request("GET", "/api/v2/importErrors", params={"limit": 1000}).json()["import_errors"]

    def is_paused(self, dag_id: str) -> bool:
        return self.request("GET", f"/api/v2/dags/{dag_id}").json()["is_paused"]

    def wait_for_dag(self, dag_id: str, timeout: float = 240.0) -> None:
        """Wait until the dag-processor has parsed ``dag_id`` and the API lists it."""
        wait_until(lambda: dag_id in {d["dag_id"] for d in self.list_dags()},
                   what=f"the dag-processor to pick up {dag_id}", timeout=timeout, interval=3)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": paused})

    def unpause(self, dag_id: str) -> None:
        self.set_paused(dag_id, False)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, run_id: str | None = None) -> str:
        """Trigger a run now; returns its run id."""
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body).json()["dag_run_id"]

    def get_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300.0, interval: float = 2.0) -> str:
        """Wait until the run is success or failed; returns that state (WaitTimeout past the deadline)."""
        def terminal() -> str | None:
            state = self.get_run(dag_id, run_id)["state"]
            return state if state in TERMINAL_RUN_STATES else None

        return wait_until(terminal, what=f"DAG run {dag_id}/{run_id} to finish", timeout=timeout, interval=interval)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()["task_instances"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
        """The full log text of one task try (structured lines flattened to 'timestamp level event key=value')."""
        response = self.request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true", "map_index": map_index}, headers={"Accept": "application/json"})
        return "\n".join(_log_line(item) for item in response.json().get("content", []))


def _log_line(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    rest = {k: v for k, v in item.items() if k not in ("timestamp", "level", "event")}
    parts = [str(item.get("timestamp", "")), str(item.get("level", "")), str(item.get("event", ""))]
    parts += [f"{k}={v}" for k, v in rest.items()]
    return " ".join(p for p in parts if p)


def _metadata_db_locked(response: httpx.Response) -> bool:
    """SQLite's "database is locked" as Airflow's API reports it (a rolled-back transaction, safe to repeat)."""
    if response.status_code == 500:
        return "Database error" in response.text
    return response.status_code == 503 and "Database is locked" in response.text


def _check(response: httpx.Response, what: str) -> None:
    if response.is_success:
        return
    raise AirflowApiError(f"Airflow answered {response.status_code} to {what}: {response.text[:500]}")
