"""Each sink's memory of the state generation it last applied, and which generations the merge must keep.

``<pipeline folder>/sinks/<task id>.json`` (written atomically) holds ``applied`` (the generation the sink
holds) and ``pending`` (the one a PostgreSQL sink is committing right now: written before its commit, cleared
after, so a crash between the target's commit and this file keeps both). The folder sits outside ``state/``,
so it survives ``reset`` (which moves the state aside); a generation is named by its id, its lineage's epoch
and its manifest's ``created_at``, so a new state that reuses an id after a reset is never mistaken for it.

The PostgreSQL sink's own bookkeeping table in the target database is the truth about what it committed;
this file is what the merge can read without reaching that database (:func:`retained_generations`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from cdc_pipeline.atomic import atomic_write_text
from cdc_pipeline.connector_spec import SinkSpec
from cdc_pipeline.errors import StateError
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.state.generations import LIVE, GenerationFolder
from cdc_pipeline.state.manifest import GenerationInfo, parse_generation_id

log = logging.getLogger(__name__)

# A sink more generations behind the live one than this renders in full instead of diffing: its generation is
# no longer kept (each kept generation is a whole copy of destiny.csv and its index on disk).
MAX_GENERATIONS_BEHIND = 60
# At most this many generations are kept for lagging sinks together (the newest ones).
MAX_RETAINED = 4
# Sink types that catch up from a diff and so need their last applied generation kept (a Parquet file is
# rewritten whole from the live generation every time).
DIFFING_SINKS = ("postgres",)


@dataclass(frozen=True)
class AppliedGeneration:
    """One state generation as a sink saw it."""

    generation: str
    epoch: int
    created_at: str
    rows: int | None = None
    at: str | None = None

    @classmethod
    def of(cls, info: GenerationInfo, *, at: str | None = None) -> AppliedGeneration:
        return cls(info.id, info.epoch, info.created_at, info.rows, at)

    @property
    def number(self) -> int:
        return parse_generation_id(self.generation)[1]

    @property
    def lineage(self) -> str:
        return parse_generation_id(self.generation)[0]

    def names(self, info: GenerationInfo) -> bool:
        """Is ``info`` this very generation (not another state's generation with the same id)?"""
        return (self.generation, self.epoch, self.created_at) == (info.id, info.epoch, info.created_at)

    @classmethod
    def from_json(cls, raw: dict | None) -> AppliedGeneration | None:
        if not raw:
            return None
        return cls(str(raw["generation"]), int(raw["epoch"]), str(raw.get("created_at") or ""),
                   raw.get("rows"), raw.get("at"))


@dataclass(frozen=True)
class LedgerEntry:
    applied: AppliedGeneration | None = None
    pending: AppliedGeneration | None = None


class SinkLedger:
    """The ledger file of one sink of one pipeline."""

    def __init__(self, layout: PipelineLayout, sink: SinkSpec) -> None:
        self.sink = sink
        self.path = sinks_dir(layout) / f"{sink.task_id}.json"

    def read(self) -> LedgerEntry:
        """What the file says; an empty entry when there is none. StateError when it is unreadable."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return LedgerEntry()
        except (OSError, json.JSONDecodeError) as exc:
            raise StateError(f"{self.path} is unreadable ({exc}); delete it: the sink then renders in full") from exc
        try:
            return LedgerEntry(AppliedGeneration.from_json(raw.get("applied")),
                               AppliedGeneration.from_json(raw.get("pending")))
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"{self.path} does not hold a sink ledger ({exc}); delete it: the sink then renders "
                             "in full") from exc

    def write(self, entry: LedgerEntry) -> None:
        document = {"sink": self.sink.name,
                    "applied": asdict(entry.applied) if entry.applied else None,
                    "pending": asdict(entry.pending) if entry.pending else None}
        atomic_write_text(self.path, json.dumps(document, indent=1) + "\n")


def sinks_dir(layout: PipelineLayout) -> Path:
    """``<pipeline folder>/sinks/``: the sinks' ledgers (kept by reset, like runs.sqlite)."""
    return layout.folder / "sinks"


def catch_up_base(folder: GenerationFolder, applied: AppliedGeneration | None,
                  live: GenerationInfo) -> tuple[GenerationInfo | None, str]:
    """The generation a diffing sink can catch up from (None: render in full) and why, in words."""
    if applied is None:
        return None, "first render"
    if applied.names(live):
        return live, f"already holds generation {live.id}"
    if applied.epoch != live.epoch or applied.lineage != live.lineage:
        return None, (f"the live state is a new one (generation {live.id}, epoch {live.epoch}; the sink held "
                      f"{applied.generation} of epoch {applied.epoch}): a rebuild was promoted or the pipeline reset")
    behind = live.number - applied.number
    if behind > MAX_GENERATIONS_BEHIND:
        return None, (f"{behind} generations behind the live one (more than {MAX_GENERATIONS_BEHIND}): its "
                      f"generation {applied.generation} is not kept, so it renders in full")
    try:
        base = folder.load(applied.generation)
    except StateError:
        return None, f"its last applied generation {applied.generation} is no longer kept, so it renders in full"
    if not applied.names(base):
        return None, f"generation {applied.generation} now belongs to another state, so it renders in full"
    return base, f"catching up from generation {applied.generation} ({behind} behind)"


def retained_generations(layout: PipelineLayout, sinks: tuple[SinkSpec, ...]) -> frozenset[str]:
    """Generation ids lagging diffing sinks still need (the merge keeps them). Never raises: a sink whose ledger
    cannot be read only loses its catch-up (it renders in full), and the merge, which commits what consume
    already made durable, must never fail because of a sink."""
    if not any(sink.type in DIFFING_SINKS for sink in sinks):
        return frozenset()
    try:
        folder = GenerationFolder(layout)
        live_id = folder.pointer(LIVE)
        if live_id is None:
            return frozenset()
        live = folder.load(live_id)
    except (StateError, OSError) as exc:
        log.warning("sinks: no generation is kept for lagging sinks: the live state could not be read (%s)", exc)
        return frozenset()
    wanted: dict[str, int] = {}
    for sink in sinks:
        if sink.type not in DIFFING_SINKS:
            continue
        try:
            entry = SinkLedger(layout, sink).read()
        except StateError as exc:
            log.warning("sinks: %s", exc)
            continue
        for applied in (entry.applied, entry.pending):
            if applied is None:
                continue  # (the live generation itself is kept too: the merge is about to make it an old one)
            base, _ = catch_up_base(folder, applied, live)
            if base is not None:
                wanted[base.id] = base.number
    newest = sorted(wanted, key=wanted.__getitem__, reverse=True)[:MAX_RETAINED]
    return frozenset(newest)
