"""The dashboard as server-rendered HTML: the status strip on top, the filter, the runs table, the pager.

Everything shown comes from views.py (the JSON API returns the same data); every value is escaped here.
The page is made for a DAG tab of Airflow 3's UI (an iframe often 700-1100 px wide): columns that matter
least give way first on narrow screens (dashboard.css), and nothing is wider than the window.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any
from urllib.parse import urlencode

from cdc_airflow.dashboard.history_query import STATUS_FILTERS
from cdc_airflow.dashboard.views import RunsQuery
from cdc_pipeline.history import TryStatus

REFRESH_SECONDS = 15
COLUMNS = (("run", "started (UTC)"), ("state", "status"), ("events", "events"), ("offsets", "offsets moved"),
           ("merge", "merge"), ("rows", "rows"), ("duration", "duration"), ("error", "error"))
TONE_MARK = {"ok": "●", "bad": "✖", "warn": "▲", "busy": "◌", "idle": "○", "info": "•"}
LINE_MARK = {"outage": "⚡", "recovery": "↻", "verify": "✓", "operation": "⚙"}


def e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _document(title: str, static: str, body: str, *, refresh: bool) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{e(title)}</title><link rel='stylesheet' href='{e(static)}/dashboard.css'>"
        f"<script defer src='{e(static)}/dashboard.js'></script></head>"
        f"<body data-refresh-seconds='{REFRESH_SECONDS if refresh else 0}'>{body}</body></html>"
    )


def _refresh_control(generated_at: str) -> str:
    return (f"<span class='refresh'><label><input type='checkbox' id='auto-refresh' checked> auto-refresh "
            f"{REFRESH_SECONDS} s</label> · <span id='updated' data-at='{e(generated_at)}'>updated "
            f"{e(generated_at[11:19])} UTC</span></span>")


def _airflow_link(href: str | None, text: str, *, cls: str = "") -> str:
    if not href:
        return e(text)
    return f"<a href='{e(href)}' target='_top' data-airflow class='{e(cls)}'>{e(text)}</a>"


# --- the status strip -------------------------------------------------------------------------------

def strip_html(status: dict[str, Any]) -> str:
    cells = "".join(
        f"<div class='cell tone-{e(c['tone'])}{' wide' if c['wide'] else ''}' data-key='{e(c['key'])}' "
        f"title='{e(c['title'])}'><div class='label'>{e(c['label'])}</div><div class='value'>{e(c['value'])}</div>"
        f"<div class='detail'>{e(c['detail'])}</div></div>"
        for c in status["cells"]
    )
    problems = "".join(f"<li>{e(p)}</li>" for p in status["attention"])
    return (f"<section id='strip' class='strip state-{e(status['state'].replace(' ', '-'))}'>{cells}</section>"
            + (f"<ul class='problems'>{problems}</ul>" if problems else ""))


# --- the runs table ---------------------------------------------------------------------------------

def _run_rows(run: dict[str, Any], *, member: bool = False) -> str:
    key = e(run["run_id"])
    cls = f"run tone-{e(run['tone'])}" + (" fold-member" if member else "")
    failed_try = next((t for t in reversed(run["tries"]) if t["status"] == TryStatus.FAILED), None)
    log_try = failed_try or (run["tries"][-1] if run["tries"] else None)
    logs = f" {_airflow_link(log_try['log_url'], 'log', cls='log')}" if log_try and log_try["log_url"] else ""
    kind = "" if run["kind"] in ("scheduled", None) else f" <span class='kind'>{e(run['kind'])}</span>"
    notes = f" <span class='notes-mark' title='{e(' | '.join(run['notes']))}'>{len(run['notes'])} note" \
            f"{'s' if len(run['notes']) != 1 else ''}</span>" if run["notes"] else ""
    error = (f"<button type='button' class='error-line' data-toggle='{key}' title='show the whole error'>"
             f"{e(run['error_line'])}</button>") if run["error_line"] else ""
    cells = {
        "run": _airflow_link(run["airflow_url"], run["started"]) + kind,
        "state": f"<span class='mark'>{TONE_MARK.get(run['tone'], '•')}</span> {e(run['state'])}{logs}{notes}",
        # "u 37 · d 2": a narrow column wraps between the parts, never inside one ("d" above "2").
        "events": " · ".join(f"<span class='nowrap'>{e(part)}</span>" for part in run["events_text"].split(" · ")),
        "offsets": e(run["offsets_text"]),
        "merge": e(run["merge_text"]),
        "rows": e(run["rows_text"]),
        "duration": e(run["duration"]),
        "error": error,
    }
    main = (f"<tr class='{cls}' data-run='{key}'>"
            + "".join(f"<td class='col-{name}'>{cells[name]}</td>" for name, _ in COLUMNS)
            + f"<td class='col-more'><button type='button' class='more' data-toggle='{key}' "
              f"aria-label='details of {key}'>⋯</button></td></tr>")
    sublines = "".join(
        f"<tr class='subline tone-warn{' fold-member' if member else ''}'><td colspan='{len(COLUMNS) + 1}'>"
        f"↳ {e(label)}: {e(text)}</td></tr>"
        for label, text in (("recovery", run["recovery"]), ("schema change", run["schema_change"])) if text)
    return main + sublines + _details_row(run, member)


def _details_row(run: dict[str, Any], member: bool) -> str:
    tries = "".join(
        f"<li>{e(t['task_id'])} try {e(t['try_number'])}/{e(t['max_tries'] or '?')}: {e(t['status'])} in "
        f"{e(t['duration'])} {_airflow_link(t['log_url'], 'log')}"
        + (f" — {e(t['error_line'])}" if t["error_line"] else "") + "</li>"
        for t in run["tries"])
    facts = [
        ("run", run["run_id"]), ("offsets [start, end)", run["offsets_all_text"]),
        ("max LSN", run["max_lsn_text"] or "—"), ("newest source commit", run["max_source_ts"] or "—"),
        ("backlog after the run", "—" if run["backlog_after"] is None else f"{run['backlog_after']:,}"),
        ("seconds", " · ".join(f"{k} {v:.1f}" for k, v in run["seconds"].items() if v is not None) or "—"),
    ]
    notes = "".join(f"<li>{e(n)}</li>" for n in run["notes"])
    return (
        f"<tr class='details{' fold-member' if member else ''}' data-details='{e(run['run_id'])}' hidden>"
        f"<td colspan='{len(COLUMNS) + 1}'><dl>"
        + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts) + "</dl>"
        + (f"<div class='error-full'><b>error</b><pre>{e(run['error'])}</pre></div>" if run["error"] else "")
        + (f"<div><b>notes</b><ul>{notes}</ul></div>" if notes else "")
        + (f"<div><b>task tries</b><ul>{tries}</ul></div>" if tries else "")
        + "</td></tr>"
    )


def _entry_html(entry: dict[str, Any]) -> str:
    span = len(COLUMNS) + 1
    if entry["type"] == "run":
        return f"<tbody class='entry'>{_run_rows(entry)}</tbody>"
    if entry["type"] == "fold":
        members = "".join(_run_rows(run, member=True) for run in entry["runs"])
        return (f"<tbody class='fold' data-fold='{e(entry['at'])}'><tr class='fold-head'><td colspan='{span}'>"
                f"<button type='button' class='fold-toggle'>▸ {e(entry['text'])}</button></td></tr>{members}</tbody>")
    detail = f" <span class='line-detail'>{e(entry['detail'])}</span>" if entry.get("detail") else ""
    return (f"<tbody class='line tone-{e(entry['tone'])}' data-line='{e(entry['kind'])}'><tr><td colspan='{span}'>"
            f"{LINE_MARK.get(entry['kind'], '•')} <span class='line-time'>{e(entry['time'])}</span> "
            f"{e(entry['text'])}{detail}</td></tr></tbody>")


def filters_html(query: RunsQuery) -> str:
    options = "".join(f"<option value='{s}'{' selected' if s == query.run_filter.status else ''}>{s}</option>"
                      for s in STATUS_FILTERS)
    return (
        "<form class='filters' method='get'>"
        + (f"<input type='hidden' name='table' value='{e(query.table)}'>" if query.table else "")
        + f"<label>status <select name='status'>{options}</select></label> "
        f"<label><input type='checkbox' name='data' value='1'{' checked' if query.run_filter.with_data else ''}>"
        " carried data only</label>"
        f"<input type='hidden' name='limit' value='{query.limit}'>"
        "<noscript><button type='submit'>apply</button></noscript></form>"
    )


def runs_html(page: dict[str, Any], query: RunsQuery) -> str:
    head = "".join(f"<th class='col-{name}'>{e(label)}</th>" for name, label in COLUMNS) + "<th class='col-more'></th>"
    body = "".join(_entry_html(entry) for entry in page["entries"])
    if not page["entries"]:
        body = (f"<tbody><tr><td colspan='{len(COLUMNS) + 1}' class='empty'>No run matches "
                f"({e(page['filter']['status'])}{', carried data' if page['filter']['data'] else ''}).</td></tr></tbody>")
    pager = []
    if page["newer_offset"] is not None:
        pager.append(f"<a href='?{e(urlencode(query.params(offset=page['newer_offset'])))}' rel='prev'>← newer</a>")
    shown = sum(1 if x["type"] == "run" else x.get("count", 0) for x in page["entries"])
    pager.append(f"<span>runs {page['offset'] + 1 if shown else 0}–{page['offset'] + shown} of {page['matching']:,}</span>")
    if page["older_offset"] is not None:
        pager.append(f"<a href='?{e(urlencode(query.params(offset=page['older_offset'])))}' rel='next'>older →</a>")
    return (f"<table class='runs'><colgroup>{''.join(f'<col class=col-{n}>' for n, _ in COLUMNS)}<col class='col-more'>"
            f"</colgroup><thead><tr>{head}</tr></thead>{body}</table><nav class='pager'>{' '.join(pager)}</nav>")


# --- pages --------------------------------------------------------------------------------------------

def dashboard_page(data: dict[str, Any], query: RunsQuery, static: str, *, standalone_links: bool = True) -> str:
    pipeline, status = data["pipeline"], data["status"]
    airflow = pipeline["airflow"] or {}
    links = [_airflow_link(airflow.get("dag"), "DAG"), _airflow_link(airflow.get("ops_dag"), "operations DAG")]
    if standalone_links:
        links.append(f"<a href='{e(static.rsplit('/static', 1)[0])}/pipelines'>all pipelines</a>")
    table = f"?{urlencode({'table': pipeline['table']})}" if "tables" in data else ""
    links.append(f"<a href='{e(static.rsplit('/static', 1)[0])}/api/pipelines/{e(pipeline['connector'])}{e(table)}' "
                 "class='json'>JSON</a>")
    header = (
        f"<header class='top'><h1>{e(pipeline['name'])} <small>{e(pipeline['table'] or '')} → destiny.csv</small></h1>"
        f"<nav>{' · '.join(x for x in links if x)}</nav>{_refresh_control(data['generated_at'])}</header>"
    )
    tables = ""
    if "tables" in data:
        tables = status_table(data["tables"], lambda p: f"?{urlencode({'table': p['table']})}", heading="table",
                              selected=pipeline["name"])
    live = f"<div id='live'>{tables}{strip_html(status)}{filters_html(query)}{runs_html(data['runs'], query)}</div>"
    return _document(f"CDC · {pipeline['name']} · {status['label']}", static, header + live, refresh=True)


def status_table(items: list[dict[str, Any]], href: Callable[[dict[str, Any]], str], *, heading: str,
                 selected: str | None = None) -> str:
    """One line per pipeline (its queue, state, backlog, data as of, last merge, rows, headline), named by a link."""
    rows = []
    for item in items:
        pipeline, status = item["pipeline"], item["status"]
        cells = {c["key"]: c for c in status["cells"]}
        current = " current" if pipeline["name"] == selected else ""
        rows.append(
            f"<tr class='tone-{e(cells['state']['tone'])}{current}'><td><a href='{e(href(pipeline))}'>"
            f"{e(pipeline['name'])}</a></td><td class='queue'>{e(pipeline.get('queue') or '')}</td><td class='state'>{e(status['label'])}</td><td>{e(cells['backlog']['value'])}</td>"
            f"<td>{e(cells['data_as_of']['value'])}</td><td>{e(cells['last_merge']['detail'])}</td>"
            f"<td>{e(cells['rows']['value'])}</td><td class='col-error'>{e(status['headline'])}</td></tr>")
    return (f"<table class='overview'><thead><tr><th>{e(heading)}</th><th>queue</th><th>state</th><th>backlog</th>"
            "<th>data as of</th><th>last merge</th><th>rows</th><th>headline</th></tr></thead><tbody>"
            + ("".join(rows)
               or "<tr><td colspan='8' class='empty'>No pipeline: no connector file and no run history.</td></tr>")
            + "</tbody></table>")


def pipeline_href(base: str, pipeline: dict[str, Any]) -> str:
    """A pipeline's dashboard page: its connector's, with the table chosen when the connector captures several."""
    table = f"?{urlencode({'table': pipeline['table']})}" if pipeline["name"] != pipeline["connector"] else ""
    return f"{base}/pipelines/{pipeline['connector']}{table}"


def overview_page(data: dict[str, Any], static: str) -> str:
    base = static.rsplit("/static", 1)[0]
    broken = "".join(f"<li><b>{e(name)}</b>: {e(error)}</li>" for name, error in data["broken_connector_files"].items())
    body = (
        "<header class='top'><h1>CDC pipelines <small>status and run history</small></h1>"
        f"{_refresh_control(data['generated_at'])}</header><div id='live'>"
        + status_table(data["pipelines"], lambda p: pipeline_href(base, p), heading="pipeline")
        + (f"<h2>Connector files with errors</h2><ul class='problems'>{broken}</ul>" if broken else "")
        + "</div>"
    )
    return _document("CDC pipelines", static, body, refresh=True)


def message_page(title: str, text: str, static: str) -> str:
    return _document(title, static, f"<header class='top'><h1>{e(title)}</h1></header><p class='message'>{e(text)}</p>",
                     refresh=False)
