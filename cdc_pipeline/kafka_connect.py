"""Kafka Connect's REST API: create or update a connector, and wait until it and its tasks run."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass

import httpx

from cdc_pipeline.errors import ConnectorError, ConnectUnreachableError
from cdc_pipeline.waiting import WaitTimeout, wait_until

log = logging.getLogger(__name__)

RUNNING = "RUNNING"
FAILED = "FAILED"


@dataclass(frozen=True)
class ConnectorStatus:
    """The parts of ``GET /connectors/{name}/status`` the pipeline acts on."""

    name: str
    state: str
    trace: str | None
    tasks: tuple[dict, ...]

    @property
    def failed_tasks(self) -> list[dict]:
        return [t for t in self.tasks if t.get("state") == FAILED]

    @property
    def is_running(self) -> bool:
        return self.state == RUNNING and bool(self.tasks) and all(t.get("state") == RUNNING for t in self.tasks)

    def describe(self) -> str:
        tasks = ", ".join(f"task {t.get('id')}: {t.get('state')}" for t in self.tasks) or "no tasks yet"
        return f"connector {self.name}: {self.state}; {tasks}"


# 0.5 + 1 + ... + 3 s: a one-worker group rebalances in well under that.
REBALANCE_TRIES = 7

WORKER_LOG = "Check the worker log (locally: ./stack logs connect)."


UNAUTHORIZED_FIX = ("Kafka Connect's REST API asks for a user and password (its basic-auth REST extension): set "
                    "them as login and password of the 'cdc_kafka_connect' Airflow connection, or in the URL "
                    "(http://user:password@host:8083); locally they are CDC_CONNECT_USER and CDC_CONNECT_PASSWORD "
                    "in .stack/settings.json.")


def url_with_credentials(url: str, user: str | None, password: str | None) -> str:
    """``url`` with the REST API's basic-auth user and password in its user part, unless it has one already."""
    parsed = httpx.URL(url)
    if not user or parsed.username:
        return url
    return str(parsed.copy_with(username=user, password=password or ""))


