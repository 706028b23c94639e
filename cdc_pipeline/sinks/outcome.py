"""What one render of one sink did: its status, why, and its figures (the task's summary, the run history)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cdc_pipeline.history.statuses import SinkStatus

STATUSES = tuple(SinkStatus)  # what each means: SinkStatus


@dataclass
class SinkOutcome:
    status: str
    reason: str
    generation: str | None = None
    epoch: int | None = None
    rows: int | None = None          # rows the sink holds afterwards
    upserted: int | None = None      # incremental: rows inserted or replaced
    deleted: int | None = None       # incremental: rows removed
    notes: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {tuple(s.value for s in STATUSES)}. Got {self.status!r}")
        self.status = SinkStatus(self.status).value  # a plain str in the task's summary (XCom) and the history

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, [], {})}
