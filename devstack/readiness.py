"""The one wait loop: poll a predicate until it answers, or raise ReadinessTimeout with the part's log tail."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from devstack.errors import PartStartError, ReadinessTimeout
from devstack.process import log_tail

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    *,
    part: str,
    timeout: float,
    interval: float = 0.5,
    log_path: Path | None = None,
    alive: Callable[[], bool] | None = None,
) -> T:
    """Call ``predicate`` every ``interval`` s until it returns a truthy value, and return that value.

    An exception from the predicate counts as "not ready yet" and its text goes into the error.
    If ``alive`` says the process has exited there is nothing to wait for: PartStartError at once.
    """
    deadline = time.monotonic() + timeout
    detail = "the check never answered"
    while True:
        try:
            result = predicate()
        except Exception as exc:  # the check failing is the normal "not yet" case
            detail = f"{type(exc).__name__}: {exc}"
        else:
            if result:
                return result
            detail = f"the check answered {result!r}"
        if alive is not None and not alive():
            tail = log_tail(log_path) if log_path else ""
            where = f" (log: {log_path})" if log_path else ""
            raise PartStartError(
                f"{part} exited before it was ready{where}; last check: {detail}"
                + (f"\n--- last lines of the {part} log ---\n{tail}" if tail else "")
            )
        if time.monotonic() >= deadline:
            raise ReadinessTimeout(part, timeout, detail, log_tail(log_path) if log_path else "")
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))
