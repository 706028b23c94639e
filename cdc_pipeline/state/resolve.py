"""Per key, which of the batch's events apply and what the key ends as: the merge rules, on a batch-sized set.

An event applies when it is newer than the key's last applied position::

    newer(e, s) = e.offset > s.offset              if e and s share incarnation and partition
                  e.lsn > s.lsn or (e.lsn == s.lsn and e.incarnation > s.incarnation)   otherwise

Within one topic incarnation a key's events sit in one partition in emission order (LSN order can be wrong for
a transaction that straddles the snapshot); across incarnations the LSN decides, so re-sent events never move a
row backwards. A key's events are folded in (incarnation, partition, offset) order.

c, r, u upsert; d deletes and keeps the key as a tombstone. A TRUNCATE deletes every key whose final position
has an LSN below the truncate's (the latest truncate's position becomes the tombstone's). An unchanged-TOAST
placeholder, or a column the batch does not carry, keeps the previous applied event's value, else the live
row's; a placeholder with neither stays and is counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from cdc_pipeline.pgtext.copy_csv import format_row
from cdc_pipeline.state.batch import Batch
from cdc_pipeline.state.index_files import ROW_DTYPE

from cdc_pipeline.debezium.events import UNAVAILABLE_VALUE

INSERTED, UPDATED, DELETED, TRUNCATED, UNCHANGED = 1, 2, 3, 4, 0
_KEEP = object()  # a column the batch does not carry
_OLD = object()  # the previous row is the live row of the previous generation, parsed on demand


@dataclass
class KeyLookup:
    """What the previous generation holds for each of the batch's distinct keys (ascending)."""

    found: np.ndarray       # bool
    position: np.ndarray    # int64: the key's entry, or where it would be inserted
    rows: np.ndarray        # ROW_DTYPE (zeros where not found)
    ends: np.ndarray        # int64: end of the row in destiny.csv (offset + length)


@dataclass
class Resolution:
    """The outcome per distinct key, and the events that applied."""

    changed: np.ndarray                   # bool per key: its index entry (and maybe its row) changes
    final: np.ndarray                     # ROW_DTYPE per key: deleted flag and position (offset unset)
    outcome: np.ndarray                   # int8 per key: INSERTED, UPDATED, DELETED, TRUNCATED or UNCHANGED
    lines: list[bytes | None]             # per key: the rendered row when it ends live and changed
    applied: np.ndarray                   # indices of the batch events that applied, in batch order
    applied_values: dict[int, list[str | None]] = field(default_factory=dict)  # event -> row after it
    truncate_position: np.ndarray | None = None  # ROW_DTYPE scalar of the latest applying truncate
    stale: int = 0
    unavailable_values: int = 0

    @property
    def anything_to_write(self) -> bool:
        return bool(self.changed.any()) or self.truncate_position is not None or len(self.applied) > 0


