"""One pipeline folder, one writer: consume, merge, rebuilds and operator commands hold this lock.

``max_active_runs=1`` keeps scheduled runs apart, but backfill runs, a hand-cleared old task, ``./stack
stop``'s drain and operator commands can run beside them; without the lock a merge could archive rows that
a concurrent consume just added and committed. An OS lock (flock) is released by the kernel when its
holder dies, so a crash leaves no stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from cdc_pipeline.atomic import SHARED_FILE_MODE
from cdc_pipeline.errors import PipelineBusyError
from cdc_pipeline.layout import PipelineLayout


@contextlib.contextmanager
def pipeline_lock(layout: PipelineLayout, *, shared: bool = False, timeout: float = 600.0,
                  interval: float = 0.5) -> Iterator[None]:
    """Hold the pipeline's lock: exclusively for anything that writes the folder, ``shared`` for a reader that
    must not see generations removed under it (the sinks), so readers run side by side and writers wait."""
    with _flock(layout.folder, layout.lock, shared=shared, timeout=timeout, interval=interval,
                holders="a merge, a backfill, a cleared task or an operator command running beside this one?"):
        yield


@contextlib.contextmanager
def connector_lock(connector_folder: Path, *, timeout: float = 600.0, interval: float = 0.5) -> Iterator[None]:
    """Hold a connector's lock, taken before any table lock by whoever may take more than one table's lock (the
    consume of a connector's tables, a rebuild that re-snapshots them all), so two of them never wait on each
    other's tables. A task that holds one table's lock only (merge, sinks) never takes it."""
    with _flock(connector_folder, connector_folder / CONNECTOR_LOCK, shared=False, timeout=timeout, interval=interval,
                holders="the connector's consume, a rebuild or an operator command running beside this one?"):
        yield


@contextlib.contextmanager
def table_locks(layouts: list[PipelineLayout], *, timeout: float = 600.0) -> Iterator[None]:
    """Every lock of ``layouts``, in path order. The caller holds the connector lock."""
    with contextlib.ExitStack() as stack:
        for layout in sorted(layouts, key=lambda lay: str(lay.folder)):
            stack.enter_context(pipeline_lock(layout, timeout=timeout))
        yield


@contextlib.contextmanager
def connector_stop_lock(connector_folder: Path, *, timeout: float = 600.0, interval: float = 0.5) -> Iterator[None]:
    """Held from the moment a step stops the connector until it resumed it (recovery/connector_stop.py): free
    while the connector is stopped means the step that stopped it is gone. Taken last, after any other lock."""
    with _flock(connector_folder, connector_folder / CONNECTOR_STOP_LOCK, shared=False, timeout=timeout,
                interval=interval, holders="a rebuild's start or a snapshot's confirmation running beside this one?"):
        yield


CONNECTOR_LOCK = ".connector.lock"
CONNECTOR_STOP_LOCK = ".connector-stop.lock"
# Written before such a step stops the connector, removed once it runs again (recovery/connector_stop.py).
CONNECTOR_STOPPED = "connector-stopped.json"


@contextlib.contextmanager
def rebuild_locks(pipe, *, timeout: float = 600.0) -> Iterator[None]:
    """What a step that may start a rebuild holds: the connector's lock when it captures several tables (a rebuild
    re-snapshots them all), then the table's own lock."""
    with contextlib.ExitStack() as stack:
        if pipe.spec.many_tables:
            stack.enter_context(connector_lock(pipe.connector_folder, timeout=timeout))
        stack.enter_context(pipeline_lock(pipe.layout, timeout=timeout))
        yield


@contextlib.contextmanager
def _flock(folder: Path, path: Path, *, shared: bool, timeout: float, interval: float, holders: str) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, SHARED_FILE_MODE)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PipelineBusyError(
                        f"another task or command has held {path} for {timeout:.0f} s ({holders}). The retry waits "
                        "again.") from None
                time.sleep(interval)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def is_locked(layout: PipelineLayout) -> bool:
    """Does some process hold the lock right now? (Used to tell a running operator command from a dead one.)"""
    if not layout.lock.exists():
        return False
    fd = os.open(layout.lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
