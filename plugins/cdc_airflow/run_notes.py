"""Put a run's one-line summary on the Airflow run itself (its note), so the run page and grid show volume.

A task cannot set its run's note through the Task SDK, so this uses Airflow's public REST API with the
optional connection ``cdc_airflow_api`` (http: host, port, login, password; the local stack and
docker-compose define it). Without that connection, or if Airflow refuses, the summary stays in the task
log and the run history; the task does not fail for it.
"""

from __future__ import annotations

import logging

import httpx

from airflow.sdk import BaseHook

from cdc_airflow.settings import AIRFLOW_API_CONN_ID

log = logging.getLogger(__name__)

NOTE_LIMIT = 1000  # Airflow's limit for a run note


def set_run_note(context, note: str, conn_id: str = AIRFLOW_API_CONN_ID) -> bool:
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - an absent optional connection raises Airflow's own not-found error
        log.debug("no %s connection: the run note is not set", conn_id)
        return False
    scheme = conn.schema or "http"
    base = f"{scheme}://{conn.host}:{conn.port}" if conn.port else f"{scheme}://{conn.host}"
    dag_run = context["dag_run"]
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            token = client.post("/auth/token", json={"username": conn.login, "password": conn.password})
            token.raise_for_status()
            response = client.patch(
                f"/api/v2/dags/{dag_run.dag_id}/dagRuns/{dag_run.run_id}", params={"update_mask": "note"},
                json={"note": note[:NOTE_LIMIT]}, headers={"Authorization": f"Bearer {token.json()['access_token']}"})
            response.raise_for_status()
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        log.warning("could not set the run note through %s (%s): %s", conn_id, base, exc)
        return False
    return True
