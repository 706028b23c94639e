"""Backfill that means something: the table as of an instant and the changes of a window, from the change log.

- :func:`write_as_of` (``python -m cdc_pipeline as-of``): the table as it was at an instant, byte for byte in
  destiny.csv's form (cdc_pipeline.backfill.asof);
- :func:`write_changes` (``python -m cdc_pipeline changes``): the change events committed in [from, to), in
  buffer.csv's form (cdc_pipeline.backfill.changes);
- :func:`prune_once_a_day`: change log retention, folding the days that go into a base
  (cdc_pipeline.backfill.retention), called by the merge task;
- which instants are answerable: the earliest exact one (view), and the newest one the pipeline has read
  everything up to (coverage, limits). Refusals are :class:`cdc_pipeline.errors.AsOfError`, and
  :class:`cdc_pipeline.errors.NotCoveredYetError` when asking again later will work.

A backfill run of the pipeline DAG (plugins/cdc_airflow/backfill_runner.py) writes ``snapshots/<end>.csv`` and
``changes/<start>_<end>.csv`` with these. See docs/backfill.md.
"""

from cdc_pipeline.backfill.asof import AsOfResult, write_as_of
from cdc_pipeline.backfill.changes import ChangesResult, write_changes
from cdc_pipeline.backfill.coverage import PUBLICATION_MARGIN
from cdc_pipeline.backfill.retention import PruneResult, prune_changelog, prune_once_a_day

__all__ = ["PUBLICATION_MARGIN", "AsOfResult", "ChangesResult", "PruneResult", "prune_changelog", "prune_once_a_day",
           "write_as_of", "write_changes"]
