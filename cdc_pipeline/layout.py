"""Where everything lives: the one data folder, and inside it one folder per pipeline.

Every path of a pipeline folder is derived here and nowhere else, so the tasks, the CLI, the Airflow
page and the tests agree on the names. A pipeline folder is ``<data dir>/<connector name>/``:

====================  ==========================================================================
``destiny.csv``       the table's current state (a hard link to the live state generation's file)
``buffer.csv``        the consumed, not yet merged change events (+ ``buffer.meta.json``)
``runs.sqlite``       the run history: runs, tries, incarnations, outages, recoveries, operations
``state/``            the keyed state store (generations, the live pointer, a rebuild aside)
``changelog/``        every merged event, Parquet, by source commit date
``destiny.parquet``   the Parquet sink, when the connector file asks for it
``sinks/``            what each sink last applied (kept by a reset, so a sink renders the new state in full)
``snapshots/``, ``changes/``  what backfill runs wrote
``archive/``          the last merged buffers, for inspection
``dead_letters.jsonl``  messages that could not be decoded
``table.json``        the source table's description as register_connector last read it
``.lock``             the pipeline lock (an OS flock)
====================  ==========================================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# The places used when no CDC_* variable names another; the launcher's settings (devstack/settings.py) read
# them here too, so the CLI, Airflow and ./stack agree.
STACK_HOME = REPO_ROOT / ".stack"
CONNECTORS_DIR = REPO_ROOT / "include" / "connectors"


def data_dir_in(stack_home: Path) -> Path:
    """The data folder of a stack home, when ``CDC_DATA_DIR`` does not name another."""
    return stack_home / "data"


def default_stack_home(env: os._Environ[str] | dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("CDC_STACK_HOME") or STACK_HOME)


def default_data_dir(env: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """The data folder, the same for the CLI and Airflow: ``$CDC_DATA_DIR``, else ``$CDC_STACK_HOME/data``
    (which is ``<repo>/.stack/data`` when neither is set)."""
    env = os.environ if env is None else env
    return Path(env.get("CDC_DATA_DIR") or data_dir_in(default_stack_home(env)))


def default_connectors_dir(env: os._Environ[str] | dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("CDC_CONNECTORS_DIR") or CONNECTORS_DIR)


@dataclass(frozen=True)
class PipelineLayout:
    """The files of one pipeline, ``<data dir>/<name>/``."""

    folder: Path

    @classmethod
    def under(cls, data_dir: str | Path, name: str) -> PipelineLayout:
        return cls(Path(data_dir) / name)

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def destiny(self) -> Path:
        return self.folder / "destiny.csv"

    @property
    def buffer(self) -> Path:
        return self.folder / "buffer.csv"

    @property
    def buffer_meta(self) -> Path:
        return self.folder / "buffer.meta.json"

    @property
    def archive_dir(self) -> Path:
        return self.folder / "archive"

    @property
    def history(self) -> Path:
        return self.folder / "runs.sqlite"

    @property
    def state_dir(self) -> Path:
        return self.folder / "state"

    @property
    def changelog_dir(self) -> Path:
        return self.folder / "changelog"

    @property
    def snapshots_dir(self) -> Path:
        """As-of snapshots written by backfill runs: ``snapshots/<end>.csv``."""
        return self.folder / "snapshots"

    @property
    def changes_dir(self) -> Path:
        """Changes of an interval written by backfill runs: ``changes/<start>_<end>.csv``."""
        return self.folder / "changes"

    @property
    def dead_letters(self) -> Path:
        return self.folder / "dead_letters.jsonl"

    @property
    def table_info(self) -> Path:
        return self.folder / "table.json"

    @property
    def lock(self) -> Path:
        return self.folder / ".lock"

    @property
    def legacy_state(self) -> Path:
        """The merge state of the version before the keyed state store; a folder holding it is rebuilt once."""
        return self.folder / "destiny.state.parquet"

    def sink_file(self, suffix: str) -> Path:
        """A file sink beside destiny.csv, e.g. ``destiny.parquet``."""
        return self.folder / f"destiny.{suffix}"

    def derived_files(self) -> list[Path]:
        """What the pipeline derived from Kafka (state, change log, outputs, buffer): what a reset moves aside.
        The run history, table.json and the connector's files stay."""
        return [self.state_dir, self.changelog_dir, self.destiny, self.sink_file("parquet"), self.buffer,
                self.buffer_meta, self.archive_dir]

    def aside(self, label: str) -> Path:
        """Where an operator command moves this folder: ``<name>.<label>`` beside it (nothing is deleted)."""
        return self.folder.with_name(f"{self.folder.name}.{label}")


# Where ``./stack up`` records the CDC_* settings it ran with ({"settings": {"CDC_...": "..."}}), so commands
# in a new shell (./stack, python -m cdc_pipeline) find the same stack. The environment wins over it. It stays in
# the default home whatever CDC_STACK_HOME says: it is read before the home is known.
RECORDED_SETTINGS = STACK_HOME / "settings.json"
