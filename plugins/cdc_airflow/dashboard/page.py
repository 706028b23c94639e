"""The dashboard as server-rendered HTML: the status strip on top, the filter, the runs table, the pager.

Everything shown comes from views.py (the JSON API returns the same data); the markup is Jinja2 templates in
``templates/`` beside this module, with autoescape on, so every value is escaped unless a template says otherwise.
The page is made for a DAG tab of Airflow 3's UI (an iframe often 700-1100 px wide): columns that matter
least give way first on narrow screens (dashboard.css), and nothing is wider than the window.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from jinja2.ext import Extension

from cdc_airflow.dashboard.history_query import STATUS_FILTERS
from cdc_airflow.dashboard.views import RunsQuery
from cdc_pipeline.history import TryStatus

REFRESH_SECONDS = 15
COLUMNS = (("run", "started (UTC)"), ("state", "status"), ("events", "events"), ("offsets", "offsets moved"),
           ("merge", "merge"), ("rows", "rows"), ("duration", "duration"), ("error", "error"))
TONE_MARK = {"ok": "●", "bad": "✖", "warn": "▲", "busy": "◌", "idle": "○", "info": "•"}
LINE_MARK = {"outage": "⚡", "recovery": "↻", "verify": "✓", "operation": "⚙"}
TEMPLATES = Path(__file__).with_name("templates")


class JoinedLines(Extension):
    """The templates' line breaks and indentation are there to read them; the page has none (as before the
    templates: the browser tests and the script read the markup as it is). A space that matters is written
    inside a line or as ``{{ " " }}``."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return re.sub(r"\n\s*", "", source)


def _log_try(run: dict[str, Any]) -> dict[str, Any] | None:
    """The try whose log the status cell links: the last failed one, else the last one."""
    failed = [t for t in run["tries"] if t["status"] == TryStatus.FAILED]
    return failed[-1] if failed else (run["tries"][-1] if run["tries"] else None)


def _run_facts(run: dict[str, Any]) -> list[tuple[str, str]]:
    """The run's details row, as (term, value)."""
    return [
        ("run", run["run_id"]), ("offsets [start, end)", run["offsets_all_text"]),
        ("max LSN", run["max_lsn_text"] or "—"), ("newest source commit", run["max_source_ts"] or "—"),
        ("backlog after the run", "—" if run["backlog_after"] is None else f"{run['backlog_after']:,}"),
        ("seconds", " · ".join(f"{k} {v:.1f}" for k, v in run["seconds"].items() if v is not None) or "—"),
    ]


def _shown_runs(page: dict[str, Any]) -> int:
    """Runs on this page, those folded as idle included (the pager counts runs, not rows)."""
    return sum(1 if x["type"] == "run" else x.get("count", 0) for x in page["entries"])


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, extensions=[JoinedLines],
                      undefined=StrictUndefined, finalize=lambda value: "" if value is None else value)
    env.globals.update(REFRESH_SECONDS=REFRESH_SECONDS, COLUMNS=COLUMNS, SPAN=len(COLUMNS) + 1, TONE_MARK=TONE_MARK,
                       LINE_MARK=LINE_MARK, STATUS_FILTERS=STATUS_FILTERS, log_try=_log_try, run_facts=_run_facts,
                       shown_runs=_shown_runs)
    env.filters.update(by_key=lambda items: {item["key"]: item for item in items}, query_string=urlencode)
    return env


_TEMPLATES = _environment()


def _base(static: str) -> str:
    """This app's own base path, from its static files' (``<airflow root>/cdc/static``)."""
    return static.rsplit("/static", 1)[0]


def _table_query(pipeline: dict[str, Any]) -> str:
    return f"?{urlencode({'table': pipeline['table']})}"


def dashboard_page(data: dict[str, Any], query: RunsQuery, static: str, *, standalone_links: bool = True) -> str:
    pipeline = data["pipeline"]
    return _TEMPLATES.get_template("dashboard.html").render(
        static=static, base=_base(static), refresh=True, pipeline=pipeline, status=data["status"],
        generated_at=data["generated_at"], tables=data.get("tables"), runs=data["runs"], query=query,
        standalone_links=standalone_links, table_query=_table_query(pipeline) if "tables" in data else "",
        table_href=_table_query)


def pipeline_href(base: str, pipeline: dict[str, Any]) -> str:
    """A pipeline's dashboard page: its connector's, with the table chosen when the connector captures several."""
    table = _table_query(pipeline) if pipeline["name"] != pipeline["connector"] else ""
    return f"{base}/pipelines/{pipeline['connector']}{table}"


def overview_page(data: dict[str, Any], static: str) -> str:
    base = _base(static)
    return _TEMPLATES.get_template("overview.html").render(
        static=static, refresh=True, generated_at=data["generated_at"], pipelines=data["pipelines"],
        pipeline_href=lambda pipeline: pipeline_href(base, pipeline), broken=data["broken_connector_files"])


def message_page(title: str, text: str, static: str) -> str:
    return _TEMPLATES.get_template("message.html").render(static=static, refresh=False, title=title, text=text)
