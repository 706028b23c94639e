"""Schema changes seen in the events themselves: each event carries its row schema (its *signature*: column names,
Connect types, PostgreSQL types, length, scale). The first batch of a state lineage records it; a batch with
another one means the table changed (an added column, a new type), even before the catalog check sees it.
"""

from __future__ import annotations

import json

from cdc_pipeline.history.runs import RunHistory


# Debezium names a serial column's type SERIAL in snapshot reads and INT4 in streamed changes: the same type.
SOURCE_TYPE_ALIASES = {"SERIAL": "INT4", "SERIAL4": "INT4", "BIGSERIAL": "INT8", "SERIAL8": "INT8",
                       "SMALLSERIAL": "INT2", "SERIAL2": "INT2"}


def normalized(signature: tuple) -> tuple:
    """A signature with the spellings that differ between snapshot reads and streamed changes made one."""
    return tuple((*column[:3], SOURCE_TYPE_ALIASES.get(str(column[3]).upper(), column[3]), *column[4:])
                 if len(column) > 3 and column[3] is not None else tuple(column) for column in signature)


def signature_change(runs: RunHistory, signatures, epoch: int) -> str | None:
    """Compare the batch's signatures with the one recorded for state lineage ``epoch``; None when they agree."""
    if not signatures:
        return None
    signatures = dict.fromkeys(normalized(s) for s in signatures)
    setting = f"event_signature.{epoch}"
    recorded_raw = runs.get_setting(setting)
    seen = list(signatures)
    if recorded_raw is None:
        if len(seen) == 1:
            runs.set_setting(setting, json.dumps(seen[0]))
            return None
        recorded = seen[0]  # a change inside the lineage's very first batch
    else:
        recorded = normalized(_as_tuple(json.loads(recorded_raw)))
    changed = [s for s in seen if s != recorded]
    return describe_signature_change(recorded, changed[0]) if changed else None


def describe_signature_change(old: tuple, new: tuple) -> str:
    old_cols = {c[0]: c for c in old}
    new_cols = {c[0]: c for c in new}
    parts = [f"column {n} added" for n in new_cols if n not in old_cols]
    parts += [f"column {n} dropped" for n in old_cols if n not in new_cols]
    parts += [f"column {n} changed type ({_type_label(old_cols[n])} -> {_type_label(new_cols[n])})"
              for n in new_cols if n in old_cols and old_cols[n] != new_cols[n]]
    if not parts and [c[0] for c in old] != [c[0] for c in new]:
        parts.append("columns reordered")
    return "the change events' schema changed: " + "; ".join(parts or ["column attributes changed"])


def _type_label(column: tuple) -> str:
    source_type, length, scale = column[3], column[4], column[5]
    label = str(source_type or column[2] or column[1])
    if length not in (None, "") and scale not in (None, ""):
        return f"{label}({length},{scale})"
    return f"{label}({length})" if length not in (None, "") else label


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list) else value
