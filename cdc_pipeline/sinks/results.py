"""The sinks' results of one run in words, for finish_run's one-line summary (no heavy imports here)."""

from __future__ import annotations

from typing import Any

from cdc_pipeline.history.statuses import SinkStatus


def sinks_line(results: list[dict[str, Any]]) -> str:
    """``sinks: parquet full 1200 rows · postgres:public.t FAILED`` from ``Incidents.sink_results(run_id)``;
    "" when the run rendered no sink."""
    parts = []
    for result in sorted(results, key=lambda r: r["sink"]):
        if result["status"] == SinkStatus.FAILED:
            parts.append(f"{result['sink']} FAILED")
        elif result.get("rows") is not None:
            parts.append(f"{result['sink']} {result['status']} {result['rows']} rows")
        else:
            parts.append(f"{result['sink']} {result['status']}")
    return "sinks: " + ", ".join(parts) if parts else ""


def sinks_summary(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per sink: status, generation, rows, seconds, error (the run summary's ``sinks`` entry)."""
    return {r["sink"]: {k: r.get(k) for k in ("status", "generation", "rows", "seconds", "error")} for r in results}
