"""How values are written for people, one way everywhere (task logs, the dashboard, the command line): LSNs as
PostgreSQL does (``X/Y``), sizes, ages, times, offset ranges (``p0 [12, 40)``), positions (``p0@12``), one-line texts.

Pure functions of their arguments (``now`` is passed in), so pages built from the same history look the same.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

ONE_LINE = 160  # characters of an error or a note shown before it is expanded
# The services an outage names (runs.sqlite's outages.service), as a sentence calls them.
SERVICE_NAMES = {"postgres": "PostgreSQL", "connect": "Kafka Connect", "broker": "the Kafka broker"}


def lsn_text(lsn: int | None) -> str | None:
    """PostgreSQL's notation for a WAL position: the high and low 32 bits in hex (``16/B374D848``)."""
    if lsn is None:
        return None
    return f"{int(lsn) >> 32:X}/{int(lsn) & 0xFFFFFFFF:X}"


def parse_time(iso: str | None) -> datetime | None:
    if not iso:
        return None
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def time_text(iso: str | None, now: datetime) -> str:
    """``12:48:03`` today, ``11-24 12:48`` another day (UTC, as the run history stores it)."""
    moment = parse_time(iso)
    if moment is None:
        return "—"
    moment = moment.astimezone(UTC)
    if moment.date() == now.astimezone(UTC).date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%m-%d %H:%M")


def hhmm(iso: str | None) -> str:
    moment = parse_time(iso)
    return moment.astimezone(UTC).strftime("%H:%M") if moment else "—"


def hhmm_utc(iso: str | None) -> str:
    """``12:53 UTC``: a time of day in a sentence, where the reader has no column heading to say the zone."""
    return f"{hhmm(iso)} UTC"


def service_name(service: str) -> str:
    return SERVICE_NAMES.get(service, service)


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 86400} days"


def ago_text(iso: str | None, now: datetime) -> str:
    moment = parse_time(iso)
    if moment is None:
        return "never"
    return f"{age_text((now - moment).total_seconds())} ago"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    return age_text(seconds)


def size_text(count: int | None) -> str:
    if count is None:
        return "—"
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" or value >= 100 else f"{value:.1f} {unit}"
        value /= 1024
    return str(count)


def count_text(count: int | None) -> str:
    return "—" if count is None else f"{count:,}"


def plural(count: int, word: str) -> str:
    """``1 row``, ``2 rows``, ``1,234 rows``."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def folded(text: object) -> str:
    """Whitespace (newlines too) folded to single spaces, nothing cut: a multi-line error as one log line."""
    return " ".join(str(text).split())


def one_line(text: object, limit: int = ONE_LINE) -> str | None:
    """Whitespace folded to single spaces; a longer text keeps its start and its end, the middle cut to `` … ``.

    An error names what failed first and why, and the fix, last; what lies between (a connection string, a
    path) is what can go: "register_connector: cannot connect … … FATAL: the database system is shutting down".
    """
    if text is None or text == "":
        return None
    flat = folded(text)
    if len(flat) <= limit:
        return flat
    flat = _without_addresses(flat, limit)
    if len(flat) <= limit:
        return flat
    head = max(1, limit * 2 // 5)
    tail = max(1, limit - head - 3)
    return f"{flat[:head].rstrip()} … {flat[-tail:].lstrip()}"


# What an error carries that a reader can do without: quoted hosts, key=value pairs of a connection string,
# addresses with digits (user@host:port/db, 10.0.0.5:9092, /path/to/file1).
_ADDRESS = re.compile(r'"[^"]*"|\b\w+=\S+|(?=\S*\d)\S*[@/:]\S*')


def _without_addresses(flat: str, limit: int) -> str:
    """The longest addresses replaced by ``…`` until the text fits (the reason and the fix stay whole)."""
    spans = sorted(((m.start(), m.end()) for m in _ADDRESS.finditer(flat) if m.end() - m.start() > 3),
                   key=lambda span: span[0] - span[1])
    cut: list[tuple[int, int]] = []
    length = len(flat)
    for start, end in spans:
        if length <= limit:
            break
        cut.append((start, end))
        length -= end - start - 1
    for start, end in sorted(cut, reverse=True):
        flat = flat[:start] + "…" + flat[end:]
    return re.sub(r"…(?:[ ,]*…)+", "…", flat)


def notes_list(raw: Any) -> list[str]:
    """The run's notes as sentences: the history stores a JSON list; anything else is shown as it is."""
    if not raw:
        return []
    if isinstance(raw, list):
        return [str(note) for note in raw]
    try:
        parsed = json.loads(raw)
    except (TypeError, ValueError):
        return [str(raw)]
    if isinstance(parsed, list):
        return [str(note) for note in parsed]
    return [str(parsed)]


def describe_ranges(ranges: dict[int, tuple[int, int]]) -> str:
    """Offset ranges written one way everywhere: ``p0 [12, 40)``."""
    return ", ".join(f"p{p} [{start}, {end})" for p, (start, end) in sorted(ranges.items())) or "no partitions"


def describe_moved(ranges: dict[int, tuple[int, int]]) -> str:
    """The partitions a batch moved, and how many it did not: ``p3 [43, 72) · 3 partitions unchanged``."""
    moved = {p: r for p, r in ranges.items() if r[1] > r[0]}
    still = len(ranges) - len(moved)
    parts = [describe_ranges(moved)] if moved else []
    if still:
        parts.append(f"{plural(still, 'partition')} unchanged")
    return " · ".join(parts) or "no partitions"


def describe_positions(offsets: dict[int, int | None]) -> str:
    """Where reading stands or starts, per partition: ``p0@12, p1@3``."""
    return ", ".join(f"p{p}@{'?' if o is None else o}" for p, o in sorted(offsets.items())) or "no partitions"


def describe_counts(counts: dict[str, int]) -> str:
    """A batch's events by operation, and what it skipped: ``10 c · 40 u · 10 d (skipped: 10 tombstones)``."""
    shown = [f"{counts[name]} {label}" for name, label in (
        ("creates", "c"), ("updates", "u"), ("deletes", "d"), ("reads", "r"), ("truncates", "t")) if counts.get(name)]
    skipped = [f"{counts[name]} {name.replace('_', ' ')}" for name in (
        "tombstones", "other_tables", "dead_lettered", "before_start") if counts.get(name)]
    return " · ".join(shown or ["no changes"]) + (f" (skipped: {', '.join(skipped)})" if skipped else "")


def describe_resume_point(point) -> str:
    """A run history resume point: ``incarnation 2, p0@12, p1@3``."""
    if point is None:
        return "none yet"
    where = "the next topic" if point.incarnation is None else f"incarnation {point.incarnation}"
    return f"{where}, {describe_positions(point.ends)}"


def describe_verify(verify: dict[str, Any]) -> tuple[str, str]:
    """A verification's counts (" · 1,200 rows compared · 3 differ") and its tone (ok, bad or info)."""
    text = ""
    if verify.get("compared") is not None:
        text += f" · {plural(verify['compared'], 'row')} compared"
    if verify.get("differing"):
        text += f" · {verify['differing']:,} differ"
    return text, {"identical": "ok", "different": "bad", "error": "bad"}.get(verify.get("result") or "", "info")
