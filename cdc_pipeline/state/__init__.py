"""The keyed state store: destiny.csv is the value store, an index beside it, generations switched atomically.

Layout (``<pipeline folder>/state/``)::

    LIVE                       names the live generation: "lineage-0001/gen-000042"
    REBUILD                    names the newest generation of a rebuild in progress (another lineage), if any
    lineage-0001/gen-000042/   destiny.csv   the table in COPY CSV form, rows in primary-key order (0444)
                               keys.npy      S{W} order-preserving sort keys of every key ever seen, ascending
                               rows.npy      per key: byte offset in destiny.csv, deleted flag, and the position
                                             (incarnation, partition, Kafka offset, LSN) of its last applied event
                               manifest.json format, columns, key types, the TableDescription, counts, sizes,
                                             merged offset ranges per (incarnation, partition), created_at

The pipeline folder's ``destiny.csv`` is a hard link to the live generation's file. A merge streams once
through the previous generation's index (in chunks: memory is bounded by the chunk and the batch), copies the
unchanged byte ranges of its destiny.csv with ``copy_file_range`` and renders only the changed rows, writes a
new generation beside it, then moves the pointer (the commit) and relinks destiny.csv. Crash points:
``merge.mid_state_write``, ``merge.before_live_switch``, ``merge.after_live_switch``, ``rebuild.before_swap``.

API::

    store = StateStore(layout)                       # cdc_pipeline.layout.PipelineLayout; repairs on first use
    store.live() / store.rebuild() -> GenerationInfo | None
        # .id ("lineage-0001/gen-000042"), .lineage, .rows, .tombstones, .columns, .key_columns,
        # .description (TableDescription), .destiny_path, .destiny_bytes, .merged_ranges, .epoch, .created_at
    store.generation(id) -> GenerationInfo              # any generation that still exists (e.g. a retained one)
    store.create(description, lineage="live" | "rebuild", *, epoch=0) -> GenerationInfo   # an empty state
        # "live" refuses to replace a live state that has keys; "rebuild" replaces a rebuild in progress
    store.apply(batch, *, lineage="live", retain=frozenset()) -> MergeResult
        # batch: buffer.csv's rows as a DataFrame (or Arrow table) of strings, None for NULL.
        # retain: generation ids a sink still needs; every other old generation is deleted after the commit.
        # MergeResult: events, inserted, updated, deleted, truncated, stale, unavailable_values, destiny_rows,
        # generation, written, replay, applied (pyarrow Table of the applied events for the change log)
    store.promote_rebuild(*, retain=frozenset()) -> GenerationInfo            # one atomic pointer move
    store.discard_rebuild()
    store.diff(old_generation | None, new_generation) -> Iterator[(key values, row values | None)]
    store.rows(generation) -> Iterator[row values]      # in key order; store.row_batches(...) as Arrow
    store.notes                                         # lines for the task log (relinks, text-ordered keys)

Errors: :class:`cdc_pipeline.errors.StateError` (the state is missing, damaged or does not match the batch's
columns; the message names the remedy), :class:`cdc_pipeline.errors.BatchFileError` (the batch is malformed).
The merge rules are in :mod:`cdc_pipeline.state.resolve`; the key encoding in :mod:`cdc_pipeline.state.sort_keys`.
"""

from cdc_pipeline.state.manifest import GenerationInfo
from cdc_pipeline.state.store import MergeResult, StateStore

__all__ = ["GenerationInfo", "MergeResult", "StateStore"]
