"""Verify: compare destiny.csv with the source table at one consistent point, while changes keep flowing.

1. In a REPEATABLE READ transaction, take the snapshot's transaction set (``pg_current_snapshot()``), the WAL
   position (every transaction the snapshot sees committed before it), and ``COPY`` of the table.
2. Wait until the replication slot has confirmed that position: Debezium has published, and Kafka
   acknowledged, every change the snapshot sees (heartbeats move the slot while the table is quiet).
3. Drain the pipeline (consume and merge, the same code as a run) with a batch that starts after that.
4. Compare per key. A key that differs is explained only when the change log shows it changed by a
   transaction the snapshot does not see; its value as of the snapshot (the last change the snapshot does
   see) must then equal COPY's. Anything else is a real difference: the result says which keys, with both
   values, and with on_data_loss=resnapshot it starts the atomic rebuild.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from psycopg import IsolationLevel

from cdc_pipeline.changelog import ChangeLog
from cdc_pipeline.pgtext.copy_csv import format_row, read_copy_csv
from cdc_pipeline.errors import CdcError, ConfigError, VerifyMismatchError
from cdc_pipeline.history import RunRef, utc_now
from cdc_pipeline.kafka.client import KafkaClients
from cdc_pipeline.kafka_connect import KafkaConnectClient
from cdc_pipeline.pipeline import Pipeline
from cdc_pipeline.pipeline_lock import pipeline_lock, rebuild_locks
from cdc_pipeline.recovery.rebuild import start_rebuild
from cdc_pipeline.services import Services
from cdc_pipeline.source.checks import SourceParams
from cdc_pipeline.tasks.consume import consume_batch
from cdc_pipeline.tasks.merge import merge_batch
from cdc_pipeline.tasks.finish import finish_run
from cdc_pipeline.waiting import wait_until

log = logging.getLogger(__name__)

SHOWN = 20  # differing keys written out in full


@dataclass(frozen=True)
class SourceSnapshot:
    xmin: int
    xmax: int
    in_progress: frozenset[int]
    lsn: str
    copy: bytes

    def sees(self, txid: int | None) -> bool:
        """Is transaction ``txid`` (Debezium's 32-bit txId) committed in this snapshot?"""
        if txid is None:
            return True
        return _precedes(txid, self.xmin) or (_precedes(txid, self.xmax) and txid not in self.in_progress)


@dataclass
class VerifyResult:
    result: str                      # identical | different
    compared: int
    differing: list[dict[str, Any]] = field(default_factory=list)
    explained: int = 0               # keys that differ only because they changed after the snapshot
    unverifiable: int = 0            # changed after the snapshot, with no earlier change in the change log
    snapshot_lsn: str = ""
    action: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        if self.result == "identical":
            extra = f" ({self.explained} keys changed since, compared as of the snapshot)" if self.explained else ""
            return f"identical: {self.compared} rows equal the source at WAL {self.snapshot_lsn}{extra}"
        problem = next((d["problem"] for d in self.differing if d.get("problem")), None)
        what = problem if problem else f"{len(self.differing)} of {self.compared} keys differ"
        return (f"DIFFERENT: {what} from the source at WAL {self.snapshot_lsn}"
                + (f"; {self.action}" if self.action else ""))


def verify(pipe: Pipeline, services: Services, *, run_id: str, timeout: float = 300.0,
           rebuild: bool = True) -> VerifyResult:
    """Compare destiny.csv with the source, every byte, at one snapshot; on a difference start a rebuild when
    ``rebuild`` and the pipeline's on_data_loss says so."""
    with services.kafka(pipe.spec.name) as kafka, services.connect() as connect:
        return _verify(pipe, services, kafka, connect if rebuild else None, run_id=run_id, timeout=timeout)


def _verify(pipe: Pipeline, services: Services, kafka: KafkaClients, connect: KafkaConnectClient | None, *,
            run_id: str, timeout: float) -> VerifyResult:
    source = services.source()
    history = pipe.history
    started = utc_now()
    if history.incidents.active_recovery() is not None:
        raise ConfigError(f"{pipe.spec.name} is being rebuilt from a new snapshot; verify once it is live")
    description = pipe.table_description()
    if description is None:
        raise ConfigError(f"{pipe.spec.name} has never described its table: let register_connector run first")
    order_by = ", ".join(f'"{c}"' for c in description.key_columns)
    snapshot = take_snapshot(source, pipe.spec.qualified_table, order_by)
    log.info("verify: source snapshot at WAL %s (xmin %s, xmax %s, %s in progress); %s bytes of COPY", snapshot.lsn,
             snapshot.xmin, snapshot.xmax, len(snapshot.in_progress), len(snapshot.copy))
    _wait_for_slot(source, pipe.spec.slot_name, snapshot.lsn, timeout)
    _drain(pipe, services, kafka, run_id, timeout)
    with pipeline_lock(pipe.layout):
        result = compare(pipe, snapshot, description.key_columns)
    if result.differing and pipe.spec.settings.on_data_loss == "resnapshot" and connect is not None:
        with rebuild_locks(pipe):
            recovery = start_rebuild(pipe, connect=connect, kafka=kafka,
                                     connector_config=services.connector_config(pipe.spec), run_id=run_id,
                                     reason="verify_mismatch", detail=result.line(), description=description)
        result.action = f"rebuild {recovery.id} started from a new snapshot (on_data_loss=resnapshot)"
    history.incidents.record_verification(run_id, started, result.result, result.compared, len(result.differing),
                                          {"differing": result.differing[:SHOWN], "explained": result.explained,
                                           "unverifiable": result.unverifiable, "lsn": snapshot.lsn,
                                           "action": result.action})
    log_differences(result)
    if result.differing:
        raise VerifyMismatchError(result.line())
    log.info("verify: %s", result.line())
    return result


def log_differences(result: VerifyResult) -> None:
    """The differing keys (at most SHOWN), never their values: row contents stay in runs.sqlite's verification
    record, out of task logs."""
    for item in result.differing[:SHOWN]:
        log.error("verify: %s", item.get("problem") or f"key {item['key']} differs")


def take_snapshot(source: SourceParams, table: str, order_by: str) -> SourceSnapshot:
    with source.connect() as conn:
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            conn.execute("SET LOCAL DateStyle = ISO")
            conn.execute("SET LOCAL TimeZone = 'UTC'")
            text = conn.execute("SELECT pg_current_snapshot()::text").fetchone()[0]
            lsn = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
            out = bytearray()
            with conn.cursor().copy(f"COPY (SELECT * FROM {table} ORDER BY {order_by}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
                for chunk in copy:
                    out += chunk
    xmin, xmax, xip = text.split(":")
    return SourceSnapshot(int(xmin) & 0xFFFFFFFF, int(xmax) & 0xFFFFFFFF,
                          frozenset(int(x) & 0xFFFFFFFF for x in xip.split(",") if x), lsn, bytes(out))


def _wait_for_slot(source: SourceParams, slot: str, lsn: str, timeout: float) -> None:
    """Wait until the slot has confirmed ``lsn``. A logical decoding message written now gives Debezium a change to
    process (and so a position to confirm) even when the database is otherwise quiet."""
    try:
        with source.connect(autocommit=True) as conn:
            marker = conn.execute("SELECT pg_logical_emit_message(true, 'cdc-verify', %s)::text", (lsn,)).fetchone()[0]
        lsn = max(lsn, marker, key=_lsn_value)
    except CdcError:
        raise
    except Exception as exc:  # noqa: BLE001 - without the privilege, heartbeats alone must move the slot
        log.warning("verify: could not write a logical decoding message (%s); waiting for heartbeats", exc)

    def confirmed() -> bool:
        with source.connect(autocommit=True) as conn:
            row = conn.execute("SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots WHERE slot_name = %s",
                               (lsn, slot)).fetchone()
        return bool(row and row[0])

    wait_until(confirmed, what=f"replication slot {slot} to confirm WAL {lsn} (Debezium published every change the "
               "snapshot sees)", timeout=timeout, interval=1.0)


def _drain(pipe: Pipeline, services: Services, kafka: KafkaClients, run_id: str, timeout: float) -> None:
    """Read until a batch that started after the slot confirmed the snapshot's position reaches every end. Its own
    loop, not wait_until: an error of a batch must end the verify, not count as "not yet"."""
    deadline = time.monotonic() + timeout
    number = 0
    while True:
        number += 1
        run = RunRef(f"operation__verify-{run_id}-{number}", 1, 1)
        consumed = consume_batch(pipe, services, run, kafka=kafka, max_events=100_000)
        merge_batch(pipe, run)
        finish_run(pipe, run)  # closed like any run: status and end time
        if consumed.get("recovery") or consumed.get("schema_change"):
            raise ConfigError(f"verify stopped: {consumed.get('recovery') or consumed.get('schema_change')}")
        if consumed.get("complete", True) and not consumed.get("skipped"):
            return
        if time.monotonic() > deadline:
            raise ConfigError(f"verify could not catch up with the topic within {timeout:.0f} s; try again later")


def compare(pipe: Pipeline, snapshot: SourceSnapshot, key_columns: tuple[str, ...]) -> VerifyResult:
    destiny = pipe.layout.destiny.read_bytes() if pipe.layout.destiny.exists() else b""
    result = VerifyResult("identical", max(0, snapshot.copy.count(b"\n") - 1), snapshot_lsn=snapshot.lsn)
    if destiny == snapshot.copy:
        return result
    source_rows = _rows_by_key(pipe, snapshot.copy, key_columns)
    destiny_rows = _rows_by_key(pipe, destiny, key_columns) if destiny else {}
    result.compared = len(source_rows)
    differing = sorted(k for k in source_rows.keys() | destiny_rows.keys() if source_rows.get(k) != destiny_rows.get(k))
    as_of = _as_of_snapshot(pipe, snapshot, key_columns, set(differing))
    for key in differing:
        if key in as_of:
            value = as_of[key]
            if value == "?":
                result.unverifiable += 1
                continue
            if value == source_rows.get(key):
                result.explained += 1
                continue
        result.differing.append({"key": list(key), "source": source_rows.get(key), "destiny": destiny_rows.get(key)})
    if not result.differing:
        problem = _byte_difference(snapshot.copy, destiny, source_rows, destiny_rows,
                                   exact=not (result.explained or result.unverifiable))
        if problem:
            result.differing.append({"key": None, "source": None, "destiny": None, "problem": problem})
    if result.differing:
        result.result = "different"
    return result


def _byte_difference(copy: bytes, destiny: bytes, source_rows: dict, destiny_rows: dict, *, exact: bool) -> str | None:
    """Every row equal by key, yet the files differ: the header, the row order, or the bytes of a row (quoting,
    line endings). With nothing changed since the snapshot the files must be equal byte for byte; otherwise the
    header must be, and the keys both hold must come in the same order."""
    if destiny == copy:
        return None
    copy_lines, destiny_lines = copy.split(b"\n"), destiny.split(b"\n")
    if copy_lines[0] != destiny_lines[0]:
        return f"the header differs: source {copy_lines[0][:200]!r}, destiny.csv {destiny_lines[0][:200]!r}"
    if exact:
        line = next((i for i, (a, b) in enumerate(zip(copy_lines, destiny_lines)) if a != b),
                    min(len(copy_lines), len(destiny_lines)))
        return (f"every row is equal by key but the bytes differ from line {line + 1} (row order, quoting or line "
                "endings)")
    source_order = [k for k in source_rows if k in destiny_rows]
    destiny_order = [k for k in destiny_rows if k in source_rows]
    moved = next((i for i, (a, b) in enumerate(zip(source_order, destiny_order)) if a != b), None)
    if moved is not None:
        return (f"the row order differs: row {moved + 1} of the rows both hold is key {list(source_order[moved])} in "
                f"the source and key {list(destiny_order[moved])} in destiny.csv")
    return None


def _rows_by_key(pipe: Pipeline, data: bytes, key_columns: tuple[str, ...]) -> dict[tuple, str]:
    """Each row's exact COPY line by primary key (parsed with NULL and '' kept apart, then rendered again)."""
    path = pipe.layout.folder / f".verify-{time.monotonic_ns()}.csv"
    try:
        path.write_bytes(data)
        frame = read_copy_csv(path)
    finally:
        path.unlink(missing_ok=True)
    records = frame.itertuples(index=False, name=None)
    positions = [list(frame.columns).index(c) for c in key_columns]
    return {tuple(values[i] for i in positions): format_row(list(values)) for values in records}


def _as_of_snapshot(pipe: Pipeline, snapshot: SourceSnapshot, key_columns, keys: set[tuple]) -> dict[tuple, str | None]:
    """For keys changed after the snapshot: their row as the snapshot saw it (None: absent; "?": unknown)."""
    epoch = pipe.history.runs.current_epoch()
    events = ChangeLog(pipe.layout).read(epoch=epoch)
    if events is None or not keys:
        return {}
    ops = events["operacion"].to_pylist()
    txids = events["_txid"].to_pylist()
    columns = list(pipe.table_description().column_names)
    invisible_truncate = any(op == "t" and not snapshot.sees(tx) for op, tx in zip(ops, txids))
    key_values = list(zip(*(events[c].to_pylist() for c in key_columns))) if key_columns else []
    seen_before: dict[tuple, str | None] = {}
    changed_after: set[tuple] = set()
    first_after_op: dict[tuple, str] = {}
    rows = None
    for index, op in enumerate(ops):
        visible = op == "r" or snapshot.sees(txids[index])
        if op == "t":
            if visible:
                seen_before = {k: None for k in seen_before}
            continue
        key = tuple(key_values[index])
        if key not in keys:
            continue
        if visible:
            if rows is None:
                rows = [events[c].to_pylist() for c in columns]
            seen_before[key] = None if op == "d" else format_row([rows[c][index] for c in range(len(columns))])
        else:
            changed_after.add(key)
            first_after_op.setdefault(key, op)
    answer: dict[tuple, str | None] = {}
    for key in keys:
        if key in changed_after or invisible_truncate:
            if key in seen_before:
                answer[key] = seen_before[key]
            elif first_after_op.get(key) == "c":
                answer[key] = None
            else:
                answer[key] = "?"
    return answer


def _lsn_value(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def _precedes(a: int, b: int) -> bool:
    """Transaction id ``a`` comes before ``b`` in PostgreSQL's circular 32-bit order."""
    return ((a - b) & 0xFFFFFFFF) >= 0x80000000
