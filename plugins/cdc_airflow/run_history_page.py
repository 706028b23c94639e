"""The run history of every pipeline as one HTML page, for the plugin's view in the Airflow UI."""

from __future__ import annotations

import html
import json
from pathlib import Path

from cdc_pipeline.history import History

COLUMNS = (
    ("run_id", "run"), ("status", "status"), ("started_at", "started"), ("ended_at", "ended"),
    ("offset_ranges", "offsets [start, end) per partition"), ("creates", "c"), ("updates", "u"),
    ("deletes", "d"), ("reads", "r"), ("tombstones", "tombstones"), ("other_tables", "other tables"),
    ("dead_lettered", "dead-lettered"), ("max_lsn", "max LSN"), ("max_source_ts", "latest source commit"),
    ("merge_inserted", "inserted"), ("merge_updated", "updated"), ("merge_deleted", "deleted"),
    ("destiny_rows", "rows"), ("register_seconds", "register s"), ("consume_seconds", "consume s"),
    ("merge_seconds", "merge s"), ("notes", "notes"), ("error", "error"),
)


def pipeline_histories(data_dir: Path, limit: int) -> dict[str, list[dict]]:
    """Recent runs of each pipeline folder under ``data_dir`` that has a runs.sqlite."""
    found = {}
    for path in sorted(Path(data_dir).glob("*/runs.sqlite")):
        found[path.parent.name] = History.open(path, readonly=True).runs.recent_runs(limit)
    return found


def render_page(histories: dict[str, list[dict]], data_dir: Path) -> str:
    sections = [f"<h2>{html.escape(name)}</h2>{_table(runs)}" for name, runs in histories.items()]
    body = "".join(sections) or f"<p>No run history yet under {html.escape(str(data_dir))}.</p>"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>CDC run history</title><style>"
        "body{font-family:sans-serif;font-size:13px;margin:1em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top}th{background:#f3f3f3}"
        ".failed{background:#fde8e8}.merged{background:#eefaf0}</style></head><body>"
        f"<h1>CDC run history</h1><p>Newest first. Files: {html.escape(str(data_dir))}/&lt;connector&gt;/runs.sqlite</p>"
        f"{body}</body></html>"
    )


def _table(runs: list[dict]) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in COLUMNS)
    rows = "".join(
        f"<tr class='{html.escape(str(run.get('status')))}'>" + "".join(f"<td>{_cell(run.get(key))}</td>" for key, _ in COLUMNS) + "</tr>"
        for run in runs
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(("{", "[")):
        try:
            value = json.dumps(json.loads(value))
        except ValueError:
            pass
    return html.escape(str(value))
