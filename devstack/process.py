"""Detached processes with a log file and a pid file: start, is-alive, stop (TERM, then KILL after a deadline).

What the kernel says about a process (its state, parent, start time and command line) is read with psutil."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import psutil

from cdc_pipeline.waiting import WaitTimeout, log_tail, wait_until

log = logging.getLogger(__name__)

__all__ = ["ProcessRef", "cmdline", "descendants", "is_alive", "log_tail", "read_pid", "refs", "running_pid",
           "start_detached", "stop_process"]

# What psutil reports for a process that exited and waits to be reaped (or is being torn down): not alive.
_ENDED = frozenset({psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD})


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


def _process(pid: int) -> psutil.Process | None:
    """psutil's handle on ``pid``; None when there is no such process (0 and below are process groups)."""
    try:
        return psutil.Process(pid) if pid > 0 else None
    except psutil.Error:
        return None


def _running(pid: int) -> psutil.Process | None:
    """The process ``pid`` while it runs: None when it is gone or a zombie (a child of ours that exited is
    reaped here first)."""
    if pid > 0:
        with contextlib.suppress(ChildProcessError):  # not our child: nothing to reap
            os.waitpid(pid, os.WNOHANG)
    process = _process(pid)
    try:
        return process if process is not None and process.status() not in _ENDED else None
    except psutil.Error:
        return None


def is_alive(pid: int) -> bool:
    """True when ``pid`` runs and is not a zombie."""
    return _running(pid) is not None


@dataclass(frozen=True)
class ProcessRef:
    """A process as it was seen: its pid and its start time. pid_max is 32768 on these machines and a test
    session wraps it, so a pid (or a thread id, which /proc also answers) may belong to another process a
    moment later: a reference is alive only while the same process runs, and is never signalled otherwise.

    ``ProcessRef.of`` keeps psutil's handle, whose identity (pid and start time since boot) does not move with
    the wall clock; a reference made by hand from a pid and ``started`` compares ``create_time()`` instead."""

    pid: int
    started: float  # psutil's create_time(): seconds since the epoch
    process: psutil.Process | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, pid: int) -> ProcessRef | None:
        process = _process(pid)
        try:
            return None if process is None else cls(pid, process.create_time(), process)
        except psutil.Error:
            return None

    def _current(self) -> psutil.Process | None:
        """The running process this reference names; None once it ended or its pid serves another one."""
        current = _running(self.pid)
        if current is None:
            return None
        try:
            same = current == self.process if self.process is not None else current.create_time() == self.started
        except psutil.Error:
            return None
        return current if same else None

    def alive(self) -> bool:
        return self._current() is not None

    def signal(self, sig: signal.Signals) -> None:
        current = self._current()
        if current is not None:
            try:
                current.send_signal(sig)
            except psutil.Error:
                pass  # it ended meanwhile, or is not ours to signal


def refs(pids: Iterable[int]) -> list[ProcessRef]:
    """References to those of ``pids`` that run now."""
    return [ref for ref in map(ProcessRef.of, pids) if ref is not None]


def cmdline(pid: int) -> str:
    process = _process(pid)
    try:
        return "" if process is None else " ".join(process.cmdline())
    except psutil.Error:
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
    """Every live process below ``pid`` (children, grandchildren, ...)."""
    process = _process(pid)
    try:
        return [] if process is None else [child.pid for child in process.children(recursive=True)]
    except psutil.Error:
        return []


def stop_process(pid: int, *, timeout: float = 20.0) -> bool:
    """Send TERM to ``pid``, its process group and its descendants; KILL what is left after ``timeout``.

    Returns True when the processes are gone. Airflow standalone in particular leaves its
    scheduler, api-server, ... running if only the parent gets the signal.
    """
    leader = ProcessRef.of(pid)
    if leader is None:
        return True
    targets = [leader, *_descendants(leader)]
    _signal_all(leader, targets, signal.SIGTERM)
    if _wait_gone(targets, f"pid {pid} and its {len(targets) - 1} descendant(s) to exit after SIGTERM", timeout):
        return True
    left = [ref for ref in targets if ref.alive()]
    log.warning("pid(s) %s still alive %.0f s after SIGTERM: sending SIGKILL", [ref.pid for ref in left], timeout)
    _signal_all(leader, left + _descendants(leader), signal.SIGKILL)
    return _wait_gone(targets, f"pid(s) {[ref.pid for ref in left]} to exit after SIGKILL", 5.0)


def _descendants(leader: ProcessRef) -> list[ProcessRef]:
    """References to the processes below ``leader``; none once it ended (its children were handed to another
    parent then, and its pid may serve another process)."""
    return refs(descendants(leader.pid)) if leader.alive() else []


def _wait_gone(targets: Sequence[ProcessRef], what: str, timeout: float) -> bool:
    # Not psutil.wait_procs: it waits for a zombie that is not our child until its parent reaps it; here a
    # zombie is gone already.
    try:
        wait_until(lambda: not any(ref.alive() for ref in targets), what=what, timeout=timeout, interval=0.1)
    except WaitTimeout:
        return False
    return True


def _signal_all(leader: ProcessRef, targets: Sequence[ProcessRef], sig: signal.Signals) -> None:
    try:  # psutil knows no process groups
        if leader.alive() and os.getpgid(leader.pid) == leader.pid:
            os.killpg(leader.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for ref in targets:
        ref.signal(sig)
