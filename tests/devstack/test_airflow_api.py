"""The Airflow client repeats a request whose transaction Airflow rolled back because SQLite was locked, and
nothing else (httpx.MockTransport: no Airflow needed)."""

from __future__ import annotations

import httpx
import pytest

from devstack import airflow_api
from devstack.airflow_api import AirflowClient
from devstack.errors import AirflowApiError

LOCKED_503 = (503, {"detail": "Database is locked. Backfill creation is not supported on SQLite under concurrent "
                              "access. Please use PostgreSQL or MySQL."})
DB_ERROR_500 = (500, {"detail": "Database error"})


def client_answering(answers: list[tuple[int, dict]]) -> tuple[AirflowClient, list[str]]:
    """A client whose Airflow gives a token, then ``answers`` in turn to the other requests; returns the paths seen."""
    seen: list[str] = []
    pending = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            return httpx.Response(201, json={"access_token": "t"})
        seen.append(request.url.path)
        status, body = pending.pop(0)
        return httpx.Response(status, json=body)

    client = AirflowClient("http://airflow.test", "admin", "pw")
    client._http = httpx.Client(base_url="http://airflow.test", transport=httpx.MockTransport(handler))
    return client, seen


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(airflow_api.time, "sleep", lambda s: None)


@pytest.mark.parametrize("locked", [LOCKED_503, DB_ERROR_500], ids=["503 backfill locked", "500 database error"])
def test_a_request_refused_because_sqlite_was_locked_is_repeated(locked):
    client, seen = client_answering([locked, locked, (200, {"id": 7})])
    assert client.request("POST", "/api/v2/backfills", json={}).json() == {"id": 7}
    assert seen == ["/api/v2/backfills"] * 3


def test_a_lock_that_does_not_go_away_is_reported():
    client, seen = client_answering([LOCKED_503] * 6)
    with pytest.raises(AirflowApiError, match="503 to POST /api/v2/backfills: .*Database is locked"):
        client.request("POST", "/api/v2/backfills", json={})
    assert len(seen) == 6


@pytest.mark.parametrize("answer", [(503, {"detail": "scheduler unavailable"}), (500, {"detail": "boom"}),
                                    (409, {"detail": "already running"})])
def test_other_errors_are_not_repeated(answer):
    client, seen = client_answering([answer, (200, {})])
    with pytest.raises(AirflowApiError, match=f"{answer[0]} to POST"):
        client.request("POST", "/api/v2/backfills", json={})
    assert seen == ["/api/v2/backfills"]
