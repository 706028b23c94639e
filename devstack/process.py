"""Detached processes with a log file and a pid file: start, is-alive, stop (TERM, then KILL after a deadline)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cdc_pipeline.waiting import WaitTimeout, log_tail, wait_until

log = logging.getLogger(__name__)

__all__ = ["ProcessRef", "cmdline", "descendants", "is_alive", "log_tail", "read_pid", "refs", "running_pid",
           "start_detached", "stop_process"]


def start_detached(
    argv: Sequence[str],
    *,
    log_path: Path,
    pid_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start ``argv`` in its own session (so it outlives us and stops as a group), output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        log_file.write(f"\n=== {stamp} starting: {' '.join(map(str, argv))}\n".encode())
        log_file.flush()
        process = subprocess.Popen(
            [str(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    pid_path.write_text(f"{process.pid}\n")
    return process.pid


def read_pid(pid_path: Path) -> int | None:
    try:
        return int(pid_path.read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which is in parentheses and may hold spaces):
    [0] the state letter, [1] the parent pid, [19] the start time."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def _running_stat(pid: int) -> list[str] | None:
    """``_stat`` of a process that runs: None when it is gone or a zombie (a child of ours that exited is
    reaped here)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: nothing to reap
    fields = _stat(pid)
    return fields if fields is not None and fields[0] not in ("Z", "X") else None


def is_alive(pid: int) -> bool:
    """True when ``pid`` runs and is not a zombie."""
    return _running_stat(pid) is not None


@dataclass(frozen=True)
class ProcessRef:
    """A process as it was seen: its pid and its start time. pid_max is 32768 on these machines and a test
    session wraps it, so a pid (or a thread id, which /proc also answers) may belong to another process a
    moment later: a reference is alive only while the same process runs, and is never signalled otherwise."""

    pid: int
    started: int  # clock ticks after boot

    @classmethod
    def of(cls, pid: int) -> ProcessRef | None:
        fields = _stat(pid)
        return None if fields is None else cls(pid, int(fields[19]))

    def alive(self) -> bool:
        fields = _running_stat(self.pid)
        return fields is not None and int(fields[19]) == self.started

    def signal(self, sig: signal.Signals) -> None:
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


def refs(pids: Iterable[int]) -> list[ProcessRef]:
    """References to those of ``pids`` that run now."""
    return [ref for ref in map(ProcessRef.of, pids) if ref is not None]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


def running_pid(pid_path: Path, marker: str) -> int | None:
    """The pid in ``pid_path`` if that process is alive and its command line contains ``marker``.

    The marker guards against pid reuse: after a reboot the number may belong to anything.
    """
    pid = read_pid(pid_path)
    if pid is None or not is_alive(pid) or marker not in cmdline(pid):
        return None
    return pid


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren, ...), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_process(pid: int, *, timeout: float = 20.0) -> bool:
    """Send TERM to ``pid``, its process group and its descendants; KILL what is left after ``timeout``.

    Returns True when the processes are gone. Airflow standalone in particular leaves its
    scheduler, api-server, ... running if only the parent gets the signal.
    """
    leader = ProcessRef.of(pid)
    if leader is None:
        return True
    targets = [leader, *refs(descendants(pid))]
    _signal_all(leader, targets, signal.SIGTERM)
    if _wait_gone(targets, f"pid {pid} and its {len(targets) - 1} descendant(s) to exit after SIGTERM", timeout):
        return True
    left = [ref for ref in targets if ref.alive()]
    log.warning("pid(s) %s still alive %.0f s after SIGTERM: sending SIGKILL", [ref.pid for ref in left], timeout)
    _signal_all(leader, left + refs(descendants(pid)), signal.SIGKILL)
    return _wait_gone(targets, f"pid(s) {[ref.pid for ref in left]} to exit after SIGKILL", 5.0)


def _wait_gone(targets: Sequence[ProcessRef], what: str, timeout: float) -> bool:
    try:
        wait_until(lambda: not any(ref.alive() for ref in targets), what=what, timeout=timeout, interval=0.1)
    except WaitTimeout:
        return False
    return True


def _signal_all(leader: ProcessRef, targets: Sequence[ProcessRef], sig: signal.Signals) -> None:
    try:
        if leader.alive() and os.getpgid(leader.pid) == leader.pid:
            os.killpg(leader.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for ref in targets:
        ref.signal(sig)
