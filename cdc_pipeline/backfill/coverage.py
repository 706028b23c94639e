"""How recent an instant the change log answers exactly: what the run history says the pipeline has read.

Debezium publishes a change some time after its commit. A batch that read every partition to its end and was
merged holds every change published before the batch started reading, so the change log holds every change
committed before that start minus the publication delay. The newest such batch of the live lineage sets the
covered instant: ``read start - PUBLICATION_MARGIN``.

The margin (30 s): on this stack Debezium publishes a change well under a second after its commit (measured
in docs/backfill.md); the connector's heartbeat interval is 10 s, so three heartbeat intervals leave room for
a connector that is slow for a while (a long transaction, a Connect worker under load) without making a
backfill of the last minute wait long. A batch read while Kafka Connect or PostgreSQL was down, or within the
margin after it came back, does not count (events committed then may be published late): the newest batch
before the outage sets the instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cdc_pipeline.history.db import connect

PUBLICATION_MARGIN = timedelta(seconds=30)
# A run notices an outage at its registration; the outage may have begun one schedule interval earlier.
OUTAGE_LOOKBACK = timedelta(minutes=2)
WATCHED_SERVICES = ("connect", "postgres")


@dataclass(frozen=True)
class Coverage:
    covered: datetime | None     # every change committed at or before it is in the change log
    run_id: str | None = None    # the batch that sets it
    read_started: datetime | None = None
    reason: str = ""             # why nothing is covered, when covered is None


def coverage(history_path: Path, epoch: int, *, margin: timedelta = PUBLICATION_MARGIN) -> Coverage:
    if not history_path.exists():
        return Coverage(None, reason=f"there is no run history ({history_path})")
    with connect(history_path, readonly=True) as db:
        batches = db.execute(
            "SELECT r.run_id, (SELECT min(t.started_at) FROM task_tries t WHERE t.run_id = r.run_id"
            " AND t.task_id = 'consume_batch') AS read_started FROM runs r WHERE r.epoch = ? AND r.batch_complete = 1"
            " AND r.destiny_rows IS NOT NULL ORDER BY r.seq DESC LIMIT 500", (epoch,)).fetchall()
        outages = db.execute(
            f"SELECT service, first_seen_down_at, back_at FROM outages WHERE service IN "
            f"({', '.join('?' for _ in WATCHED_SERVICES)})", WATCHED_SERVICES).fetchall()
    windows = [(_parse(o["first_seen_down_at"]) - OUTAGE_LOOKBACK,
                _parse(o["back_at"]) + margin if o["back_at"] else datetime.max.replace(tzinfo=UTC)) for o in outages]
    disturbed = 0
    for batch in batches:
        if batch["read_started"] is None:
            continue
        started = _parse(batch["read_started"])
        if any(down <= started <= up for down, up in windows):
            disturbed += 1
            continue
        return Coverage(started - margin, batch["run_id"], started)
    if disturbed:
        return Coverage(None, reason=f"every batch read since epoch {epoch} began was read during an outage of Kafka "
                                     "Connect or PostgreSQL (or within the margin after it)")
    return Coverage(None, reason=f"no batch of epoch {epoch} has been read to the end of the topic and merged yet")


def snapshot_confirmed(history_path: Path, epoch: int) -> bool:
    """Has the lineage's snapshot been read whole? A rebuild that went live was (it waits for that); otherwise a
    complete, merged batch that read no snapshot row after one that did (Debezium emits a snapshot's rows
    without pause, so a batch that finds none after some were read comes after its end)."""
    if not history_path.exists():
        return False
    with connect(history_path, readonly=True) as db:
        promoted = db.execute("SELECT 1 FROM recoveries WHERE epoch = ? AND step = 'promoted'", (epoch,)).fetchone()
        if promoted:
            return True
        first_read = db.execute("SELECT min(seq) FROM runs WHERE epoch = ? AND coalesce(reads, 0) > 0"
                                " AND destiny_rows IS NOT NULL", (epoch,)).fetchone()[0]
        if first_read is None:
            return False
        after = db.execute("SELECT 1 FROM runs WHERE epoch = ? AND seq > ? AND batch_complete = 1 AND coalesce(reads, 0) = 0"
                           " AND destiny_rows IS NOT NULL LIMIT 1", (epoch, first_read)).fetchone()
    return after is not None


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
