"""Apply buffer.csv to destiny.csv: per primary key, the event with the latest source position wins.

The table's state lives in ``destiny.state.parquet`` beside destiny.csv: every key ever seen, its values
(COPY text, None for NULL), the position of the event that last changed it (LSN, partition, offset) and
whether it is deleted. Keeping deleted keys as tombstones is what lets an older batch, merged late, never
bring a row back; keeping positions is what makes merging the same batch twice change nothing.

destiny.csv is rendered from that state after every merge that changed something, in primary-key order, in
the exact form of PostgreSQL's ``COPY ... TO STDOUT WITH (FORMAT csv, HEADER)``. Both files are replaced
atomically, destiny.csv first: after a crash between the two, the retry merges the same buffer into the old
state again and renders the same rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cdc_pipeline.atomic import atomic_writer
from cdc_pipeline.batch_buffer import OPERATION, POSITION, BufferMeta
from cdc_pipeline.copy_csv import format_dataframe
from cdc_pipeline.debezium.events import UNAVAILABLE_VALUE
from cdc_pipeline.errors import BatchFileError

DELETED = "_deleted"
STATE_COLUMNS = (*POSITION, DELETED)
INTEGER_KEY_TYPES = frozenset({"smallint", "integer", "bigint"})
NUMERIC_KEY_TYPES = frozenset({"numeric", "real", "double precision"})
TEMPORAL_KEY_TYPES = frozenset({"date", "timestamp without time zone", "timestamp with time zone"})

# A NULL that must survive forward-filling of TOAST placeholders, which fills only missing values.
_NULL = "\x00null\x00"


@dataclass
class MergeResult:
    events: int = 0
    stale: int = 0  # at or below the key's last applied position: already merged, or older than it
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unavailable_values: int = 0  # TOAST placeholders with no earlier value to keep (see docs)
    destiny_rows: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class DestinyTable:
    """destiny.csv and its state file, in one pipeline folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.csv_path = self.folder / "destiny.csv"
        self.state_path = self.folder / "destiny.state.parquet"

    def load_state(self) -> tuple[pd.DataFrame, dict]:
        if not self.state_path.exists():
            return pd.DataFrame(), {}
        table = pq.read_table(self.state_path)
        info = json.loads((table.schema.metadata or {}).get(b"cdc", b"{}"))
        state = table.to_pandas()
        for column in info.get("columns", []):
            # pandas' own string dtype would hand NaN back for NULL; the merge and the writer want None.
            values = state[column].astype(object)
            state[column] = values.where(values.notna(), None)
        return state, info

    def save_state(self, state: pd.DataFrame, info: dict) -> None:
        table = pa.Table.from_pandas(state, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"cdc": json.dumps(info).encode()})
        with atomic_writer(self.state_path, "wb") as handle:
            pq.write_table(table, handle)

    def render(self, state: pd.DataFrame, columns: list[str], key_columns: list[str], key_types: dict[str, str]) -> int:
        """Write destiny.csv from the state's live rows, ordered by primary key like ORDER BY would."""
        live = state.loc[~state[DELETED], columns] if len(state) else pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        if len(live) > 1:
            sort_keys = pd.DataFrame({f"_k{i}": _sort_key(live[k], key_types.get(k)) for i, k in enumerate(key_columns)})
            live = live.loc[sort_keys.sort_values(list(sort_keys.columns), kind="stable").index]
        with atomic_writer(self.csv_path) as handle:
            handle.write(format_dataframe(live.reset_index(drop=True)))
        return len(live)


def merge_batch(table: DestinyTable, meta: BufferMeta, batch: pd.DataFrame, key_types: dict[str, str] | None = None) -> MergeResult:
    """Apply ``batch`` (buffer rows) to the table's state and re-render destiny.csv. Safe to run twice."""
    state, info = table.load_state()
    key = list(meta.key_columns)
    columns = _column_order(info.get("columns", []), meta.columns)
    key_types = {**info.get("key_types", {}), **(key_types or {})}
    result = MergeResult(events=len(batch))
    if len(state) == 0:
        state = pd.DataFrame({c: pd.Series(dtype=object) for c in columns} | _empty_positions())
    for column in columns:
        if column not in state.columns:
            state[column] = None  # a column added at the source: NULL for rows not changed since
    new_info = {"columns": columns, "key_columns": key, "key_types": key_types, "table": meta.table}
    changed = False
    if len(batch):
        state, changed = _apply(state, _prepare(batch, key, columns), key, columns, result)
    if not changed and new_info == info and table.csv_path.exists():
        # A replay or an empty batch: the files already hold this state.
        result.destiny_rows = int((~state[DELETED]).sum()) if len(state) else 0
        return result
    result.destiny_rows = table.render(state, columns, key, key_types)
    table.save_state(state[[*columns, *STATE_COLUMNS]], new_info)
    return result


def _prepare(batch: pd.DataFrame, key: list[str], columns: list[str]) -> pd.DataFrame:
    missing = [c for c in (*key, OPERATION, *POSITION) if c not in batch.columns]
    if missing:
        raise BatchFileError(f"the buffer lacks columns {missing}; it was not written by this pipeline.")
    events = batch[[OPERATION, *[c for c in columns if c in batch.columns], *POSITION]].copy()
    for column in POSITION:
        events[column] = events[column].astype("int64")
    bad_ops = set(events[OPERATION]) - {"c", "r", "u", "d"}
    if bad_ops:
        raise BatchFileError(f"the buffer holds unknown operations {sorted(bad_ops)}; expected c, r, u or d.")
    return events.sort_values(list(POSITION), kind="stable")


