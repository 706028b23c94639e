"""KafkaConnectClient against a scripted HTTP transport (the real worker is exercised in tests/stack)."""

import base64
import json

import httpx
import pytest

from cdc_pipeline.errors import ConnectorError
from cdc_pipeline.kafka_connect import KafkaConnectClient, url_with_credentials


class FakeConnect:
    def __init__(self, statuses=None, config=None):
        self.config = config
        self.statuses = list(statuses or [])
        self.calls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        if request.url.path.endswith("/config") and request.method == "GET":
            return httpx.Response(200, json=self.config) if self.config else httpx.Response(404, json={"message": "not found"})
        if request.method == "PUT":
            created = self.config is None
            self.config = json.loads(request.content)
            return httpx.Response(201 if created else 200, json={})
        if request.url.path.endswith("/status"):
            return httpx.Response(200, json=self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0])
        if request.url.path.endswith("/restart"):
            return httpx.Response(202)
        return httpx.Response(500)


def client(fake) -> KafkaConnectClient:
    return KafkaConnectClient("http://connect", transport=httpx.MockTransport(fake))


def status(connector="RUNNING", *tasks, trace=None):
    return {"connector": {"state": connector}, "tasks": [{"id": i, "state": s, "trace": trace} for i, s in enumerate(tasks)]}


def test_put_creates_then_updates_then_sends_nothing_when_equal():
    fake = FakeConnect()
    c = client(fake)
    assert c.put_config("a", {"k": "1"}) == "created"
    assert c.put_config("a", {"k": "2"}) == "updated"
    fake.calls.clear()
    assert c.put_config("a", {"k": "2"}) == "unchanged"
    assert fake.calls == ["GET /connectors/a/config"]


def test_wait_restarts_a_failed_task_once_then_succeeds():
    fake = FakeConnect(statuses=[status("RUNNING", "FAILED", trace="boom"), status("RUNNING", "RUNNING")])
    result = client(fake).wait_until_running("a", timeout=5, interval=0)
    assert result.is_running
    assert "POST /connectors/a/restart" in fake.calls


def test_wait_quotes_the_task_trace_when_it_fails_again():
    trace = "io.debezium.DebeziumException: wal_level must be logical\n\tat x"
    fake = FakeConnect(statuses=[status("RUNNING", "FAILED", trace=trace)])
    with pytest.raises(ConnectorError, match="(?s)still failed after one restart.*wal_level must be logical"):
        client(fake).wait_until_running("a", timeout=5, interval=0)


def test_wait_is_bounded():
    fake = FakeConnect(statuses=[status("UNASSIGNED")])
    with pytest.raises(ConnectorError, match="after waiting 0 s"):
        client(fake).wait_until_running("a", timeout=0, interval=0)


def test_unreachable_worker_says_where_to_look():
    def refuse(request):
        raise httpx.ConnectError("connection refused")

    with pytest.raises(ConnectorError, match="did not answer.*stack logs connect"):
        client(refuse).get_config("a")


def test_refused_config_quotes_connects_message():
    def bad(request):
        if request.method == "GET":
            return httpx.Response(404)
        return httpx.Response(400, json={"message": "Connector configuration is invalid: slot.name"})

    with pytest.raises(ConnectorError, match="invalid: slot.name"):
        client(bad).put_config("a", {})


def test_a_rebalancing_worker_is_asked_again_and_a_lasting_409_is_reported(monkeypatch):
    monkeypatch.setattr("cdc_pipeline.kafka_connect.time.sleep", lambda seconds: None)
    answers = [409, 409, 200]
    calls: list[str] = []

    def rebalancing(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        code = answers.pop(0) if answers else 409
        return httpx.Response(code, json={"name": "c", "x": "1"} if code == 200 else {"message": "rebalance in progress"})

    assert client(rebalancing).get_config("c") == {"name": "c", "x": "1"}
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(ConnectorError, match="409.*rebalance in progress"):
        client(rebalancing).get_config("c")
    assert len(calls) == 7


def test_a_500_saying_a_rebalance_is_expected_is_asked_again_and_other_500s_are_not(monkeypatch):
    """What a worker answered GET /connectors/NAME/config with right after that connector was resumed."""
    monkeypatch.setattr("cdc_pipeline.kafka_connect.time.sleep", lambda seconds: None)
    expected = {"error_code": 500, "message": "Request cannot be completed because a rebalance is expected"}
    answers = [500, 200]

    def resuming(request: httpx.Request) -> httpx.Response:
        code = answers.pop(0)
        return httpx.Response(code, json={"name": "c"} if code == 200 else expected)

    assert client(resuming).get_config("c") == {"name": "c"}
    calls: list[str] = []

    def broken(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(500, json={"error_code": 500, "message": "NullPointerException"})

    with pytest.raises(ConnectorError, match="500: NullPointerException"):
        client(broken).get_config("c")
    assert len(calls) == 1


def test_a_refused_call_names_the_call_the_status_connects_message_and_the_remedy():
    def not_stopped(request):
        return httpx.Response(400, json={"error_code": 400, "message": "Connectors must be in the STOPPED state"})

    with pytest.raises(ConnectorError) as refused:
        client(not_stopped).delete_offsets("a")
    message = str(refused.value)
    assert "deleting the offsets of connector 'a' failed" in message
    assert "DELETE http://connect/connectors/a/offsets with 400: Connectors must be in the STOPPED state" in message
    assert "the connector STOPPED first" in message and "./stack logs connect" in message

    def broken(request):
        return httpx.Response(500, text="")

    with pytest.raises(ConnectorError, match=r"resuming connector 'a' failed: .* with 500: \(no message\)\. "
                                             r"Check the worker log"):
        client(broken).resume("a")


def test_credentials_in_the_url_are_sent_as_basic_auth_and_never_shown():
    seen = []

    def worker(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(404, json={"message": "not found"})

    url = url_with_credentials("http://connect:8083", "cdc", "p@ss:word")
    connect = KafkaConnectClient(url, transport=httpx.MockTransport(worker))
    assert connect.base_url == "http://connect:8083"
    assert connect.get_config("orders") is None
    assert seen == ["Basic " + base64.b64encode(b"cdc:p@ss:word").decode()]
    assert url_with_credentials(url, "other", "x") == url  # credentials already there win


def test_a_401_names_the_credentials_instead_of_reading_as_no_such_connector():
    refuse = httpx.MockTransport(lambda request: httpx.Response(401, text="Unauthorized"))
    connect = KafkaConnectClient("http://cdc:secret-pw@connect:8083", transport=refuse)
    with pytest.raises(ConnectorError) as refused:
        connect.get_config("orders")  # a 404 would mean "not registered": a 401 must not
    message = str(refused.value)
    assert "401" in message and "'cdc_kafka_connect'" in message and "CDC_CONNECT_PASSWORD" in message
    assert "secret-pw" not in message
