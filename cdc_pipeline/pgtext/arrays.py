"""One-dimensional arrays as PostgreSQL's ``array_out`` prints them: ``{a,NULL,"b c"}``.

An element is double-quoted when it is empty, is ``NULL`` in any case, or contains ``{`` ``}`` ``,`` ``"``
``\\`` or white space (space, tab, LF, CR, VT, FF); inside quotes ``"`` and ``\\`` get a backslash. A NULL
element prints ``NULL``; an empty array ``{}``. Element text is the element type's own text.

Debezium flattens a multi-dimensional array into garbage (``[null, null]`` for integers, Java's
``[Ljava.lang.String;@1a2b`` for text) and drops a non-default lower bound (``[0:1]={x,y}`` arrives as
``["x","y"]``); the text form is caught here, the others cannot be told apart from real values.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["array_converter", "format_array"]

_NEEDS_QUOTES = re.compile(r'[{}",\\ \t\n\r\v\f]')
_ESCAPE = re.compile(r'(["\\])')
_JAVA_ARRAY = re.compile(r"\[L[\w.$]+;@[0-9a-f]+")


def _element(text: str) -> str:
    if text == "" or _NEEDS_QUOTES.search(text) is not None or text.lower() == "null":
        return '"' + _ESCAPE.sub(r"\\\1", text) + '"'
    return text


def format_array(texts: list[str | None]) -> str:
    """``{...}`` from the elements' PostgreSQL texts (None for a NULL element)."""
    return "{" + ",".join("NULL" if text is None else _element(text) for text in texts) + "}"


def array_converter(element: Callable[[Any], str] | None, *, text_elements: bool) -> Callable[[list], str]:
    """A converter for a JSON array whose elements ``element`` renders (None: the JSON string is the text).

    ``text_elements``: the elements arrive as strings, so a flattened multi-dimensional array shows up as
    Java's array toString, which is refused instead of written.
    """

    def convert(values: list) -> str:
        if type(values) is not list:
            raise ValueError(f"expected a JSON array, got {values!r}")
        texts = []
        for value in values:
            if value is None:
                texts.append(None)
                continue
            if text_elements and type(value) is str and value.startswith("[L") and _JAVA_ARRAY.fullmatch(value):
                raise ValueError(
                    "a multi-dimensional array arrived flattened (Debezium prints each sub-array as "
                    f"{value!r}): only one-dimensional arrays can be captured"
                )
            texts.append(value if element is None else element(value))
        return format_array(texts)

    return convert
