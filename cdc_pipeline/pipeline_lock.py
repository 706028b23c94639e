"""One pipeline folder, one writer: consume and merge hold this lock while they touch the files.

``max_active_runs=1`` keeps scheduled runs apart, but backfill runs and a hand-cleared old task can run
beside them; without the lock a merge could archive rows that a concurrent consume just added and
committed. An OS lock (flock) is released by the kernel when its holder dies, so a crash leaves no
stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from cdc_pipeline.errors import PipelineBusyError


@contextlib.contextmanager
def pipeline_lock(folder: Path, *, timeout: float = 600.0, interval: float = 0.5) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PipelineBusyError(
                        f"another task of this pipeline has held {folder}/.lock for {timeout:.0f} s "
                        "(a backfill or a cleared task running beside the scheduled run?). The retry waits again."
                    ) from None
                time.sleep(interval)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
