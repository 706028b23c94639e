"""Sinks beside destiny.csv, rendered from the same state by the same merge (docs/sinks.md).

After the merge, one task per sink named in the connector file's ``"sinks"`` renders the live generation:

- ``csv``: destiny.csv itself, written by the merge (nothing more to do);
- ``parquet``: ``destiny.parquet`` beside it, typed (:mod:`.arrow_types`), rewritten whole and atomically
  (:mod:`.parquet_sink`);
- ``postgres``: a replica table in another database, kept in step by the net change per key since the
  generation it holds, in one transaction with its bookkeeping (:mod:`.postgres_sink`).

Each sink remembers the generation it last applied (:mod:`.ledger`); the merge keeps the generations lagging
sinks still need (:func:`retained_generations`), bounded, so a sink that was down catches up with a diff, or
renders in full when it is too far behind and says so. A rebuilt or reset state (a new lineage or epoch) and
a schema change are rendered in full and replace the sink's content atomically.

API::

    retained_generations(pipe) -> frozenset[str]        # merge_batch keeps these generations; never raises
    TargetParams(host, port, user, password, dbname, conn_id)   # a postgres sink's database

One sink task's body, which renders through these modules and records the result, is
:func:`cdc_pipeline.tasks.sink.render_sink` (a task like merge_batch; this package imports nothing from tasks/).

Every render is recorded in the run history (``sink_results``: status, generation, rows, seconds, error);
:func:`cdc_pipeline.sinks.results.sinks_line` sums them up for the run's one-line summary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cdc_pipeline.pipeline import Pipeline

__all__ = ["TargetParams", "retained_generations"]


def retained_generations(pipe: Pipeline) -> frozenset[str]:
    """State generations lagging sinks still need to catch up from (the merge keeps them). Never raises."""
    from cdc_pipeline.sinks.ledger import retained_generations as retained

    return retained(pipe.layout, pipe.spec.settings.sinks)


def __getattr__(name: str):
    if name == "TargetParams":
        from cdc_pipeline.sinks.postgres_target import TargetParams

        return TargetParams
    raise AttributeError(name)
