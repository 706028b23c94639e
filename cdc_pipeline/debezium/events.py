"""One Kafka record of a Debezium PostgreSQL topic → one ChangeEvent of PostgreSQL COPY text.

Every value becomes the exact text PostgreSQL's output function prints for it (``DateStyle=ISO``,
``TimeZone=UTC``; IntervalStyle and lc_monetary from the RenderContext), because destiny.csv must equal
``COPY ... TO STDOUT (FORMAT csv)``. The connector settings this relies on are in
``include/connectors/*.json`` and explained in ``docs/types.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from cdc_pipeline.debezium.csv_rows import csv_field
from cdc_pipeline.debezium.envelope import RowPlan, key_columns_only, short_repr, value_plan_and_payload
from cdc_pipeline.errors import EventDecodeError, UnsupportedTypeError
from cdc_pipeline.pgtext.context import DEFAULT_CONTEXT, RenderContext
from cdc_pipeline.pgtext.datetimes import timestamp_text
from cdc_pipeline.pgtext.types import UNAVAILABLE_VALUE

__all__ = [
    "UNAVAILABLE_VALUE",
    "ChangeEvent",
    "CsvChange",
    "RenderContext",
    "DEFAULT_CONTEXT",
    "decode_csv",
    "decode_message",
    "format_source_timestamp",
]

ROW_OPS = frozenset({"c", "u", "d", "r"})
TRUNCATE = "t"
# source.snapshot of a streamed change; anything else names the kind of snapshot read.
_STREAMED = (None, "false", False)


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One decoded change. ``values`` are COPY text forms aligned with ``columns``; None is NULL.

    For ``op='d'`` the values come from ``before``: under the default replica identity only the key columns
    are set there. A value equal to :data:`UNAVAILABLE_VALUE` means "unchanged, keep the old one".
    ``key`` is the values of ``key_columns`` (primary key, in the key schema's order). For ``op='t'``
    (TRUNCATE) ``columns``, ``values``, ``key`` and ``key_columns`` are empty; ``signature`` still describes
    the table's row schema as the envelope carried it.

    ``lsn``, ``source_ts_ms`` and ``txid`` are ``source.lsn``, ``source.ts_ms`` (commit time) and
    ``source.txId``; ``snapshot`` is ``source.snapshot`` for snapshot reads (``'first'``, ``'true'``,
    ``'last'``, ``'incremental'``, ...) and None for streamed changes. ``signature`` has one tuple per column:
    (name, Connect type, logical name, source column type, its length, its scale, optional), equal for two
    events iff their columns and types are.
    """

    op: str
    schema: str
    table: str
    columns: tuple[str, ...]
    key_columns: tuple[str, ...]
    values: tuple[str | None, ...]
    key: tuple[str | None, ...]
    lsn: int
    source_ts_ms: int
    txid: int | None
    snapshot: str | None
    signature: tuple


def decode_message(
    key: bytes | None, value: bytes | None, context: RenderContext = DEFAULT_CONTEXT
) -> ChangeEvent | None:
    """Decode one Kafka record of a Debezium PostgreSQL topic; None for a delete's tombstone (null value).

    Raises EventDecodeError for bytes that are not a Debezium JSON envelope (with the likely cause and fix)
    and UnsupportedTypeError for a column whose type has no faithful text form.
    """
    if value is None:
        return None
    plan, payload = value_plan_and_payload(value, context)
    op, source, lsn, ts_ms, txid, snapshot = _source_of(payload)
    if op == TRUNCATE:
        return ChangeEvent(
            op=op, schema=source.get("schema") or "", table=source.get("table") or "", columns=(),
            key_columns=(), values=(), key=(), lsn=lsn, source_ts_ms=ts_ms, txid=txid, snapshot=snapshot,
            signature=plan.signature,
        )
    values = _values(plan, _row_of(op, payload), source)
    key_columns = () if key is None else key_columns_only(key)
    positions = _key_positions(plan, key_columns)
    return ChangeEvent(
        op=op,
        schema=source.get("schema") or "",
        table=source.get("table") or "",
        columns=plan.columns,
        key_columns=key_columns,
        values=tuple(values),
        key=tuple(values[i] for i in positions),
        lsn=lsn,
        source_ts_ms=ts_ms,
        txid=txid,
        snapshot=snapshot,
        signature=plan.signature,
    )


class CsvChange(NamedTuple):
    """One decoded change with its row already as COPY CSV fields: what buffer.csv needs, built by the plan's
    compiled renderer (debezium.csv_rows) instead of a tuple of values. ``fields`` joins one field per
    column of ``columns`` with commas; a TRUNCATE has no columns and ``fields`` ''. The other fields mean
    what they mean in :class:`ChangeEvent`."""

    op: str
    schema: str
    table: str
    columns: tuple[str, ...]
    key_columns: tuple[str, ...]
    fields: str
    lsn: int
    source_ts_ms: int
    txid: int | None
    snapshot: str | None
    signature: tuple


