"""Outputs written whole or not at all, left alone when unchanged; scratch folders of dead builders removed."""

from __future__ import annotations

import fcntl
import os

import pytest

from cdc_pipeline.backfill.output import publish, remove_abandoned, scratch_folder
from cdc_pipeline.layout import PipelineLayout


def test_publish_replaces_atomically_and_keeps_an_identical_file(tmp_path):
    path = tmp_path / "snapshots" / "x.csv"
    with publish(path) as (handle, outcome):
        handle.write(b"a\n1\n")
    assert outcome.written and path.read_bytes() == b"a\n1\n" and oct(path.stat().st_mode & 0o777) == "0o640"
    inode = path.stat().st_ino
    with publish(path) as (handle, outcome):
        handle.write(b"a\n1\n")
    assert not outcome.written and path.stat().st_ino == inode
    with publish(path) as (handle, outcome):
        handle.write(b"a\n2\n")
    assert outcome.written and path.read_bytes() == b"a\n2\n"
    with pytest.raises(RuntimeError), publish(path) as (handle, outcome):
        handle.write(b"half")
        raise RuntimeError("died mid-way")
    assert path.read_bytes() == b"a\n2\n" and sorted(p.name for p in path.parent.iterdir()) == ["x.csv"]


def test_scratch_folders_are_removed_after_use_and_when_their_builder_died(tmp_path):
    layout = PipelineLayout(tmp_path / "p")
    with scratch_folder(layout) as folder:
        assert folder.parent == layout.folder and folder.name.startswith(".asof-")
        assert remove_abandoned(layout) == []  # in use: locked
    assert not folder.exists()
    dead = layout.folder / ".asof-dead"
    dead.mkdir()
    (dead / ".owner").touch()
    alive = layout.folder / ".asof-alive"
    alive.mkdir()
    fd = os.open(alive / ".owner", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert remove_abandoned(layout) == [dead]
        assert alive.exists()
    finally:
        os.close(fd)