def _apply(state: pd.DataFrame, events: pd.DataFrame, key: list[str], columns: list[str], result: MergeResult) -> tuple[pd.DataFrame, bool]:
    value_columns = [c for c in columns if c not in key and c in events.columns]
    indexed = state.set_index(key, drop=False)
    # Drop what is at or below each key's applied position: replays and late, older batches.
    known = events.join(indexed[list(POSITION)].rename(columns=lambda c: f"{c}_applied"), on=key)
    applied = known[[f"{c}_applied" for c in POSITION]]
    has_state = applied.notna().all(axis=1)
    newer = ~has_state | _position_greater(known, applied)
    result.stale = int((~newer).sum())
    events = known[newer][events.columns]
    if events.empty:
        return state, False

    # Unchanged-TOAST placeholders take the value of the key's previous event in the batch, or of the
    # state; a NULL is protected as a marker meanwhile so the fill never crosses it.
    values = events[value_columns].where(events[value_columns].notna(), _NULL)
    values = values.mask(values == UNAVAILABLE_VALUE)
    values[key] = events[key]
    filled = values.groupby(key, sort=False)[value_columns].ffill()
    events = events.assign(**{c: filled[c] for c in value_columns})

    winners = events.groupby(key, sort=False).tail(1).set_index(key, drop=False)
    previous = indexed.reindex(winners.index)
    in_state = previous[DELETED].notna()
    for column in value_columns:
        gap = winners[column].isna() & in_state
        if gap.any():
            kept = previous.loc[gap, column]
            winners.loc[gap, column] = kept.where(kept.notna(), _NULL)
    still_missing = winners[value_columns].isna()
    result.unavailable_values = int(still_missing.to_numpy().sum())
    winners[value_columns] = winners[value_columns].where(~still_missing, UNAVAILABLE_VALUE)
    winners[value_columns] = winners[value_columns].replace(_NULL, None)

    was_live = previous[DELETED].eq(False)
    is_delete = winners[OPERATION].eq("d")
    result.inserted = int((~is_delete & ~was_live).sum())
    result.updated = int((~is_delete & was_live).sum())
    result.deleted = int((is_delete & was_live).sum())

    # A delete keeps the key and its position as a tombstone; its other values are of no use.
    winners.loc[is_delete, value_columns] = None
    winners[DELETED] = is_delete
    # A column the batch does not carry (dropped at the source, or a hand-trimmed buffer) keeps its value.
    for column in columns:
        if column not in winners.columns:
            kept = previous[column] if column in previous.columns else pd.Series(None, index=winners.index)
            winners[column] = kept.astype(object).where(kept.notna(), None)
    update = winners.reindex(columns=[*columns, *STATE_COLUMNS])
    rest = indexed[~indexed.index.isin(update.index)]
    merged = pd.concat([rest[[*columns, *STATE_COLUMNS]], update], ignore_index=True)
    merged[DELETED] = merged[DELETED].astype(bool)
    for column in POSITION:
        merged[column] = merged[column].astype("int64")
    return merged, True


def _position_greater(events: pd.DataFrame, applied: pd.DataFrame) -> pd.Series:
    """Lexicographic (lsn, partition, offset) comparison, vectorised."""
    greater = pd.Series(False, index=events.index)
    equal_so_far = pd.Series(True, index=events.index)
    for column in POSITION:
        mine, theirs = events[column], applied[f"{column}_applied"]
        greater |= equal_so_far & (mine > theirs)
        equal_so_far &= mine == theirs
    return greater


def _column_order(known: list[str], incoming: tuple[str, ...]) -> list[str]:
    return [*known, *[c for c in incoming if c not in known]]


def _empty_positions() -> dict[str, pd.Series]:
    return {"_lsn": pd.Series(dtype="int64"), "_partition": pd.Series(dtype="int64"), "_offset": pd.Series(dtype="int64"), DELETED: pd.Series(dtype=bool)}


def _sort_key(values: pd.Series, pg_type: str | None) -> pd.Series:
    """Order keys as PostgreSQL's ORDER BY does: numbers by value, dates and timestamps by time (BC and
    years past 9999 included), text by code point (the C collation)."""
    if pg_type in INTEGER_KEY_TYPES:
        return values.astype("int64")
    if pg_type in NUMERIC_KEY_TYPES:
        return values.map(_numeric_sort_key)
    if pg_type in TEMPORAL_KEY_TYPES:
        return values.map(_temporal_sort_key)
    return values


def _temporal_sort_key(value: str):
    if value in ("infinity", "-infinity"):
        return (1 if value == "infinity" else -1, 0, "")
    bc = value.endswith(" BC")
    text = value[:-3] if bc else value
    cut = text.index("-")
    year = int(text[:cut])
    # The rest ("-MM-DD HH:MM:SS.ffffff+00") has fixed-width fields, so it orders as text.
    return (0, 1 - year if bc else year, text[cut:])


def _numeric_sort_key(value: str | None):
    # Decimal keeps numeric's exact order; NaN sorts above every number in PostgreSQL.
    try:
        number = Decimal(value)
    except (InvalidOperation, TypeError):
        return (2, Decimal(0))
    return (1, Decimal(0)) if number.is_nan() else (0, number)