class KafkaConnectClient:
    """A small client over ``httpx`` for the few endpoints the pipeline uses.

    Credentials for the REST API's basic authentication come as ``auth=(user, password)`` or in the URL's user
    part; ``base_url`` (what messages show) never carries them.
    """

    def __init__(self, base_url: str, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None,
                 auth: tuple[str, str] | None = None) -> None:
        url = httpx.URL(base_url.rstrip("/"))
        if auth is None and url.username:
            auth = (url.username, url.password)
        self.base_url = str(url.copy_with(userinfo=b""))
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport,
                                  auth=httpx.BasicAuth(*auth) if auth else None)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KafkaConnectClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """One REST call. A distributed worker answers 409 while its group rebalances (after a start, or when
        connectors are added), and 500 "a rebalance is expected" just after a connector was stopped or resumed:
        asked again after a short pause, up to REBALANCE_TRIES times."""
        for attempt in range(1, REBALANCE_TRIES):
            response = self._send(method, path, **kwargs)
            if not _rebalancing(response):
                return response
            time.sleep(0.5 * attempt)
        return self._send(method, path, **kwargs)

    def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ConnectUnreachableError(
                f"Kafka Connect at {self.base_url} did not answer {method} {path} ({exc.__class__.__name__}: "
                f"{exc}). Is the worker running? Locally: ./stack status, then ./stack logs connect; check the "
                "'cdc_kafka_connect' Airflow connection's host and port."
            ) from exc
        if response.status_code in (401, 403):  # never read as "no such connector"
            _expect(response, (), f"{method} {path}", UNAUTHORIZED_FIX)
        return response

    def get_config(self, name: str) -> dict[str, str] | None:
        response = self._request("GET", f"/connectors/{name}/config")
        if response.status_code == 404:
            return None
        _expect(response, (200,), f"reading the config of connector {name!r}", WORKER_LOG)
        return response.json()

    def put_config(self, name: str, config: dict[str, str]) -> str:
        """Create or update; answer 'created', 'updated' or 'unchanged' (nothing is sent when equal)."""
        wanted = dict(config, name=name)
        current = self.get_config(name)
        if current is not None and current == wanted:
            return "unchanged"
        response = self._request("PUT", f"/connectors/{name}/config", json=wanted)
        _expect(response, (200, 201), f"creating or updating connector {name!r}",
                "Fix the connector file in include/connectors/ or the 'cdc_postgres' connection, then clear the task.")
        return "created" if response.status_code == 201 else "updated"

    def status(self, name: str) -> ConnectorStatus | None:
        response = self._request("GET", f"/connectors/{name}/status")
        if response.status_code == 404:
            return None
        _expect(response, (200,), f"reading the status of connector {name!r}", WORKER_LOG)
        body = response.json()
        connector = body.get("connector", {})
        return ConnectorStatus(
            name=name,
            state=connector.get("state", "UNKNOWN"),
            trace=connector.get("trace"),
            tasks=tuple(body.get("tasks", [])),
        )

    def stop(self, name: str, *, timeout: float = 60.0) -> None:
        """Stop the connector and its tasks (Connect 3.5+), waiting until it reports STOPPED."""
        response = self._request("PUT", f"/connectors/{name}/stop")
        _expect(response, (200, 202, 204), f"stopping connector {name!r}",
                f"Stopping a connector needs Kafka Connect 3.5 or later. {WORKER_LOG}")
        try:
            wait_until(lambda: (s := self.status(name)) is None or s.state == "STOPPED", what=f"connector {name} to stop",
                       timeout=timeout, interval=1.0)
        except WaitTimeout as exc:
            raise ConnectorError(f"connector {name!r} did not report STOPPED within {timeout:.0f} s: {exc}") from exc

    def delete_offsets(self, name: str) -> None:
        """Forget the connector's source offsets (Connect 3.6+, KIP-875): its next start snapshots again."""
        response = self._request("DELETE", f"/connectors/{name}/offsets")
        _expect(response, (200,), f"deleting the offsets of connector {name!r}",
                f"Deleting offsets needs Kafka Connect 3.6 or later and the connector STOPPED first. {WORKER_LOG}")

    def offsets(self, name: str) -> list[dict] | None:
        """The connector's committed source offsets (``GET /connectors/{name}/offsets``, Connect 3.5+, KIP-875):
        ``[{"partition": {...}, "offset": {...}}]``; None when the connector is not registered."""
        response = self._request("GET", f"/connectors/{name}/offsets")
        if response.status_code == 404:
            return None
        _expect(response, (200,), f"reading the offsets of connector {name!r}",
                f"Reading offsets needs Kafka Connect 3.5 or later. {WORKER_LOG}")
        return list(response.json().get("offsets") or [])

    def delete(self, name: str) -> None:
        """Remove the connector (its source offsets stay with the worker); nothing when it does not exist."""
        response = self._request("DELETE", f"/connectors/{name}")
        _expect(response, (200, 204, 404), f"deleting connector {name!r}", WORKER_LOG)

    def resume(self, name: str) -> None:
        response = self._request("PUT", f"/connectors/{name}/resume")
        _expect(response, (200, 202, 204), f"resuming connector {name!r}", WORKER_LOG)

    def restart_failed(self, name: str) -> None:
        response = self._request("POST", f"/connectors/{name}/restart", params={"includeTasks": "true", "onlyFailed": "true"})
        _expect(response, (200, 202, 204), f"restarting the failed parts of connector {name!r}", WORKER_LOG)

    def wait_until_running(self, name: str, *, timeout: float = 90.0, interval: float = 2.0) -> ConnectorStatus:
        """Wait, bounded, for the connector and every task to be RUNNING; restart failed ones once.

        A connector whose task failed again after the restart raises ConnectorError quoting the task's
        trace, which is where Debezium says what is wrong (wal_level, a missing slot, bad credentials).
        """
        restarted = False
        last: list[ConnectorStatus | None] = [None]

        def settled() -> ConnectorStatus | ConnectorError | None:
            """RUNNING, or a final failure (returned, not raised: wait_until retries on exceptions)."""
            nonlocal restarted
            status = last[0] = self.status(name)
            if status is None or status.is_running:
                return status
            if status.state == FAILED or status.failed_tasks:
                if restarted:
                    return ConnectorError(_failure_message(status, "still failed after one restart"))
                log.warning("%s; restarting the failed parts once", status.describe())
                self.restart_failed(name)
                restarted = True
            return None

        try:
            outcome = wait_until(settled, what=f"connector {name} and its tasks to run", timeout=timeout, interval=interval)
        except WaitTimeout as exc:
            state = last[0].describe() if last[0] else f"connector {name} does not exist"
            raise ConnectorError(
                f"{state} after waiting {timeout:.0f} s for RUNNING. Check the worker log "
                "(locally: ./stack logs connect) and PostgreSQL's reachability from the worker."
            ) from exc
        if isinstance(outcome, ConnectorError):
            raise outcome
        return outcome


def _rebalancing(response: httpx.Response) -> bool:
    """Kafka Connect's answers while its group rebalances: 409, or 500 whose message says a rebalance is expected
    (DistributedHerder's RebalanceNeededException)."""
    return response.status_code == 409 or (response.status_code == 500 and "rebalance" in response.text.lower())


def _expect(response: httpx.Response, codes: Collection[int], what: str, fix: str) -> None:
    """Raise ConnectorError unless Kafka Connect answered one of ``codes``: the message names the call, the
    status, Kafka Connect's own message and ``fix``, what to do about it."""
    if response.status_code in codes:
        return
    if _rebalancing(response):
        fix = (f"The worker's group was still rebalancing after {REBALANCE_TRIES} tries: wait until it settles, "
               f"then try again. {fix}")
    request = response.request
    url = request.url.copy_with(userinfo=b"")  # never a password in a message
    raise ConnectorError(f"{what} failed: Kafka Connect answered {request.method} {url} with "
                         f"{response.status_code}: {_error_text(response)}. {fix}")


def _error_text(response: httpx.Response) -> str:
    """Kafka Connect's ``message`` (its error bodies are ``{"error_code": ..., "message": ...}``)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:2000] or "(no message)"
    return str(body.get("message", body) if isinstance(body, dict) else body)


def _failure_message(status: ConnectorStatus, what: str) -> str:
    traces = [status.trace] if status.trace else []
    traces += [f"task {t.get('id')}: {t.get('trace')}" for t in status.failed_tasks if t.get("trace")]
    first_lines = "\n".join(_head(t, 12) for t in traces) or "(no trace reported)"
    return f"{status.describe()}: {what}. Trace:\n{first_lines}"


def _head(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[:lines])
