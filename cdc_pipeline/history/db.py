"""runs.sqlite: the schema, its migrations, and connections (read-write for the tasks, read-only for pages).

SQLite because it is in the standard library, survives crashes mid-write (each call is one transaction)
and anyone can query it: ``sqlite3 runs.sqlite 'select * from runs order by seq desc limit 5'``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from cdc_pipeline.errors import StateError

SCHEMA_VERSION = 4

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id            TEXT NOT NULL UNIQUE,
    kind              TEXT NOT NULL DEFAULT 'scheduled',  -- RunKind
    logical_start     TEXT,
    logical_end       TEXT,
    started_at        TEXT,
    ended_at          TEXT,
    status            TEXT NOT NULL,                      -- RunStatus
    tries             INTEGER,                            -- the highest task try seen
    topic             TEXT,
    incarnation       INTEGER,                            -- incarnations.seq the batch was read from
    epoch             INTEGER,                            -- the state lineage the batch was merged into
    offset_ranges     TEXT,                               -- JSON {"partition": [start, end)}
    offsets_committed INTEGER NOT NULL DEFAULT 0,
    batch_complete    INTEGER,                            -- every partition was read to its end
    creates INTEGER, updates INTEGER, deletes INTEGER, reads INTEGER, truncates INTEGER,
    tombstones INTEGER, other_tables INTEGER, dead_lettered INTEGER, before_start INTEGER,
    max_lsn           INTEGER,
    max_source_ts     TEXT,
    backlog           INTEGER,                            -- events left in Kafka after this run's batch
    merge_inserted INTEGER, merge_updated INTEGER, merge_deleted INTEGER, merge_truncated INTEGER,
    merge_stale INTEGER,
    destiny_rows      INTEGER,
    register_seconds REAL, consume_seconds REAL, merge_seconds REAL,
    notes             TEXT,                               -- JSON list of sentences
    recovery          TEXT,                               -- what this run found lost and what it did
    schema_change     TEXT,                               -- the schema change this run saw and what it did
    error             TEXT
);
CREATE TABLE IF NOT EXISTS task_tries (
    run_id           TEXT NOT NULL,
    task_id          TEXT NOT NULL,
    try_number       INTEGER NOT NULL,
    max_tries        INTEGER,
    started_at       TEXT NOT NULL,
    ended_at         TEXT,
    status           TEXT NOT NULL,                       -- TryStatus
    duration_seconds REAL,
    summary          TEXT,                                -- JSON: the task's summary
    error            TEXT,
    PRIMARY KEY (run_id, task_id, try_number)
);
CREATE TABLE IF NOT EXISTS settings (                     -- what outlives one run, e.g. start_from_ms
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS resume_points (                -- every durable batch, reset and rebuild start
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT,
    at          TEXT NOT NULL,
    reason      TEXT NOT NULL,                            -- batch | new_incarnation | reset | rebuild | first_run
    incarnation INTEGER,                                  -- NULL: the next topic that appears, from its start
    epoch       INTEGER NOT NULL,
    ends        TEXT NOT NULL                             -- JSON {"partition": next offset to read}
);
CREATE TABLE IF NOT EXISTS incarnations (                 -- one per topic identity (topic id) the pipeline read
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    topic         TEXT NOT NULL,
    topic_id      TEXT,
    first_seen_at TEXT NOT NULL,
    first_run_id  TEXT,
    clean_end     TEXT,                                   -- JSON ends, recorded when it was drained before a stop
    clean_end_at  TEXT,
    ended_at      TEXT,
    end_reason    TEXT
);
CREATE TABLE IF NOT EXISTS outages (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    service            TEXT NOT NULL,                     -- postgres | connect | broker
    first_seen_down_at TEXT NOT NULL,
    first_run_id       TEXT,
    last_seen_down_at  TEXT NOT NULL,
    back_at            TEXT,
    back_run_id        TEXT,
    runs_affected      INTEGER NOT NULL DEFAULT 1,
    last_run_id        TEXT,                              -- the last run that saw it down (each run counts once)
    last_error         TEXT,
    data_lost          INTEGER NOT NULL DEFAULT 0,
    recovery_id        INTEGER
);
CREATE TABLE IF NOT EXISTS recoveries (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id                TEXT,
    reason                TEXT NOT NULL,                  -- data_loss | schema_change | verify_mismatch | operator
    detail                TEXT NOT NULL,
    lost                  TEXT,                           -- JSON: partitions and offset ranges not read
    epoch                 INTEGER NOT NULL,
    step                  TEXT NOT NULL,                  -- requested | resumed | signaled | reread_needed | snapshot_confirmed | snapshot_read | promoted | superseded
    started_at            TEXT NOT NULL,
    snapshot_confirmed_at TEXT,
    completed_at          TEXT,
    completed_run_id      TEXT,
    signal_id             TEXT,                           -- an incremental snapshot's latest execute-snapshot signal
    signals               INTEGER NOT NULL DEFAULT 0      -- how many were sent
);
CREATE TABLE IF NOT EXISTS operations (                   -- operator commands; a running one holds scheduled runs back
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    params     TEXT,
    origin     TEXT,                                      -- cli | airflow run id
    pid        INTEGER,
    started_at TEXT NOT NULL,
    ended_at   TEXT,
    status     TEXT NOT NULL,                             -- running | done | failed
    detail     TEXT
);
CREATE TABLE IF NOT EXISTS verifications (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT,
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    result      TEXT,                                     -- identical | different | error
    compared    INTEGER,
    differing   INTEGER,
    detail      TEXT
);
CREATE TABLE IF NOT EXISTS sink_results (
    run_id      TEXT NOT NULL,
    sink        TEXT NOT NULL,
    status      TEXT NOT NULL,
    generation  TEXT,
    rows        INTEGER,
    seconds     REAL,
    at          TEXT NOT NULL,
    error       TEXT,
    PRIMARY KEY (run_id, sink)
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
"""

