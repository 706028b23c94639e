"""Sinks beside destiny.csv, rendered from the same state by the same merge (see docs/sinks.md)."""

from __future__ import annotations

from cdc_pipeline.pipeline import Pipeline


def retained_generations(pipe: Pipeline) -> frozenset[str]:
    """State generations a sink still needs to catch up from (kept by the merge); none while csv is the only sink."""
    if all(sink.type == "csv" for sink in pipe.spec.settings.sinks):
        return frozenset()
    raise NotImplementedError("sinks other than csv are being built (issue 13)")