def resolve(
    batch: Batch,
    columns: tuple[str, ...],
    key_codes: np.ndarray,
    lookup: KeyLookup,
    truncate_replayed: np.ndarray,
    old_row: Callable[[int], list[str | None]],
    truncated_at: np.ndarray | None = None,
) -> Resolution:
    """Fold the batch into per-key outcomes. ``key_codes`` maps each event to its distinct key (-1 for 't');
    ``truncate_replayed`` marks truncates inside the merged offset ranges; ``old_row(k)`` parses key k's live row.
    ``truncated_at`` (ROW_DTYPE scalar) is the latest truncate already applied: the last applied position of
    every key the state does not hold, so that an older event of a key that a truncate removed stays out."""
    keys = len(lookup.found)
    final = lookup.rows.copy() if keys else np.zeros(0, ROW_DTYPE)
    changed = np.zeros(keys, dtype=bool)
    outcome = np.zeros(keys, dtype=np.int8)
    lines: list[bytes | None] = [None] * keys
    applied_flags = np.zeros(batch.count, dtype=bool)
    applied_values: dict[int, list[str | None]] = {}
    was_live = lookup.found & ~lookup.rows["deleted"] if keys else np.zeros(0, bool)
    final_rows: dict[int, list[str | None]] = {}  # keys that end live with a new row
    stale = 0
    unavailable = 0

    row_events = np.flatnonzero(key_codes >= 0)
    order = row_events[np.lexsort((batch.offset[row_events], batch.partition[row_events],
                                   batch.incarnation[row_events], key_codes[row_events]))]
    boundaries = np.flatnonzero(np.diff(key_codes[order])) + 1
    value_lists = [batch.values.get(c) for c in columns]
    ops = batch.ops
    inc, part, off, lsn = (a.tolist() for a in (batch.incarnation, batch.partition, batch.offset, batch.lsn))

    for group in np.split(order, boundaries) if len(order) else []:
        k = int(key_codes[group[0]])
        found = bool(lookup.found[k])
        start = lookup.rows[k] if found or truncated_at is None else truncated_at
        known = found or truncated_at is not None
        s_inc, s_part, s_off, s_lsn = (int(start[f]) for f in ("incarnation", "partition", "kafka_offset", "lsn"))
        live = bool(was_live[k])
        previous: object = _OLD if live else None  # the row the next placeholder keeps
        current: list[str | None] | None = None
        any_applied = False
        for i in group.tolist():
            e_inc, e_part, e_off, e_lsn = inc[i], part[i], off[i], lsn[i]
            if known or any_applied:
                if e_inc == s_inc and e_part == s_part:
                    newer = e_off > s_off
                else:
                    newer = e_lsn > s_lsn or (e_lsn == s_lsn and e_inc > s_inc)
                if not newer:
                    stale += 1
                    continue
            any_applied = True
            applied_flags[i] = True
            s_inc, s_part, s_off, s_lsn = e_inc, e_part, e_off, e_lsn
            row = [_KEEP if values is None else values[i] for values in value_lists]
            if ops[i] == "d":
                live, current, previous = False, None, None
                applied_values[i] = [None if v is _KEEP else v for v in row]
                continue
            if _KEEP in row or UNAVAILABLE_VALUE in row:
                if previous is _OLD:
                    previous = old_row(k)
                for c, value in enumerate(row):
                    if value is _KEEP or value == UNAVAILABLE_VALUE:
                        if previous is not None:
                            row[c] = previous[c]
                        elif value is _KEEP:
                            row[c] = None  # a new key: NULL for a column the batch does not carry
            live, current, previous = True, row, row
            applied_values[i] = row
        if not any_applied:
            continue
        changed[k] = True
        final["incarnation"][k], final["partition"][k] = s_inc, s_part
        final["kafka_offset"][k], final["lsn"][k] = s_off, s_lsn
        final["deleted"][k] = not live
        if live:
            final_rows[k] = current
            outcome[k] = UPDATED if was_live[k] else INSERTED
        elif was_live[k]:
            outcome[k] = DELETED

    truncates = np.flatnonzero((key_codes < 0) & ~truncate_replayed)
    latest_truncate_row = None
    if len(truncates):
        applied_flags[truncates] = True
        latest = truncates[np.lexsort((batch.offset[truncates], batch.incarnation[truncates], batch.lsn[truncates]))[-1]]
        latest_truncate_row = truncate_position((int(batch.incarnation[latest]), int(batch.partition[latest]),
                                                 int(batch.offset[latest]), int(batch.lsn[latest])))
        # The batch's keys: their final position decides (an event after the truncate keeps the row).
        for k in np.flatnonzero((final["lsn"] < batch.lsn[latest]) & (lookup.found | changed)).tolist():
            ends_live = k in final_rows or (not changed[k] and was_live[k])
            if ends_live:
                outcome[k] = TRUNCATED if was_live[k] else UNCHANGED
            final_rows.pop(k, None)
            final[k] = latest_truncate_row
            changed[k] = True

    for k, row in final_rows.items():
        unavailable += row.count(UNAVAILABLE_VALUE)
        lines[k] = format_row(row).encode("utf-8")
    applied = np.flatnonzero(applied_flags)
    return Resolution(
        changed=changed, final=final, outcome=outcome, lines=lines, applied=applied, applied_values=applied_values,
        truncate_position=latest_truncate_row, stale=stale + int(truncate_replayed.sum()), unavailable_values=unavailable,
    )


def truncate_position(truncated_at: tuple[int, int, int, int] | None) -> np.ndarray | None:
    """The manifest's last TRUNCATE as a rows.npy entry (a tombstone at its position)."""
    if truncated_at is None:
        return None
    position = np.zeros((), ROW_DTYPE)
    position["incarnation"], position["partition"], position["kafka_offset"], position["lsn"] = truncated_at
    position["deleted"] = True
    return position


def latest_truncate(previous: tuple[int, int, int, int] | None, applied: np.ndarray | None) -> tuple[int, int, int, int] | None:
    """The later of the manifest's last TRUNCATE and the one this merge applied, by LSN then incarnation."""
    if applied is None:
        return previous
    new = (int(applied["incarnation"]), int(applied["partition"]), int(applied["kafka_offset"]), int(applied["lsn"]))
    if previous is None or (new[3], new[0]) > (previous[3], previous[0]):
        return new
    return previous
