"""cdc_pipeline.waiting.wait_until, the one deadline loop: answers, "not yet", deadline, give-up, the error's text.

A fake clock drives the loop, so the tests check what it does at each instant without measuring time.
"""

import pytest

from cdc_pipeline import waiting
from cdc_pipeline.errors import CdcError
from cdc_pipeline.waiting import WaitTimeout, log_tail, wait_until


class FakeClock:
    """time.monotonic and time.sleep for the waiting module: sleeping moves the clock, nothing else does."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(waiting.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(waiting.time, "sleep", fake.sleep)
    return fake


def test_returns_the_first_truthy_answer_itself(clock):
    answers = iter([None, "", 0, {"state": "RUNNING"}])
    assert wait_until(lambda: next(answers), what="x", timeout=5, interval=0.5) == {"state": "RUNNING"}
    assert clock.sleeps == [0.5, 0.5, 0.5]


def test_an_exception_is_not_yet_and_its_text_reaches_the_error(clock):
    calls = []

    def probe():
        calls.append(clock.now)
        raise ConnectionRefusedError("nobody home on 19092")

    with pytest.raises(WaitTimeout) as info:
        wait_until(probe, what="the broker to answer", timeout=2, interval=0.5)
    assert len(calls) == 5  # at 0, 0.5, 1, 1.5 and once more at the deadline
    error = info.value
    assert isinstance(error, CdcError)
    assert (error.what, error.timeout, error.gave_up) == ("the broker to answer", 2, False)
    assert error.last_answer == "ConnectionRefusedError: nobody home on 19092"
    assert "timed out after 2 s waiting for the broker to answer" in str(error)
    assert "nobody home on 19092" in str(error)


def test_the_last_falsy_answer_is_quoted(clock):
    with pytest.raises(WaitTimeout, match=r"last check: the check answered \[\]"):
        wait_until(lambda: [], what="x", timeout=1)


def test_the_deadline_caps_a_long_interval(clock):
    with pytest.raises(WaitTimeout):
        wait_until(lambda: False, what="x", timeout=0.2, interval=10)
    assert clock.sleeps == [pytest.approx(0.2)]


def test_zero_timeout_checks_exactly_once(clock):
    calls = []
    with pytest.raises(WaitTimeout):
        wait_until(lambda: calls.append(1), what="x", timeout=0)
    assert calls == [1] and clock.sleeps == []
    assert wait_until(lambda: "now", what="x", timeout=0) == "now"


def test_a_dead_process_ends_the_wait_at_once_with_its_log(clock, tmp_path):
    log = tmp_path / "connect.log"
    log.write_text("Error: Could not find or load main class\n")
    with pytest.raises(WaitTimeout) as info:
        wait_until(lambda: False, what="connect to be ready", timeout=30, log_path=log, alive=lambda: False)
    assert info.value.gave_up and clock.sleeps == []
    message = str(info.value)
    assert "stopped waiting for connect to be ready" in message and "has exited" in message
    assert "Could not find or load main class" in message and str(log) in message


def test_alive_is_asked_after_each_check_and_a_late_answer_still_wins(clock):
    answers = iter([False, False, "ready"])
    alive_calls = []

    def alive():
        alive_calls.append(1)
        return True

    assert wait_until(lambda: next(answers), what="x", timeout=10, alive=alive) == "ready"
    assert len(alive_calls) == 2


def test_the_timeout_message_carries_only_the_tail_of_the_log(clock, tmp_path):
    log = tmp_path / "broker.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)) + "FATAL: bind failed\n")
    with pytest.raises(WaitTimeout) as info:
        wait_until(lambda: False, what="broker", timeout=1, log_path=log)
    message = str(info.value)
    assert "FATAL: bind failed" in message and "line 99" in message
    assert "line 10\n" not in message
    assert info.value.log_tail.endswith("FATAL: bind failed")


def test_log_tail_reads_the_last_lines_and_tolerates_a_missing_file(tmp_path):
    log = tmp_path / "a.log"
    log.write_text("".join(f"{i}\n" for i in range(100_000)))
    assert log_tail(log, 3) == "99997\n99998\n99999"
    assert log_tail(tmp_path / "missing.log") == ""


def test_a_log_tail_shows_a_refusal_repeated_every_half_second_once_with_its_count(tmp_path):
    from cdc_pipeline.waiting import log_tail

    log = tmp_path / "postgres.log"
    refusal = "FATAL:  the database system is shutting down"
    log.write_text("".join(f"2026-12-06 07:00:{i:02d}.{i * 7:03d} UTC [{100 + i}] {refusal}\n" for i in range(40))
                   + "2026-12-06 07:00:41.000 UTC [7] LOG:  database system is shut down\n")
    tail = log_tail(log).splitlines()
    assert len(tail) == 3 and tail[0].endswith(refusal) and tail[1].strip() == "(the same line 39 more times)"
    assert tail[2].endswith("database system is shut down")