# Columns added since the first released schema: (table, column, declaration).
_ADDED_COLUMNS = (
    ("runs", "kind", "TEXT NOT NULL DEFAULT 'scheduled'"), ("runs", "tries", "INTEGER"),
    ("runs", "incarnation", "INTEGER"), ("runs", "epoch", "INTEGER"), ("runs", "batch_complete", "INTEGER"),
    ("runs", "truncates", "INTEGER"), ("runs", "backlog", "INTEGER"), ("runs", "merge_truncated", "INTEGER"),
    ("runs", "recovery", "TEXT"), ("runs", "schema_change", "TEXT"), ("task_tries", "max_tries", "INTEGER"),
    ("outages", "last_run_id", "TEXT"), ("recoveries", "signal_id", "TEXT"),
    ("recoveries", "signals", "INTEGER NOT NULL DEFAULT 0"),
)


def initialize(path: Path) -> None:
    """Create or migrate runs.sqlite (idempotent)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=30)) as db, db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StateError(f"{path} was written by a newer version of this pipeline (schema {version} > "
                             f"{SCHEMA_VERSION}); upgrade the code that reads it")
        if version == SCHEMA_VERSION:
            return
        existing = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "runs" in existing:
            for table, column, declaration in _ADDED_COLUMNS:
                if table not in existing:
                    continue  # created whole by the schema below
                columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if column not in columns:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        db.executescript(SCHEMA)
        if "pipeline_settings" in existing:  # schema 1 kept settings under another name
            db.execute("INSERT OR IGNORE INTO settings SELECT name, value FROM pipeline_settings")
            db.execute("DROP TABLE pipeline_settings")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


@contextmanager
def connect(path: Path, *, readonly: bool = False) -> Iterator[sqlite3.Connection]:
    """One transaction: committed on success, rolled back on error. Read-only opens never write."""
    target = f"file:{path}?mode=ro" if readonly else str(path)
    with closing(sqlite3.connect(target, timeout=30, uri=readonly)) as db:
        db.row_factory = sqlite3.Row
        with db:
            yield db
