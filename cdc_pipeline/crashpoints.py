"""Deterministic crash injection for the crash-matrix tests; inert unless a test arms it.

The pipeline calls ``crashpoint("name")`` at each boundary that matters for durability (after the buffer
is written, after the offsets are committed, in the middle of writing a state file, ...). A test arms one
point by starting the task process with ``CDC_CRASH_AT=<name>`` (optionally ``<name>:<n>`` to crash on
the n-th time the point is reached); the process then kills itself with SIGKILL there, exactly as a power
cut or the OOM killer would: no finally blocks, no atexit, no flush.
"""

from __future__ import annotations

import os
import signal

ENV = "CDC_CRASH_AT"

# Every point the code defines, so a test cannot arm a name that is never reached.
POINTS = frozenset(
    {
        "consume.after_buffer_write",      # buffer.csv durable, run history not yet told
        "consume.after_history_buffered",  # history has the range, offsets not committed
        "consume.after_commit",            # offsets committed, history not yet marked committed
        "merge.mid_state_write",           # half of the new state generation written
        "merge.before_live_switch",        # new generation complete, live pointer not moved
        "merge.after_live_switch",         # live pointer moved, destiny.csv not yet relinked
        "merge.before_buffer_archive",     # state and destiny.csv done, buffer not archived
        "rebuild.before_swap",             # rebuilt state complete, not yet live
        "whole_rebuild.stopped",           # connector stopped for a whole rebuild, offsets not yet deleted
        "whole_rebuild.before_resume",     # offsets deleted, every table set aside, connector still stopped
        "whole_rebuild.resumed",           # connector resumed, the rebuild not yet recorded as resumed
        "confirm_snapshot.stopped",        # connector stopped to confirm a table's snapshot, not yet resumed
    }
)

_hits: dict[str, int] = {}


def crashpoint(name: str) -> None:
    armed = os.environ.get(ENV)
    if not armed:
        return
    if name not in POINTS:
        raise ValueError(f"unknown crash point {name!r}; known: {sorted(POINTS)}")
    target, _, nth = armed.partition(":")
    if target != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
