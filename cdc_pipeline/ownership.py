"""Which worker owns a connector's folder, and the refusal to run anywhere else.

With Celery workers on several hosts, a connector's tasks all go to its Airflow queue (``"queue"`` in the
connector file) and its folder lives on the disk of the worker serving that queue. ``owner.json`` in the folder
names the queue, and the worker (``CDC_WORKER_NAME``) when one is set. A task that finds the folder marked for
another queue or worker, or finds no folder while Kafka's consumer group says the connector was read before,
refuses with the fix: starting empty there would rebuild the connector beside its real files on another disk.
``claim`` moves a folder on purpose (docs/several-hosts.md).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from cdc_pipeline.atomic import atomic_write_text
from cdc_pipeline.connector_spec import ConnectorSpec
from cdc_pipeline.errors import ConfigError, WrongWorkerError
from cdc_pipeline.history import utc_now

OWNER_FILE = "owner.json"
WORKER_NAME_ENV = "CDC_WORKER_NAME"
GUIDE = "docs/several-hosts.md"


@dataclass(frozen=True)
class Worker:
    """Who runs this task: the queue it serves for the connector, its name when set, and its host."""

    queue: str
    name: str | None
    host: str

    @classmethod
    def here(cls, queue: str, env: dict[str, str] | None = None) -> Worker:
        env = os.environ if env is None else env
        return cls(queue=queue, name=env.get(WORKER_NAME_ENV) or None, host=socket.gethostname())

    def describe(self) -> str:
        named = f"worker {self.name} on {self.host}" if self.name else f"host {self.host}"
        return f"{named} (queue {self.queue})"


@dataclass(frozen=True)
class Owner:
    """What ``owner.json`` records."""

    connector: str
    queue: str
    worker: str | None
    host: str
    since: str

    def describe(self) -> str:
        named = f"worker {self.worker} on {self.host}" if self.worker else f"host {self.host}"
        return f"queue {self.queue}, {named}, since {self.since}"


def read_owner(folder: Path) -> Owner | None:
    try:
        recorded = json.loads((folder / OWNER_FILE).read_text(encoding="utf-8"))
        return Owner(**{key: recorded.get(key) for key in Owner.__dataclass_fields__})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{folder / OWNER_FILE} cannot be read ({exc}): it names the worker that owns this folder. "
                          f"Run python -m cdc_pipeline claim --connector {folder.name} --yes on the worker that should "
                          "own it") from exc


def write_owner(folder: Path, spec: ConnectorSpec, worker: Worker) -> Owner:
    owner = Owner(connector=spec.name, queue=worker.queue, worker=worker.name, host=worker.host, since=utc_now())
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / OWNER_FILE, json.dumps(asdict(owner), indent=1) + "\n")
    return owner


def has_history(folder: Path) -> bool:
    """The folder holds a run history: its own (one table) or a table's (several)."""
    return (folder / "runs.sqlite").exists() or any(folder.glob("*/runs.sqlite"))


def check_owner(folder: Path, spec: ConnectorSpec, worker: Worker, *,
                read_before: Callable[[], str | None]) -> Owner:
    """Run here only if this worker owns ``folder``; mark a folder from before this check (or a new one) as its.

    ``read_before`` says what Kafka remembers of the connector having been read (its consumer group's committed
    offsets), or None: asked only when there is no folder here."""
    owner = read_owner(folder)
    if owner is not None:
        if owner.queue != worker.queue:
            raise WrongWorkerError(
                f"{folder} belongs to queue {owner.queue} ({owner.describe()}), but {spec.path.name} now sends "
                f"{spec.name}'s tasks to queue {worker.queue}. Set \"queue\": \"{owner.queue}\" back, or move the "
                f"connector: pause its DAGs, copy {folder} to the worker serving {worker.queue}, and run "
                f"python -m cdc_pipeline claim --connector {spec.name} --yes there ({GUIDE})")
        if owner.worker and worker.name and owner.worker != worker.name:
            raise WrongWorkerError(
                f"{folder} belongs to worker {owner.worker} ({owner.describe()}), and this is {worker.describe()}: "
                f"two workers serve queue {worker.queue}, or the folder was copied here while its owner still runs. "
                f"Serve queue {worker.queue} from one worker only (airflow celery worker --queues {worker.queue}); "
                f"to move {spec.name} here on purpose, stop the other worker and run python -m cdc_pipeline claim "
                f"--connector {spec.name} --yes here ({GUIDE})")
        return owner
    if has_history(folder):
        return write_owner(folder, spec, worker)  # a folder from before owners were recorded: this worker's
    before = read_before()
    if before:
        raise WrongWorkerError(
            f"{spec.name} has no folder on {worker.describe()} ({folder}), but {before}: its files are on another "
            f"worker's disk, or were lost. Send queue {worker.queue} to the worker that holds them, or copy them to "
            f"{folder} and run python -m cdc_pipeline claim --connector {spec.name} --yes here. To start "
            f"{spec.name} afresh here instead (a new snapshot), run python -m cdc_pipeline claim --connector "
            f"{spec.name} --fresh --yes ({GUIDE})")
    return write_owner(folder, spec, worker)


def describe_group_read(group_id: str, offsets: dict[str, dict[int, int]]) -> str | None:
    """What the connector's consumer group has committed, as the witness that it was read before (None: nothing)."""
    if not offsets:
        return None
    read = "; ".join(f"{topic} up to {', '.join(f'p{p}:{o}' for p, o in sorted(parts.items()))}"
                     for topic, parts in sorted(offsets.items()))
    return f"Kafka's consumer group {group_id} has read {read}"
