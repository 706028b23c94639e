"""Live probes for the status: Kafka Connect's view of the connector, and the replication slot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cdc_pipeline.kafka_connect import KafkaConnectClient
from cdc_pipeline.source.checks import SourceParams


def connector_probe(make_client: Callable[[], KafkaConnectClient], name: str) -> Callable[[], dict[str, Any] | None]:
    def probe() -> dict[str, Any] | None:
        with make_client() as client:
            status = client.status(name)
        if status is None:
            return {"state": "NOT REGISTERED", "tasks": []}
        return {"state": status.state, "tasks": [{"id": t.get("id"), "state": t.get("state")} for t in status.tasks],
                "describe": status.describe()}
    return probe


def slot_probe(source: SourceParams, slot_name: str) -> Callable[[], dict[str, Any] | None]:
    def probe() -> dict[str, Any] | None:
        with source.connect(autocommit=True) as conn:
            row = conn.execute(
                "SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint,"
                " pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint"
                " FROM pg_replication_slots WHERE slot_name = %s", (slot_name,)).fetchone()
        if row is None:
            return {"slot": slot_name, "exists": False}
        return {"slot": slot_name, "exists": True, "active": row[0], "retained_wal_bytes": row[1],
                "unconfirmed_wal_bytes": row[2]}
    return probe


def dag_paused_probe(airflow_url: str, user: str, password: str, dag_id: str, *,
                     timeout: float = 5.0) -> Callable[[], bool | None]:
    """Is ``dag_id`` paused? Asked of Airflow's REST API (a token from ``/auth/token``, then ``GET /api/v2/dags``);
    None when Airflow does not know the DAG yet."""
    import httpx

    def probe() -> bool | None:
        with httpx.Client(base_url=airflow_url.rstrip("/"), timeout=timeout) as http:
            login = http.post("/auth/token", json={"username": user, "password": password})
            if login.status_code >= 400:
                raise RuntimeError(f"Airflow refused the login as {user!r} ({login.status_code}); set "
                                   "CDC_AIRFLOW_USER and CDC_AIRFLOW_PASSWORD")
            dag = http.get(f"/api/v2/dags/{dag_id}",
                           headers={"Authorization": f"Bearer {login.json()['access_token']}"})
            if dag.status_code == 404:
                return None
            dag.raise_for_status()
            return bool(dag.json().get("is_paused"))
    return probe


def asked_once(probe: Callable[[], Any]) -> Callable[[], Any]:
    """``probe`` asked at its first call only; later calls answer the same (or raise the same error). The
    tables of a connector share its connector and its slot, so a status of each table asks them once."""
    answers: list[tuple[Any, Exception | None]] = []

    def once() -> Any:
        if not answers:
            try:
                answers.append((probe(), None))
            except Exception as exc:  # noqa: BLE001 - kept for the next table's status, which says it too
                answers.append((None, exc))
        answer, error = answers[0]
        if error is not None:
            raise error
        return answer
    return once
