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

from cdc_pipeline.errors import PipelineBusyError
from cdc_pipeline.layout import PipelineLayout


@contextlib.contextmanager
def pipeline_lock(layout: PipelineLayout, *, shared: bool = False, timeout: float = 600.0,
                  interval: float = 0.5) -> Iterator[None]:
    """Hold the pipeline's lock: exclusively for anything that writes the folder, ``shared`` for a reader that
    must not see generations removed under it (the sinks), so readers run side by side and writers wait."""
    layout.folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PipelineBusyError(
                        f"another task or command of this pipeline has held {layout.lock} for {timeout:.0f} s (a "
                        "merge, a backfill, a cleared task or an operator command running beside this one?). The "
                        "retry waits again."
                    ) from None
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
