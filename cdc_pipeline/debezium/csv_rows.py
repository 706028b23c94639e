"""A row plan compiled once into one function: a Debezium row object straight to its COPY CSV fields.

buffer.csv gets up to hundreds of thousands of rows a batch. Converting each value through a generic loop
over (column, converter) pairs, then quoting each field in a second loop, cost about 6 µs a row of the
21-column samples, a third of the whole decode. A plan knows its columns, their converters and which
converters never produce text that needs quoting (``csv_plain``), so it is compiled once per schema into
straight-line code, the way ``dataclasses`` builds ``__init__``: per column one dict lookup, one conversion
and, only for text that may need it, one quoting check. Column names enter the code as ``repr()`` literals
and converters as names bound in its namespace, never as source text.

The fields follow PostgreSQL's COPY CSV rules (``cdc_pipeline.pgtext.copy_csv``) for a file of more than one column
(the buffer always has more): NULL is the empty field, the empty string is ``""``, a value holding a comma,
quote, CR or LF is quoted with its quotes doubled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from cdc_pipeline.pgtext.scalars import format_bool, format_int
from cdc_pipeline.pgtext.types import Converter, csv_plain

__all__ = ["compile_row_renderer", "csv_field"]

RowRenderer = Callable[[dict], str]

# The characters that force quoting: the same set as cdc_pipeline.pgtext.copy_csv (kept apart so that decoding does
# not import pandas; tests/unit/test_debezium_csv_rows.py checks both write the same bytes).
_needs_quote = re.compile(r'[,"\n\r]').search


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def csv_field(value: Any) -> str:
    """One value (PostgreSQL text, or None for NULL) as a COPY CSV field of a many-column file. Anything else
    (a JSON number where a string column was expected) is written as its ``str()``, as the buffer always did."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return text if text and _needs_quote(text) is None else _quote(text)


def compile_row_renderer(columns: Sequence[str], converters: Sequence[Converter | None]) -> RowRenderer:
    """``render(row) -> str``: the comma-joined fields of ``columns`` read from the row object ``row``.

    It raises whatever a converter raises (or TypeError for a value of an unexpected JSON type); the caller
    then takes the generic, per-value path, which reports the column and value or writes what it always did.
    """
    namespace: dict[str, Any] = {"search": _needs_quote, "quote": _quote}
    lines = ["def render(row):", "    get = row.get"]
    for index, (column, convert) in enumerate(zip(columns, converters, strict=True)):
        field = f"f{index}"
        lines.append(f"    v = get({column!r})")
        if convert is None:  # the JSON string is the text: quote when needed
            lines.append(f"    {field} = '' if v is None else v if v and search(v) is None else quote(v)")
            continue
        namespace[f"c{index}"] = convert
        if convert is format_int:  # its common case inlined; anything else goes through it (and fails there)
            lines.append(f"    {field} = '' if v is None else str(v) if type(v) is int else c{index}(v)")
        elif convert is format_bool:
            lines.append(f"    {field} = '' if v is None else 't' if v is True else 'f' if v is False else c{index}(v)")
        elif csv_plain(convert):
            lines.append(f"    {field} = '' if v is None else c{index}(v)")
        else:
            lines += ["    if v is None:", f"        {field} = ''", "    else:",
                      f"        t = c{index}(v)",
                      f"        {field} = t if t and search(t) is None else quote(t)"]
    joined = ",".join("{f%d}" % index for index in range(len(columns)))
    lines.append(f"    return f'{joined}'")
    exec("\n".join(lines), namespace)  # noqa: S102 - generated from the plan only; see the module docstring
    return namespace["render"]
