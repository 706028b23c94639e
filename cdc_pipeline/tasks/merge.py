"""merge_batch: buffer.csv into the state and destiny.csv (cdc_pipeline.state), then archive the buffer.

During a rebuild the events go into the state being rebuilt aside; once the consume step has seen the
whole snapshot, this step makes the rebuilt state live in one atomic switch.
"""

from __future__ import annotations

import logging
from typing import Any

from cdc_pipeline.backfill.retention import prune_once_a_day
from cdc_pipeline.buffer.batch_buffer import BatchBuffer
from cdc_pipeline.changelog import ChangeLog
from cdc_pipeline.crashpoints import crashpoint
from cdc_pipeline.debezium.events import UNAVAILABLE_VALUE
from cdc_pipeline.history import RunRef, RunStatus
from cdc_pipeline.pipeline import Pipeline
from cdc_pipeline.pipeline_lock import pipeline_lock
from cdc_pipeline.sinks import retained_generations
from cdc_pipeline.state import StateStore
from cdc_pipeline.tasks.operations_guard import skip_for_operation
from cdc_pipeline.tasks.tracking import tracked

log = logging.getLogger(__name__)


def merge_batch(pipe: Pipeline, run: RunRef, *, archive_keep: int = 50) -> dict[str, Any]:
    """Apply buffer.csv. The state generations a lagging sink still needs are kept (asked inside the lock, so a
    sink finishing meanwhile is seen)."""
    with tracked(pipe.history, run, "merge_batch") as summary:
        summary.update(destiny=str(pipe.layout.destiny))
        if skip_for_operation(pipe, run, summary, holding_lock=False):
            return summary
        with pipeline_lock(pipe.layout):
            if skip_for_operation(pipe, run, summary, holding_lock=True):
                return summary
            _merge_locked(pipe, run, summary, archive_keep=archive_keep, retain=retained_generations(pipe))
            summary["changelog_retention"] = prune_once_a_day(pipe, run)
    return summary


def _merge_locked(pipe: Pipeline, run: RunRef, summary: dict, *, archive_keep: int, retain: frozenset[str]) -> None:
    history, layout = pipe.history, pipe.layout
    buffer = BatchBuffer(layout)
    store = StateStore(layout)
    meta, frame = buffer.read_table()  # Arrow: no pandas frame to build for the state to take apart again
    epoch = history.runs.current_epoch()
    if meta is not None and len(frame) and meta.epoch != epoch:
        archived = buffer.clear(archive_as=f"superseded-epoch-{meta.epoch}", keep=archive_keep)
        log.warning("merge: buffer events of epoch %s are superseded by a rebuild (epoch %s); set aside in %s",
                    meta.epoch, epoch, archived)
        meta, frame = None, frame.slice(0, 0)
    rebuild = store.rebuild()
    lineage = "rebuild" if rebuild is not None else "live"
    if rebuild is None and store.live() is None:
        description = pipe.table_description()
        if description is None:
            note = "waiting for register_connector to describe the table before the first merge; the buffer is kept"
            history.runs.add_note(run.run_id, note)
            summary.update(events=len(frame), notes=[note])
            log.warning("merge: %s", note)
            return
        store.create(description, lineage="live", epoch=epoch)
    target = store.rebuild() or store.live()
    changelog = ChangeLog(layout)

    def log_changes(applied, generation: str) -> None:
        changelog.append(applied, epoch=target.epoch, generation=generation)

    result = store.apply(frame, lineage=lineage, retain=retain, before_commit=log_changes) if len(frame) else None
    fields: dict[str, Any] = {"status": RunStatus.MERGED.value, "epoch": epoch}
    if result is not None:
        fields.update(merge_inserted=result.inserted, merge_updated=result.updated, merge_deleted=result.deleted,
                      merge_truncated=result.truncated, merge_stale=result.stale)
        summary.update(result.as_dict())
    promoted = _promote_if_complete(pipe, store, run, lineage, retain)
    live = store.live()
    fields["destiny_rows"] = live.rows if live else 0
    for note in store.notes:
        log.warning("merge: %s", note)
        history.runs.add_note(run.run_id, note)
    crashpoint("merge.before_buffer_archive")
    archived = buffer.clear(archive_as=run.run_id, keep=archive_keep) if len(frame) else None
    history.runs.update_run(run.run_id, **fields)
    changed = bool(promoted) or (result is not None and lineage == "live" and any(
        (result.inserted, result.updated, result.deleted, result.truncated)))
    summary.update(destiny_rows=fields["destiny_rows"], generation=live.id if live else None,
                   archived_buffer=str(archived) if archived else None, lineage=lineage, promoted=promoted,
                   destiny_changed=changed)
    if result is None:
        log.info("merge: nothing to merge; %s rows in %s", fields["destiny_rows"], layout.destiny.name)
    else:
        target = "the rebuild aside" if lineage == "rebuild" else layout.destiny.name
        log.info("merge: %s events into %s: +%s ~%s -%s%s, %s already applied", result.events, target,
                 result.inserted, result.updated, result.deleted,
                 f" (truncate removed {result.truncated})" if result.truncated else "", result.stale)
        if result.unavailable_values:
            log.warning("merge: %s unchanged-TOAST values had no earlier value (README, Troubleshooting)",
                        result.unavailable_values)
        log.info("merge: %s rows in %s (generation %s)", fields["destiny_rows"], layout.destiny, summary["generation"])


def _promote_if_complete(pipe: Pipeline, store: StateStore, run: RunRef, lineage: str, retain: frozenset[str]) -> str | None:
    recovery = pipe.history.incidents.active_recovery()
    if recovery is None or recovery.step != "snapshot_read":
        return None
    live = store.live()
    if lineage == "rebuild" and recovery.incremental:
        # A row changed inside its chunk's window keeps Debezium's unchanged-TOAST placeholder if no full read of
        # it followed: the table is read again (register sends the signal) before anything is promoted.
        held = store.rows_with_value(store.rebuild(), UNAVAILABLE_VALUE)
        if held:
            pipe.history.incidents.recovery_step(recovery.id, "reread_needed")
            log.warning("merge: rebuild %s holds %s rows with an unchanged-TOAST placeholder and no value for it; "
                        "%s is read again before the rebuild is promoted", recovery.id, held,
                        pipe.spec.qualified_table)
            return None
    if lineage == "rebuild":
        info = store.promote_rebuild(retain=retain)
    elif live is not None and live.epoch == recovery.epoch:
        info = live  # promoted by a merge that died before it could say so
    else:
        return None
    pipe.history.incidents.recovery_step(recovery.id, "promoted", run_id=run.run_id)
    if pipe.layout.legacy_state.exists():  # the previous version's state, replaced by this rebuild
        pipe.layout.archive_dir.mkdir(parents=True, exist_ok=True)
        pipe.layout.legacy_state.rename(pipe.layout.archive_dir / pipe.layout.legacy_state.name)
    done = (f"rebuild {recovery.id} ({recovery.reason}) complete: destiny.csv now holds the new snapshot and every "
            f"change since ({info.rows} rows)")
    pipe.history.runs.update_run(run.run_id, recovery=done)
    log.warning("merge: %s", done)
    return done
