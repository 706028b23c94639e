"""The one wait loop: returns the predicate's answer, or fails with the part, the timeout and the log tail."""

import time

import pytest

from devstack.errors import PartStartError, ReadinessTimeout
from devstack.readiness import wait_until


def test_wait_until_returns_the_first_truthy_answer():
    answers = iter([None, "", "ready"])
    assert wait_until(lambda: next(answers), part="x", timeout=5, interval=0.01) == "ready"


def test_wait_until_treats_exceptions_as_not_ready_yet():
    calls = []

    def probe():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError("nobody home")
        return True

    assert wait_until(probe, part="x", timeout=5, interval=0.01) is True


def test_timeout_names_part_timeout_last_error_and_log_tail(tmp_path):
    log = tmp_path / "broker.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)) + "FATAL: bind failed\n")

    def probe():
        raise ConnectionRefusedError("connection refused on 19092")

    began = time.monotonic()
    with pytest.raises(ReadinessTimeout) as info:
        wait_until(probe, part="broker", timeout=0.3, interval=0.05, log_path=log)
    assert 0.3 <= time.monotonic() - began < 2
    message = str(info.value)
    assert "broker was not ready after 0.3 s" in message
    assert "connection refused on 19092" in message
    assert "FATAL: bind failed" in message
    assert "line 99" in message and "line 10\n" not in message  # only the tail
    assert info.value.part == "broker" and info.value.timeout == 0.3


def test_deadline_is_respected_even_with_a_long_interval():
    began = time.monotonic()
    with pytest.raises(ReadinessTimeout):
        wait_until(lambda: False, part="x", timeout=0.2, interval=10)
    assert time.monotonic() - began < 1


def test_a_process_that_exited_fails_at_once_with_its_log(tmp_path):
    log = tmp_path / "connect.log"
    log.write_text("Error: Could not find or load main class\n")
    began = time.monotonic()
    with pytest.raises(PartStartError, match="connect exited before it was ready") as info:
        wait_until(lambda: False, part="connect", timeout=30, interval=0.01, log_path=log, alive=lambda: False)
    assert time.monotonic() - began < 1
    assert "Could not find or load main class" in str(info.value)
