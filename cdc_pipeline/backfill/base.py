"""The base of a change log: the table as of the end of the last day retention removed, kept as a state store.

``changelog/base-e<epoch>/`` is a pipeline folder of its own (``state/``, ``destiny.csv``) holding every event of
the epoch committed on the days retention deleted, applied with their real positions, and ``base.json`` saying
which of its generations is the base and what instant it stands for. ``base.json`` is the commit: it is written
after the events are folded in and before their day files are deleted, and it names a generation that the next
fold keeps, so a reader that hard-links it while a fold runs still finds it.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from cdc_pipeline.atomic import atomic_write_text
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.state import GenerationInfo
from cdc_pipeline.state.generations import LIVE, GenerationFolder

BASE_RECORD = "base.json"


@dataclass(frozen=True)
class BaseRecord:
    epoch: int
    generation: str            # the base store's generation that holds the folded days
    through_day: str           # the last day folded (YYYY-MM-DD)
    instant_ms: int            # the base is the table as of this instant: the last millisecond of through_day
    snapshot_ms: int           # the epoch's earliest exact instant (its snapshot), kept when its days went
    snapshot_generation: int   # merges up to this one hold the epoch's snapshot reads
    events: int                # events folded in so far


def base_layout(layout: PipelineLayout, epoch: int) -> PipelineLayout:
    return PipelineLayout(layout.changelog_dir / f"base-e{epoch:04d}")


def read_base(layout: PipelineLayout, epoch: int) -> BaseRecord | None:
    path = base_layout(layout, epoch).folder / BASE_RECORD
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return BaseRecord(**{k: raw[k] for k in BaseRecord.__dataclass_fields__})


def write_base(layout: PipelineLayout, record: BaseRecord) -> None:
    atomic_write_text(base_layout(layout, record.epoch).folder / BASE_RECORD, json.dumps(asdict(record), indent=1) + "\n")


def base_generation(layout: PipelineLayout, record: BaseRecord) -> GenerationInfo:
    return GenerationFolder(base_layout(layout, record.epoch)).load(record.generation)


def remove_bases(layout: PipelineLayout, *, below_epoch: int) -> list[Path]:
    """Delete the bases of epochs older than ``below_epoch`` (a rebuild replaced their lineage)."""
    removed = []
    root = layout.changelog_dir
    if not root.is_dir():
        return removed
    for path in root.glob("base-e*"):
        try:
            epoch = int(path.name.removeprefix("base-e"))
        except ValueError:
            continue
        if epoch < below_epoch:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def link_generation(info: GenerationInfo, target: PipelineLayout) -> None:
    """Make ``info`` the live generation of the empty state folder ``target``: its files are immutable, so hard
    links are a copy that costs nothing (a plain copy where the file system refuses links)."""
    folder = target.state_dir / info.id
    folder.mkdir(parents=True)
    for source in info.path.iterdir():
        try:
            os.link(source, folder / source.name)
        except OSError:
            shutil.copy2(source, folder / source.name)
    GenerationFolder(target).set_pointer(LIVE, info.id)
    os.link(folder / info.destiny_path.name, target.destiny)  # as the store links it, so opening it repairs nothing
