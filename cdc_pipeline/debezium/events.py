"""One Kafka record of a Debezium PostgreSQL topic → one ChangeEvent of PostgreSQL COPY text.

Every value becomes the exact text PostgreSQL's output function prints for it (``DateStyle=ISO``,
``TimeZone=UTC``; IntervalStyle and lc_monetary from the RenderContext), because destiny.csv must equal
``COPY ... TO STDOUT (FORMAT csv)``. The connector settings this relies on are in
``include/connectors/*.json`` and explained in ``docs/types.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdc_pipeline.debezium.envelope import key_columns_of, short_repr, value_plan_and_payload
from cdc_pipeline.errors import EventDecodeError, UnsupportedTypeError
from cdc_pipeline.pgtext.context import DEFAULT_CONTEXT, RenderContext
from cdc_pipeline.pgtext.datetimes import timestamp_text
from cdc_pipeline.pgtext.types import UNAVAILABLE_VALUE

__all__ = [
    "UNAVAILABLE_VALUE",
    "ChangeEvent",
    "RenderContext",
    "DEFAULT_CONTEXT",
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
    if not isinstance(payload, dict):
        raise EventDecodeError(f"the value payload is {short_repr(payload)}, expected a Debezium change event object")
    op = payload.get("op")
    source = payload.get("source")
    if not isinstance(source, dict):
        raise EventDecodeError("the event has no 'source' block, so it is not a Debezium change event")
    lsn = source.get("lsn")
    ts_ms = source.get("ts_ms")
    if type(lsn) is not int or type(ts_ms) is not int:
        raise EventDecodeError(f"source block lacks an integer lsn/ts_ms (lsn={lsn!r}, ts_ms={ts_ms!r})")
    txid = source.get("txId")
    snapshot = source.get("snapshot")
    if op not in ROW_OPS:
        if op == TRUNCATE:
            return ChangeEvent(
                op=op, schema=source.get("schema") or "", table=source.get("table") or "", columns=(),
                key_columns=(), values=(), key=(), lsn=lsn, source_ts_ms=ts_ms,
                txid=txid if type(txid) is int else None, snapshot=None if snapshot in _STREAMED else str(snapshot),
                signature=plan.signature,
            )
        raise EventDecodeError(f"unknown op {op!r}: expected one of c, u, d, r, t (is this a Debezium change event?)")
    row = payload.get("before") if op == "d" else payload.get("after")
    if not isinstance(row, dict):
        side = "before" if op == "d" else "after"
        raise EventDecodeError(
            f"op {op!r} event has {side}={short_repr(row)}; expected the row. For deletes the table needs a primary "
            "key or REPLICA IDENTITY FULL"
        )
    values = []
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
    except Exception as exc:  # noqa: BLE001 - every converter failure becomes one precise decode error
        index = plan.columns.index(column)
        raise EventDecodeError(
            f"{source.get('schema')}.{source.get('table')}: column {column!r} ({plan.labels[index]}) "
            f"value {short_repr(raw_value)} cannot be decoded: {exc}"
        ) from exc
    if key is None:
        key_columns: tuple[str, ...] = ()
    else:
        key_columns, _ = key_columns_of(key)
    positions = plan.key_positions.get(key_columns)
    if positions is None:
        unknown = [name for name in key_columns if name not in plan.columns]
        if unknown:
            raise EventDecodeError(f"key columns {unknown} are not columns of the row {list(plan.columns)}")
        positions = tuple(plan.columns.index(name) for name in key_columns)
        plan.key_positions[key_columns] = positions
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
        txid=txid if type(txid) is int else None,
        snapshot=None if snapshot in _STREAMED else str(snapshot),
        signature=plan.signature,
    )


def format_source_timestamp(ts_ms: int) -> str:
    """Commit time (source.ts_ms) as timestamptz text in UTC, e.g. ``2026-11-24 01:02:03.123+00``."""
    return timestamp_text(ts_ms * 1000, "+00")
