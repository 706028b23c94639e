"""PostgreSQL's text of a one-dimensional array (``array_out``) back into its elements' texts.

The inverse of :mod:`cdc_pipeline.pgtext.arrays`: ``{a,NULL,"","NULL","q\\"uote"}`` -> ['a', None, '', 'NULL',
'q"uote']. An element is quoted when it is empty, spells NULL, or holds ``{ } , " \\`` or white space; inside
quotes ``"`` and ``\\`` are backslash-escaped; an unquoted NULL is a null element. The pipeline only carries
one-dimensional arrays with lower bound 1 (docs/types.md), so anything else is refused, never guessed.
"""

from __future__ import annotations


def parse_array(text: str) -> list[str | None]:
    """The elements of ``text``; ValueError when it is not a one-dimensional array's text."""
    if text.startswith("["):
        raise ValueError("an array with explicit bounds (lower bound other than 1) is not supported")
    if len(text) < 2 or text[0] != "{" or text[-1] != "}":
        raise ValueError("not an array's text (expected {...})")
    if text == "{}":
        return []
    elements: list[str | None] = []
    i, end = 1, len(text) - 1
    while True:
        if i >= end:
            raise ValueError("an array's text ends after a comma")
        if text[i] == "{":
            raise ValueError("a multi-dimensional array is not supported")
        if text[i] == '"':
            i, value = _quoted(text, i + 1)
            elements.append(value)
        else:
            stop = i
            while stop < end and text[stop] != ",":
                if text[stop] in '{}"\\':
                    raise ValueError(f"an unquoted element holds {text[stop]!r}")
                stop += 1
            raw = text[i:stop]
            elements.append(None if raw.upper() == "NULL" else raw)
            i = stop
        if i == end:
            return elements
        if text[i] != ",":
            raise ValueError(f"expected a comma at position {i}")
        i += 1


def _quoted(text: str, i: int) -> tuple[int, str]:
    """(position after the closing quote, the unescaped element) for an element that starts at ``i``."""
    parts: list[str] = []
    start = i
    while True:
        if i >= len(text):
            raise ValueError("a quoted element is not closed")
        char = text[i]
        if char == "\\":
            parts.append(text[start:i])
            parts.append(text[i + 1:i + 2])
            i += 2
            start = i
        elif char == '"':
            parts.append(text[start:i])
            return i + 1, "".join(parts)
        else:
            i += 1
