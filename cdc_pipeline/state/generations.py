"""Generations of the state and the commit protocol: write a new generation aside, then move one pointer.

``state/<lineage>/gen-<n>/`` holds one complete state: ``destiny.csv``, ``keys.npy``, ``rows.npy`` and
``manifest.json`` (written last: a generation without one is a leftover of an interrupted write). Its files are
read-only (0444) and never change. ``state/LIVE`` names the live generation (``<lineage>/gen-<n>``);
``state/REBUILD`` the newest generation of a rebuild in progress, another lineage built aside. The pipeline
folder's ``destiny.csv`` is a hard link to the live generation's file, replaced by link-to-temp and rename.

Commit order: the generation's files (fsync'd), its manifest, then the pointer (temp file, fsync, rename,
fsync of the folder), then the public hard link. A crash before the pointer moves leaves the old state live
and a leftover that the next merge removes; a crash after it leaves a stale hard link that the next open
repairs. Both are idempotent.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

from cdc_pipeline.atomic import atomic_writer, fsync_dir
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.state.manifest import MANIFEST_FILE, GenerationInfo, parse_generation_id, read_manifest

__all__ = ["LIVE", "REBUILD", "GenerationFolder"]

LIVE = "LIVE"
REBUILD = "REBUILD"
ROLES = (LIVE, REBUILD)
_LINEAGE = re.compile(r"^lineage-(\d{4,})$")
_GEN_DIR = re.compile(r"^gen-(\d{6,})$")


class GenerationFolder:
    """``state/`` of one pipeline: pointers, generation folders, the public hard link."""

    def __init__(self, layout: PipelineLayout) -> None:
        self.layout = layout
        self.root = layout.state_dir

    # --- pointers --------------------------------------------------------------------------------------

    def pointer(self, role: str) -> str | None:
        path = self.root / role
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        parse_generation_id(text)
        return text

    def set_pointer(self, role: str, generation_id: str) -> None:
        with atomic_writer(self.root / role) as handle:
            handle.write(generation_id + "\n")

    def clear_pointer(self, role: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.root / role).unlink()
            fsync_dir(self.root)

    # --- generations -----------------------------------------------------------------------------------

    def load(self, generation_id: str) -> GenerationInfo:
        """The generation's manifest, checked against its files."""
        lineage, number = parse_generation_id(generation_id)
        return read_manifest(generation_id, self.root / lineage / f"gen-{number:06d}", self.remedy())

    def new_lineage(self) -> str:
        numbers = [int(m.group(1)) for p in self._lineage_dirs() if (m := _LINEAGE.match(p.name))]
        return f"lineage-{max(numbers, default=0) + 1:04d}"

    def new_generation_path(self, lineage: str) -> tuple[str, Path]:
        """A fresh, empty generation folder; its number is above every generation that exists."""
        number = max((n for _, n in self._all_generations()), default=0) + 1
        generation_id = f"{lineage}/gen-{number:06d}"
        path = self.root / lineage / f"gen-{number:06d}"
        path.mkdir(parents=True)
        fsync_dir(path.parent)
        return generation_id, path

    def remove_leftovers(self, keep: set[str], include_orphans: bool) -> list[str]:
        """Remove generation folders not in ``keep`` that never got a manifest, or that are newer than every
        pointer of their lineage (a merge interrupted before its pointer moved), and, with ``include_orphans``,
        those of lineages no pointer names (a replaced live state, a create interrupted). Answer their ids."""
        pointed = {parse_generation_id(g) for g in (self.pointer(r) for r in ROLES) if g}
        newest = {}
        for lineage, number in pointed:
            newest[lineage] = max(newest.get(lineage, 0), number)
        removed = []
        for lineage, number in self._all_generations():
            generation_id = f"{lineage}/gen-{number:06d}"
            path = self.root / lineage / f"gen-{number:06d}"
            if generation_id in keep:
                continue
            incomplete = not (path / MANIFEST_FILE).exists()
            unswitched = number > newest.get(lineage, 0) and lineage in newest
            orphan = include_orphans and lineage not in newest
            if incomplete or unswitched or orphan:
                self._remove_generation(path)
                removed.append(generation_id)
        self._remove_empty_lineages()
        return removed

    def remove_old(self, keep: set[str]) -> list[str]:
        """After a commit: remove every generation that no pointer names and ``keep`` does not retain."""
        pointed = {g for g in (self.pointer(r) for r in ROLES) if g}
        removed = []
        for lineage, number in self._all_generations():
            generation_id = f"{lineage}/gen-{number:06d}"
            if generation_id in pointed or generation_id in keep:
                continue
            self._remove_generation(self.root / lineage / f"gen-{number:06d}")
            removed.append(generation_id)
        self._remove_empty_lineages()
        return removed

    def remove_lineage(self, lineage: str, keep: set[str]) -> None:
        """Remove the lineage's generations except ``keep`` (after a merge into a rebuild, or discarding one)."""
        for name, number in self._all_generations():
            if name == lineage and f"{name}/gen-{number:06d}" not in keep:
                self._remove_generation(self.root / name / f"gen-{number:06d}")
        self._remove_empty_lineages()

    # --- the public hard link --------------------------------------------------------------------------

    def relink_destiny(self, info: GenerationInfo, repair: bool) -> str | None:
        """Make the pipeline's destiny.csv the live generation's file. With ``repair`` (on open, not after a
        commit) answer a note when it was not."""
        public = self.layout.destiny
        target = info.destiny_path.stat()
        try:
            current = public.stat()
        except FileNotFoundError:
            current = None
        if current is not None and (current.st_ino, current.st_dev) == (target.st_ino, target.st_dev):
            return None
        temporary = public.with_name(f".{public.name}.{os.getpid()}.link")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        os.link(info.destiny_path, temporary)
        os.replace(temporary, public)
        fsync_dir(public.parent)
        if not repair:
            return None
        if current is None:
            return f"{public} was missing; linked it to generation {info.id}"
        return (
            f"{public} was not the live generation's file (inode {current.st_ino}, expected {target.st_ino}): it was "
            f"replaced or rewritten outside the pipeline; linked it back to generation {info.id}"
        )

    def remedy(self) -> str:
        return (
            f"Rebuild the state from a new snapshot: python -m cdc_pipeline resnapshot --connector {self.layout.name}"
        )

    # --- helpers ---------------------------------------------------------------------------------------

    def _lineage_dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and _LINEAGE.match(p.name))

    def _all_generations(self) -> list[tuple[str, int]]:
        found = []
        for lineage in self._lineage_dirs():
            for path in lineage.iterdir():
                match = _GEN_DIR.match(path.name)
                if match and path.is_dir():
                    found.append((lineage.name, int(match.group(1))))
        return sorted(found, key=lambda item: (item[1], item[0]))

    def _remove_generation(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)
        if path.parent.exists():
            fsync_dir(path.parent)

    def _remove_empty_lineages(self) -> None:
        pointed = {parse_generation_id(g)[0] for g in (self.pointer(r) for r in ROLES) if g}
        for lineage in self._lineage_dirs():
            if lineage.name not in pointed and not any(lineage.iterdir()):
                with contextlib.suppress(OSError):
                    lineage.rmdir()