def decode_csv(key: bytes | None, value: bytes | None, context: RenderContext = DEFAULT_CONTEXT) -> CsvChange | None:
    """:func:`decode_message` for buffer.csv: the same checks and errors, the row as CSV fields. None for a
    tombstone. Same bytes as ``format_row`` of decode_message's values (tests/unit/test_debezium_csv_rows.py)."""
    if value is None:
        return None
    plan, payload = value_plan_and_payload(value, context)
    op, source, lsn, ts_ms, txid, snapshot = _source_of(payload)
    schema = source.get("schema") or ""
    table = source.get("table") or ""
    if op == TRUNCATE:
        return CsvChange(op, schema, table, (), (), "", lsn, ts_ms, txid, snapshot, plan.signature)
    row = _row_of(op, payload)
    key_columns = () if key is None else key_columns_only(key)
    _key_positions(plan, key_columns)
    try:
        fields = plan.render_csv(row)
    except Exception:  # noqa: BLE001 - the generic path below raises the precise error, or writes what it always did
        fields = ",".join([csv_field(v) for v in _values(plan, row, source)])
    return CsvChange(op, schema, table, plan.columns, key_columns, fields, lsn, ts_ms, txid, snapshot, plan.signature)


def _source_of(payload: Any) -> tuple[str, dict, int, int, int | None, str | None]:
    """op, the source block, lsn, ts_ms, txId and the snapshot kind of a payload; raises for anything that is
    not a Debezium change event."""
    if not isinstance(payload, dict):
        raise EventDecodeError(f"the value payload is {short_repr(payload)}, expected a Debezium change event object")
    op = payload.get("op")
    source = payload.get("source")
    if not isinstance(source, dict):
        raise EventDecodeError("the event has no 'source' block, so it is not a Debezium change event")
    lsn = source.get("lsn")
    ts_ms = source.get("ts_ms")
    if lsn is None and source.get("snapshot") == "incremental":
        lsn = _incremental_read_lsn(source.get("sequence"))
    if type(lsn) is not int or type(ts_ms) is not int:
        raise EventDecodeError(f"source block lacks an integer lsn/ts_ms (lsn={lsn!r}, ts_ms={ts_ms!r})")
    if op not in ROW_OPS and op != TRUNCATE:
        raise EventDecodeError(f"unknown op {op!r}: expected one of c, u, d, r, t (is this a Debezium change event?)")
    txid = source.get("txId")
    snapshot = source.get("snapshot")
    return (op, source, lsn, ts_ms, txid if type(txid) is int else None,
            None if snapshot in _STREAMED else str(snapshot))


def _incremental_read_lsn(sequence) -> int | None:
    """An incremental snapshot's read carries no lsn of its own, only ``sequence``: [the last commit's LSN, the
    current LSN] when Debezium emitted it. The last commit is taken: the read holds what was committed up to there,
    and a later transaction's events (a TRUNCATE among them) have higher LSNs. Right after the connector starts
    there is no last commit yet: the current LSN is where streaming resumed, below every later event."""
    try:
        positions = orjson.loads(sequence) if isinstance(sequence, str) else None
        known = [p for p in positions or () if p is not None]
        return int(known[0]) if known else None
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return None


def _row_of(op: str, payload: dict) -> dict:
    row = payload.get("before") if op == "d" else payload.get("after")
    if not isinstance(row, dict):
        side = "before" if op == "d" else "after"
        raise EventDecodeError(
            f"op {op!r} event has {side}={short_repr(row)}; expected the row. For deletes the table needs a primary "
            "key or REPLICA IDENTITY FULL"
        )
    return row


# What a converter raises on a value it cannot read (wrong JSON type, bad base64, out of range, missing field).
# RuntimeError, NameError, AssertionError and the like are not here: a bug in a converter fails the run instead of
# dead-lettering every event of that type.
VALUE_FAILURES = (ValueError, TypeError, ArithmeticError, LookupError, AttributeError)


def _values(plan: RowPlan, row: dict, source: dict) -> list[str | None]:
    """Each column's text through its converter, in the plan's order; a failure names the column and value."""
    values: list[str | None] = []
    append = values.append
    get = row.get
    column = None
    raw_value = None
    try:
        for column, convert in zip(plan.columns, plan.converters):
            raw_value = get(column)
            if raw_value is None or convert is None:
                append(raw_value)
            else:
                append(convert(raw_value))
    except UnsupportedTypeError:
        raise
    except VALUE_FAILURES as exc:  # a malformed value becomes one precise decode error; a bug stays a bug
        index = plan.columns.index(column)
        raise EventDecodeError(
            f"{source.get('schema')}.{source.get('table')}: column {column!r} ({plan.labels[index]}) "
            f"value {short_repr(raw_value)} cannot be decoded: {exc}"
        ) from exc
    return values


def _key_positions(plan: RowPlan, key_columns: tuple[str, ...]) -> tuple[int, ...]:
    positions = plan.key_positions.get(key_columns)
    if positions is None:
        unknown = [name for name in key_columns if name not in plan.columns]
        if unknown:
            raise EventDecodeError(f"key columns {unknown} are not columns of the row {list(plan.columns)}")
        positions = tuple(plan.columns.index(name) for name in key_columns)
        plan.key_positions[key_columns] = positions
    return positions


def format_source_timestamp(ts_ms: int) -> str:
    """Commit time (source.ts_ms) as timestamptz text in UTC, e.g. ``2026-11-24 01:02:03.123+00``."""
    return timestamp_text(ts_ms * 1000, "+00")
