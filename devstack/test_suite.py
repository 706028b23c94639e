"""``./stack test`` without arguments: the whole suite as two pytest processes side by side.

- ``airflow``: the tests marked ``airflow`` (their session starts PostgreSQL, Kafka, Connect and Airflow);
- ``services``: everything else (its session starts PostgreSQL, Kafka and Connect for the tests marked ``stack``).

Each process has its own throwaway stack on its own free ports, so the two never share a service. Most of a
service test's time is spent waiting on the services (a snapshot, a scheduled run, a minute boundary), so two
run in about the time of the longer one on two cores. Lines are streamed with the group's name in front; at the
end each group's summary is printed again unprefixed. The exit code is the first non-zero one, except pytest's 5
("no tests collected") for one group when the other ran tests.

Extra arguments go to both processes: ``python -m devstack.test_suite --random-order``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field

from devstack.settings import REPO_ROOT

GROUPS = {"airflow": "airflow", "services": "not airflow"}
NO_TESTS = 5


@dataclass
class Group:
    name: str
    process: subprocess.Popen
    lines: list[str] = field(default_factory=list)


def main(argv: list[str] | None = None) -> int:
    extra = list(sys.argv[1:] if argv is None else argv)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    groups = [Group(name, subprocess.Popen(
        [sys.executable, "-m", "pytest", "-m", marker, "-rfE", "--durations=15", *extra], cwd=REPO_ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1))
        for name, marker in GROUPS.items()]
    _forward_signals(groups)
    lock = threading.Lock()
    readers = [threading.Thread(target=_stream, args=(group, lock), daemon=True) for group in groups]
    for reader in readers:
        reader.start()
    codes = {group.name: group.process.wait() for group in groups}
    for reader in readers:
        reader.join()
    for group in groups:
        print(f"\n======== {group.name}: exit code {codes[group.name]} ========")
        print("".join(_summary(group.lines)), end="")
    return combined(codes)


def combined(codes: dict[str, int]) -> int:
    """The suite's exit code: a failure anywhere fails it; "no tests collected" only if no group ran any."""
    ran = {name: code for name, code in codes.items() if code != NO_TESTS}
    if not ran:
        return NO_TESTS
    return next((code for code in ran.values() if code != 0), 0)


def _stream(group: Group, lock: threading.Lock) -> None:
    for line in group.process.stdout:
        group.lines.append(line)
        with lock:
            sys.stdout.write(f"[{group.name}] {line}")
            sys.stdout.flush()


def _summary(lines: list[str]) -> list[str]:
    """From pytest's "short test summary info" (or its last line when everything passed)."""
    for index, line in enumerate(lines):
        if "short test summary info" in line:
            return lines[index:]
    return lines[-1:]


def _forward_signals(groups: list[Group]) -> None:
    """CI cancels with SIGTERM: each pytest gets it and stops its own stack (its session's finalizer ignores a
    second one, so a signal that reaches the whole process group as well does no harm)."""
    def forward(signum, _frame):
        for group in groups:
            if group.process.poll() is None:
                group.process.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)


if __name__ == "__main__":
    sys.exit(main())
