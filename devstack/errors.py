"""The launcher's own errors, under one base so the CLI can print them without a traceback."""

from __future__ import annotations


class StackError(Exception):
    """Base of the launcher's errors. Messages say what failed, the value, the likely cause and the fix."""


class SettingsError(StackError):
    """A CDC_* variable has a value the launcher cannot use."""


class PortInUseError(StackError):
    """A part's port is taken by something that is not our own running part."""


class ReadinessTimeout(StackError):
    """A part did not become ready before its deadline; the message carries the tail of its log."""

    def __init__(self, part: str, timeout: float, detail: str, log_tail: str) -> None:
        self.part = part
        self.timeout = timeout
        self.log_tail = log_tail
        message = f"{part} was not ready after {timeout:g} s: {detail}"
        if log_tail:
            message += f"\n--- last lines of the {part} log ---\n{log_tail}"
        super().__init__(message)


class PartStartError(StackError):
    """A part could not be started: a binary is missing, or its process exited at once."""


class AirflowApiError(StackError):
    """The Airflow REST API refused a request; the message carries the status and the body."""
