"""The one wait loop with a deadline: poll a predicate until it answers, or raise WaitTimeout saying why.

Used by the pipeline (Kafka Connect client), the local stack launcher (devstack) and the tests, so
every wait in the project reports the same things: what it waited for, how long, the last answer
of the check and, when there is one, the end of the log of the process it waited on.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from cdc_pipeline.errors import WaitTimeout

T = TypeVar("T")

__all__ = ["WaitTimeout", "log_tail", "wait_until"]


def wait_until(
    predicate: Callable[[], T],
    *,
    what: str,
    timeout: float,
    interval: float = 0.5,
    log_path: Path | None = None,
    alive: Callable[[], bool] | None = None,
) -> T:
    """Call ``predicate`` every ``interval`` s until it returns something truthy, and return that.

    An exception from the predicate counts as "not yet" and its text goes into the error. When
    ``alive`` answers False (the process we wait on has exited) there is nothing left to wait for:
    WaitTimeout at once, with ``gave_up`` set. Past ``timeout`` s: WaitTimeout. The predicate is
    always called at least once, and once more at the deadline, so ``timeout=0`` means "check now".
    """
    began = time.monotonic()
    deadline = began + timeout
    last_answer = "the check never answered"
    while True:
        try:
            result = predicate()
        except Exception as exc:  # the check failing is the normal "not yet" case
            last_answer = f"{type(exc).__name__}: {exc}"
        else:
            if result:
                return result
            last_answer = f"the check answered {result!r}"
        gave_up = alive is not None and not alive()
        now = time.monotonic()
        if gave_up or now >= deadline:
            raise WaitTimeout(what, timeout, last_answer, log_tail(log_path) if log_path else "",
                              log_path=log_path, gave_up=gave_up, elapsed=now - began)
        time.sleep(max(0.0, min(interval, deadline - now)))


def log_tail(log_path: Path | str, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ("" when there is none); reads at most its last 64 KiB."""
    try:
        with open(log_path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(collapse_repeats(text.splitlines())[-lines:])


_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[ T][\d:.,]+(?: ?(?:[A-Z]{2,5}|[+-]\d{2}:?\d{2}|Z))?\s*(?:\[\d+\]\s*)?")


def collapse_repeats(lines: list[str]) -> list[str]:
    """Runs of lines that differ only in their leading time stamp and pid (a server refusing the same way every
    half second) as their first line and a count, so a log tail shows forty seconds of the same refusal as one."""
    out: list[str] = []
    run_key, repeats = None, 0
    for line in lines:
        key = _STAMP.sub("", line)
        if key == run_key and key.strip():
            repeats += 1
            continue
        if repeats:
            out.append(f"    (the same line {repeats} more time{'s' if repeats > 1 else ''})")
        out.append(line)
        run_key, repeats = key, 0
    if repeats:
        out.append(f"    (the same line {repeats} more time{'s' if repeats > 1 else ''})")
    return out
