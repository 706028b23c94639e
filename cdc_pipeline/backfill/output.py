"""Where as-of and changes write: whole files, atomically, left alone when the new bytes are the same; and the
scratch folders an as-of snapshot is built in.

Writing the same interval again changes nothing (not even the file's inode or time), so a re-run backfill is
visibly idempotent and a reader of the old file is never disturbed.
"""

from __future__ import annotations

import contextlib
import fcntl
import filecmp
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cdc_pipeline.atomic import SHARED_FILE_MODE, fsync_dir
from cdc_pipeline.layout import PipelineLayout

SCRATCH_PREFIX = ".asof-"
_OWNER = ".owner"
_UNCLAIMED_AGE = 3600.0  # a scratch folder whose creator never locked it is left this long before removal


@dataclass
class Published:
    path: Path
    written: bool = False   # False: the file already held these bytes and was left as it was
    size: int = 0


@contextlib.contextmanager
def publish(path: Path) -> Iterator[tuple[IO[bytes], Published]]:
    """Yield a binary file beside ``path`` and what happened to it; on success it replaces ``path`` in one rename
    unless ``path`` already holds the same bytes. On an exception ``path`` is untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    outcome = Published(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle, outcome
            handle.flush()
            os.fsync(handle.fileno())
        outcome.size = os.path.getsize(temporary)
        if path.exists() and path.stat().st_size == outcome.size and filecmp.cmp(temporary, path, shallow=False):
            os.unlink(temporary)
            return
        os.chmod(temporary, SHARED_FILE_MODE)
        os.replace(temporary, path)
        outcome.written = True
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def scratch_folder(layout: PipelineLayout) -> Iterator[Path]:
    """A private folder inside the pipeline folder (hard links need the same file system), locked while in use
    and removed afterwards; folders of processes that died are removed by the next caller."""
    layout.folder.mkdir(parents=True, exist_ok=True)
    remove_abandoned(layout)
    folder = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=layout.folder))
    fd = os.open(folder / _OWNER, os.O_RDWR | os.O_CREAT, SHARED_FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)


def remove_abandoned(layout: PipelineLayout) -> list[Path]:
    removed = []
    if not layout.folder.is_dir():
        return removed
    for folder in layout.folder.glob(f"{SCRATCH_PREFIX}*"):
        owner = folder / _OWNER
        if not owner.exists():
            with contextlib.suppress(FileNotFoundError):
                if time.time() - folder.stat().st_mtime > _UNCLAIMED_AGE:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder)
            continue
        try:
            fd = os.open(owner, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # its builder is alive
        else:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        finally:
            os.close(fd)
    return removed
