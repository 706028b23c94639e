"""The events a merge applied, as an Arrow table for the change log: in batch order, TOAST placeholders
resolved (each row is the table row after the event; a delete carries what its event carried, a TRUNCATE
only its position), with their positions, ``timestamp`` and ``_txid``."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from cdc_pipeline.state import batch as batch_columns
from cdc_pipeline.state.batch import Batch


def applied_table(events: Batch, columns: tuple[str, ...], applied: np.ndarray, values: dict[int, list]) -> pa.Table:
    """The events that applied, in batch order, TOAST placeholders resolved: the change log's rows."""
    order = applied.tolist()
    strings: dict[str, list] = {}
    if order:
        strings[batch_columns.OPERATION] = [events.ops[i] for i in order]
        for c, name in enumerate(columns):
            strings[name] = [values[i][c] if i in values else None for i in order]
        strings[batch_columns.TIMESTAMP] = [events.timestamp[i] for i in order]
        strings[batch_columns.TOPIC] = [events.topic[i] for i in order]
        txid, txid_null = events.txid
    else:
        strings = {name: [] for name in (batch_columns.OPERATION, *columns, batch_columns.TIMESTAMP, batch_columns.TOPIC)}
        txid, txid_null = np.zeros(events.count, np.int64), np.ones(events.count, bool)
    arrays = {name: pa.array(data, pa.string()) for name, data in strings.items()}
    arrays[batch_columns.PARTITION] = pa.array(events.partition[applied], pa.int32())
    arrays[batch_columns.OFFSET] = pa.array(events.offset[applied], pa.int64())
    arrays[batch_columns.LSN] = pa.array(events.lsn[applied], pa.int64())
    arrays[batch_columns.INCARNATION] = pa.array(events.incarnation[applied], pa.int32())
    arrays[batch_columns.TXID] = pa.array(txid[applied], pa.int64(), mask=txid_null[applied])
    return pa.table(arrays)
