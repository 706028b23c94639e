"""The launcher's own errors, under one base so the CLI can print them without a traceback."""

from __future__ import annotations

from pathlib import Path

from cdc_pipeline.errors import WaitTimeout


class StackError(Exception):
    """Base of the launcher's errors. Messages say what failed, the value, the likely cause and the fix."""


class SettingsError(StackError):
    """A CDC_* variable has a value the launcher cannot use."""


class PortInUseError(StackError):
    """A part's port is taken by something that is not our own running part."""


class ReadinessTimeout(StackError, WaitTimeout):
    """A part did not become ready before its deadline; the message carries the tail of its log.

    Also a ``cdc_pipeline.errors.WaitTimeout``: the wait is ``cdc_pipeline.waiting.wait_until``'s.
    """

    def __init__(self, part: str, timeout: float, detail: str, log_tail: str, log_path: Path | None = None) -> None:
        self.part = part
        WaitTimeout.__init__(self, f"{part} to be ready", timeout, detail, log_tail, log_path=log_path)


class PartStartError(StackError):
    """A part could not be started: a binary is missing, or its process exited at once."""


class AirflowApiError(StackError):
    """The Airflow REST API refused a request; the message carries the status and the body."""
