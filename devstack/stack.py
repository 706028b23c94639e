"""The whole local stack: start in order (reusing healthy parts), stop in reverse, status, reset."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from devstack.airflow import AirflowPart
from devstack.broker import BrokerPart
from devstack.drain import drain_pipelines
from devstack.connect import ConnectPart
from devstack.errors import StackError
from devstack.part import Part, PartStatus, StartResult
from devstack.postgres import PostgresPart
from devstack.settings import StackSettings

log = logging.getLogger(__name__)

PART_CLASSES: tuple[type[Part], ...] = (PostgresPart, BrokerPart, ConnectPart, AirflowPart)
PART_NAMES: tuple[str, ...] = tuple(cls.name for cls in PART_CLASSES)
SERVICES = ("postgres", "broker", "connect")  # everything but Airflow: what most stack tests need


class Stack:
    """The parts in start order. ``with Stack(settings) as stack:`` stops every part on the way out."""

    def __init__(self, settings: StackSettings | None = None) -> None:
        self.settings = settings or StackSettings.load()
        self.parts: dict[str, Part] = {cls.name: cls(self.settings) for cls in PART_CLASSES}

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __getitem__(self, name: str) -> Part:
        return self.parts[name]

    def _select(self, names: list[str] | tuple[str, ...] | None) -> list[Part]:
        if not names:
            return list(self.parts.values())
        unknown = sorted(set(names) - set(PART_NAMES))
        if unknown:
            raise StackError(f"unknown part(s) {unknown}: choose from {', '.join(PART_NAMES)}")
        return [part for name, part in self.parts.items() if name in names]

    def start(self, names: list[str] | tuple[str, ...] | None = None) -> list[StartResult]:
        """Start the named parts (default all) in dependency order; a running, healthy part is reused."""
        results = []
        for part in self._select(names):
            result = part.start()
            log.info("%s %s in %.1f s (pid %s)", part.name, "reused" if result.reused else "ready",
                     result.seconds, result.pid)
            results.append(result)
        return results

    def stop(self, names: list[str] | tuple[str, ...] | None = None) -> list[str]:
        """Stop the named parts (default all) in reverse order; returns the ones that were running. Keeps data."""
        stopped = []
        for part in reversed(self._select(names)):
            if part.stop():
                stopped.append(part.name)
        return stopped

    def stop_draining(self, *, report=log.info) -> list[str]:
        """``./stack stop``: Airflow and Kafka Connect first, then every pipeline merges what the broker holds
        (devstack.drain), then the broker and PostgreSQL. The broker keeps its log on disk, so the drain only
        leaves the files current: a pipeline that cannot be drained is reported and loses nothing (its next run
        reads on from its resume point), and the stop goes on."""
        stopped = self.stop(["airflow", "connect"])
        if self["broker"].is_running():
            for failure in drain_pipelines(self.settings, report):
                report(f"WARNING: {failure}; nothing is lost: the broker keeps its events and the pipeline's next run "
                       "merges them (see python -m cdc_pipeline status for the cause)")
        return stopped + self.stop(["broker", "postgres"])

    def status(self) -> list[PartStatus]:
        return [part.status() for part in self.parts.values()]

    def reset(self) -> list[Path]:
        """Stop everything and delete all local state; returns the deleted paths."""
        self.stop()
        deleted = []
        for path in (self.settings.stack_home, self.settings.data_dir):
            if path.exists():
                shutil.rmtree(path)
                deleted.append(path)
        return deleted
