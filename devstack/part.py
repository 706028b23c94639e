"""What every part of the stack shares: a port, a log, a pid file, start (reusing a healthy one), stop, status."""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cdc_pipeline.waiting import WaitTimeout, wait_until
from devstack import process
from devstack.errors import PartStartError, ReadinessTimeout
from devstack.ports import ensure_port_free
from devstack.settings import StackSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartStatus:
    name: str
    running: bool
    pid: int | None
    port: int
    healthy: bool
    detail: str

    def line(self) -> str:
        state = f"running pid {self.pid}" if self.running else "stopped"
        health = ("healthy: " if self.healthy else "NOT READY: ") + self.detail if self.running else self.detail
        return f"{self.name:9} {state:18} 127.0.0.1:{self.port:<6} {health}"


@dataclass(frozen=True)
class StartResult:
    name: str
    pid: int | None
    reused: bool
    seconds: float


STUCK_AFTER_S = 5.0  # a part saying it is stuck for this long fails its start with what to do


@dataclass(frozen=True)
class _Stuck:
    message: str


class Part(abc.ABC):
    """One service. Subclasses set the class attributes and implement ``launch`` and ``probe``."""

    name: str
    port_env: str          # the variable that sets this part's port, named in errors
    port_field: str        # the StackSettings field holding it
    marker: str            # a string in the process's command line, to recognise our own process
    other: str             # who else might hold the port, for the port-conflict message
    start_timeout: float = 60.0
    stop_timeout: float = 20.0
    launch_grace: float = 0.0  # seconds during which "no pid yet" is normal (pg_ctl daemonizes)

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings

    @property
    def port(self) -> int:
        return getattr(self.settings, self.port_field)

    @property
    def log_path(self) -> Path:
        return self.settings.logs_dir / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.settings.pids_dir / f"{self.name}.pid"

    def pid(self) -> int | None:
        return process.running_pid(self.pid_path, self.marker)

    def is_running(self) -> bool:
        return self.pid() is not None

    @abc.abstractmethod
    def launch(self) -> None:
        """Start the process (detached, logging to ``log_path``, pid in ``pid_path``)."""

    @abc.abstractmethod
    def probe(self) -> str:
        """A real check that the part serves requests; returns a one-line detail, raises or returns "" if not."""

    def release_grace(self) -> float:
        """Seconds to wait for our own ports when our last process is gone but may not have let go of them yet
        (its pid file is still there: it was killed, not stopped); nothing to wait for otherwise."""
        return 20.0 if self.pid_path.exists() else 0.0

    def prepare(self) -> None:
        """Write config files and create folders before ``launch``."""

    def after_ready(self) -> None:
        """One-time setup that needs the part up (create a database, ...); must be idempotent."""

    def start(self, timeout: float | None = None) -> StartResult:
        """Start the part and wait until ``probe`` answers; a running, healthy part is reused as it is."""
        began = time.monotonic()
        timeout = self.start_timeout if timeout is None else timeout
        pid = self.pid()
        reused = pid is not None
        if not reused:
            ensure_port_free(self.port, self.port_env, self.other, grace=self.release_grace())
            for folder in (self.settings.logs_dir, self.settings.pids_dir):
                folder.mkdir(parents=True, exist_ok=True)
            self.prepare()
            log.info("starting %s on 127.0.0.1:%s (log %s)", self.name, self.port, self.log_path)
            self.launch()
        launched = time.monotonic()

        def alive() -> bool:
            return self.is_running() or time.monotonic() - launched < self.launch_grace

        try:
            self.wait_ready(timeout, alive)
            self.after_ready()
        except BaseException:
            if not reused:
                self.stop()  # do not leave a half-started process behind
            raise
        return StartResult(self.name, self.pid(), reused, time.monotonic() - began)

    def stuck(self, failure: str) -> str | None:
        """What to do when ``probe``'s ``failure`` says the running process will not get ready by waiting (None:
        waiting may help). Asked only after it said so for ``STUCK_AFTER_S`` seconds."""
        return None

    def wait_ready(self, timeout: float, alive: Callable[[], bool]) -> str:
        """Wait until ``probe`` answers; the launcher's errors say which part and show its log. A part that says
        it is stuck (``stuck``) fails early with what to do instead of at the deadline."""
        stuck_since: list[float] = []

        def ready() -> str | _Stuck:
            try:
                return self.probe()
            except Exception as exc:
                advice = self.stuck(str(exc))
                if advice is None:
                    stuck_since.clear()
                    raise
                stuck_since[:] = stuck_since or [time.monotonic()]
                if time.monotonic() - stuck_since[0] < STUCK_AFTER_S:
                    raise
                return _Stuck(f"{self.name} is running (pid {self.pid()}) but will not get ready: {exc}. {advice}")

        try:
            answer = wait_until(ready, what=f"{self.name} to be ready", timeout=timeout, interval=0.5,
                                log_path=self.log_path, alive=alive)
            if isinstance(answer, _Stuck):
                raise PartStartError(answer.message)
            return answer
        except WaitTimeout as exc:
            if exc.gave_up:
                raise PartStartError(f"{self.name} exited before it was ready (log: {self.log_path}); last check: "
                                     f"{exc.last_answer}\n--- last lines of the {self.name} log ---\n{exc.log_tail}"
                                     ) from exc
            raise ReadinessTimeout(self.name, timeout, exc.last_answer, exc.log_tail, self.log_path) from exc

    def stop(self) -> bool:
        """Stop the part; True if it was running."""
        pid = self.pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            return False
        log.info("stopping %s (pid %s)", self.name, pid)
        process.stop_process(pid, timeout=self.stop_timeout)
        self.pid_path.unlink(missing_ok=True)
        return True

    def status(self) -> PartStatus:
        pid = self.pid()
        if pid is None:
            return PartStatus(self.name, False, None, self.port, False, f"stopped (log {self.log_path})")
        try:
            detail = self.probe()
            healthy = bool(detail)
        except Exception as exc:  # status reports, never raises
            detail, healthy = f"{type(exc).__name__}: {exc}", False
        return PartStatus(self.name, True, pid, self.port, healthy, detail or "no answer")
