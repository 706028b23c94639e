"""The closed sets of values the run history stores: run statuses, run kinds, task-try, operator-command and sink
statuses."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """Where a run got to. A consuming run moves started → buffered → committed → merged. A task try that
    fails with retries left changes no status (Airflow still shows the run running; the try is in
    task_tries); the run's last task writes the final status, so the history agrees with Airflow."""

    STARTED = "started"
    BUFFERED = "buffered"      # buffer.csv durable, its offset range recorded
    COMMITTED = "committed"    # offsets committed to the consumer group
    MERGED = "merged"          # destiny.csv holds the batch
    SKIPPED = "skipped"        # nothing done on purpose (an operator command was running)
    SUCCEEDED = "succeeded"    # a run that does not consume (backfill, operation, verify) ended well
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.MERGED, RunStatus.SKIPPED, RunStatus.SUCCEEDED, RunStatus.FAILED)


# Statuses at which the run's batch is durable in buffer.csv: its range is a valid resume point.
DURABLE = frozenset({RunStatus.BUFFERED, RunStatus.COMMITTED, RunStatus.MERGED})


class RunKind(StrEnum):
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    BACKFILL = "backfill"
    DRAIN = "drain"            # ./stack stop drains the broker before stopping it
    OPERATION = "operation"    # reset, resnapshot, verify from the CLI or the operations DAG

    @classmethod
    def from_run_id(cls, run_id: str) -> RunKind:
        """Airflow's run ids start with the run type (scheduled__, manual__, backfill__, asset_triggered__)."""
        prefix = run_id.split("__", 1)[0]
        return {"scheduled": cls.SCHEDULED, "backfill": cls.BACKFILL, "drain": cls.DRAIN,
                "operation": cls.OPERATION}.get(prefix, cls.MANUAL)


class TryStatus(StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


class OperationStatus(StrEnum):
    """An operator command (reset, resnapshot, verify, ...): running until it ends, then done or failed."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class SinkStatus(StrEnum):
    """What one render of one sink did."""

    FULL = "full"                  # rendered from the whole live generation
    INCREMENTAL = "incremental"    # the net change per key since the generation it held
    UNCHANGED = "unchanged"        # it already held the live generation
    WAITING = "waiting"            # no state yet
    SKIPPED = "skipped"            # an operator command holds the pipeline
    FAILED = "failed"              # recorded with its error
