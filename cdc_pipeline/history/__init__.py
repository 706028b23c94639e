"""The run history, ``runs.sqlite`` beside destiny.csv: the pipeline's memory.

``History.open(path)`` creates or migrates the file and answers its two views: ``runs`` (runs, task
tries, settings, resume points) and ``incidents`` (topic incarnations, outages, recoveries, operator
commands, verifications, sink results). ``History.open(path, readonly=True)`` never writes (pages).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cdc_pipeline.history.db import initialize
from cdc_pipeline.history.incidents import Incarnation, Incidents, Recovery
from cdc_pipeline.history.runs import ResumePoint, RunHistory, RunRef, utc_now
from cdc_pipeline.history.statuses import DURABLE, OperationStatus, RunKind, RunStatus, SinkStatus, TryStatus

__all__ = ["DURABLE", "History", "Incarnation", "Incidents", "OperationStatus", "Recovery", "ResumePoint",
           "RunHistory", "RunKind", "RunRef", "RunStatus", "SinkStatus", "TryStatus", "utc_now"]


@dataclass(frozen=True)
class History:
    path: Path
    runs: RunHistory
    incidents: Incidents

    @classmethod
    def open(cls, path: str | Path, *, readonly: bool = False) -> History:
        path = Path(path)
        if not readonly:
            initialize(path)
        return cls(path, RunHistory(path, readonly=readonly), Incidents(path, readonly=readonly))
