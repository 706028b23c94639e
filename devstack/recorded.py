"""The settings ``./stack up`` ran with, recorded so that later commands in any shell find the same stack.

One JSON file at a fixed place, ``<repo>/.stack/settings.json`` (git- and docker-ignored with the rest of
``.stack/``), wherever ``CDC_STACK_HOME`` points: the launcher must find it before it knows the home.
It holds the ``CDC_*`` values that were chosen rather than defaulted: the ones set in the environment
when the stack was started (or recorded earlier) and the generated PostgreSQL password. Defaults are
not recorded, so a value derived from another (``CDC_DATA_DIR`` from ``CDC_STACK_HOME``) still follows it.

Precedence when loading: explicit environment > recorded > defaults. ``./stack reset`` deletes the file.
The file holds a password: it is written atomically with mode 0600.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from cdc_pipeline.atomic import atomic_write_text
from cdc_pipeline.layout import RECORDED_SETTINGS
from devstack.errors import SettingsError
from devstack.settings import SETTINGS, StackSettings

log = logging.getLogger(__name__)

RECORD_PATH = RECORDED_SETTINGS  # one home: cdc_pipeline.layout, which the CLI reads it through
_NAMES = frozenset(s.env for s in SETTINGS)


@dataclass(frozen=True)
class RecordedSettings:
    """What the record file holds (empty ``values`` when there is no file)."""

    path: Path
    values: dict[str, str] = field(default_factory=dict)
    recorded_by: str = ""
    recorded_at: str = ""

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def describe(self) -> str:
        """One line for ``./stack status``: which file the settings came from."""
        if not self.values:
            return f"settings: environment and defaults (nothing recorded in {self.path})"
        names = ", ".join(sorted(self.values))
        return (f"settings: {self.path} (recorded by {self.recorded_by or '?'} at {self.recorded_at or '?'}: "
                f"{names}); the environment wins over it")


def read_recorded(path: Path = RECORD_PATH) -> RecordedSettings:
    """The recorded settings, or an empty record when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return RecordedSettings(path)
    try:
        document = json.loads(text)
        values = document["settings"]
        if not isinstance(values, dict):
            raise TypeError("'settings' is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise SettingsError(f"the recorded settings file {path} is not what ./stack writes ({exc}); delete it "
                            f"(./stack reset does, with all local state) or fix it by hand") from exc
    unknown = sorted(set(values) - _NAMES)
    if unknown:
        log.warning("ignoring unknown setting(s) %s recorded in %s", unknown, path)
    return RecordedSettings(path, {k: str(v) for k, v in values.items() if k in _NAMES},
                            str(document.get("recorded_by", "")), str(document.get("recorded_at", "")))


def chosen_values(settings: StackSettings, env: Mapping[str, str], recorded: RecordedSettings) -> dict[str, str]:
    """The values to record: every CDC_* set in ``env`` or recorded before, as ``settings`` resolved them,
    and the passwords of PostgreSQL and Kafka Connect (generated when they came from nowhere)."""
    resolved = settings.as_env()
    chosen = {name for name in _NAMES if env.get(name) or recorded.values.get(name)}
    chosen.update(("CDC_PG_PASSWORD", "CDC_CAPTURE_PASSWORD", "CDC_CONNECT_PASSWORD"))
    return {name: resolved[name] for name in sorted(chosen)}


def record_settings(settings: StackSettings, env: Mapping[str, str], recorded: RecordedSettings,
                    command: str) -> RecordedSettings:
    """Write the record (atomically, 0600) when it would change; return what is recorded now."""
    values = chosen_values(settings, env, recorded)
    if values == recorded.values:
        return recorded
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    document = {
        "about": "Written by ./stack; the CDC_* values the local stack runs with. The environment wins over "
                 "these; ./stack reset deletes this file. See docs/local-stack.md.",
        "recorded_by": command,
        "recorded_at": now,
        "settings": values,
    }
    atomic_write_text(recorded.path, json.dumps(document, indent=2, sort_keys=False) + "\n")
    changed = sorted(k for k in values if values[k] != recorded.values.get(k))
    log.info("recorded %s in %s", ", ".join(changed), recorded.path)
    return RecordedSettings(recorded.path, values, command, now)


def forget_recorded(path: Path = RECORD_PATH) -> bool:
    """Delete the record; True if there was one."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
