"""A connectors folder with a connector of two tables (``shop``: public.a, public.b) and a one-table one
(``clientes``), and run histories for them: public.a and clientes merged a minute ago, public.b failed after
its last merge (this module holds no test; the status tests of the CLI, ./stack and the dashboard share it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cdc_pipeline.history import History, RunRef, RunStatus
from cdc_pipeline.layout import PipelineLayout

REPO = Path(__file__).resolve().parents[2]
CLIENTES = REPO / "include" / "connectors" / "clientes.json"
TABLES = ("public.a", "public.b")


def write_connectors(folder: Path) -> Path:
    """``shop.json`` (clientes.json's config capturing public.a and public.b, on queue host-b) and ``clientes.json``
    (the default queue)."""
    folder.mkdir(parents=True, exist_ok=True)
    document = json.loads(CLIENTES.read_text(encoding="utf-8"))
    (folder / "clientes.json").write_text(json.dumps(document))
    shop = {"name": "shop", "queue": "host-b", "config": document["config"] | {"table.include.list": ",".join(TABLES)}}
    (folder / "shop.json").write_text(json.dumps(shop))
    return folder


def table_folder(data: Path, table: str) -> PipelineLayout:
    return PipelineLayout(data / "shop" / table)


def write_histories(data: Path, now: datetime | None = None) -> None:
    """clientes and shop/public.a merged a minute before ``now``; shop/public.b merged, then failed."""
    now = now or datetime.now(UTC)
    merged_run(PipelineLayout.under(data, "clientes"), "scheduled__1", now, rows=5)
    merged_run(table_folder(data, "public.a"), "scheduled__1", now, rows=3)
    b = merged_run(table_folder(data, "public.b"), "scheduled__1", now, rows=7)
    b.runs.ensure_run(RunRef("scheduled__2", 1, 1))
    b.runs.update_run("scheduled__2", status=RunStatus.FAILED.value, started_at=_iso(now),
                      ended_at=_iso(now), error="merge_batch: disk full")


def merged_run(layout: PipelineLayout, run_id: str, now: datetime, *, rows: int) -> History:
    """A run merged a minute before ``now`` that read partition 0 up to ``rows``."""
    layout.folder.mkdir(parents=True, exist_ok=True)
    history = History.open(layout.history)
    minute_ago = _iso(now - timedelta(minutes=1))
    history.runs.ensure_run(RunRef(run_id, 1, 1))
    history.runs.record_batch(run_id, incarnation=1, epoch=0, ranges={0: (0, rows)})
    history.runs.update_run(run_id, status=RunStatus.MERGED.value, started_at=minute_ago, ended_at=minute_ago,
                            offset_ranges={"0": [0, rows]}, creates=rows, destiny_rows=rows, backlog=0,
                            max_source_ts=minute_ago)
    return history


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")
