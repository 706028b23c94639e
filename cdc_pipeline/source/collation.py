"""PostgreSQL's order of text under a deterministic ICU collation, from the same ICU library (PyICU).

PostgreSQL compares two strings under such a collation with ICU's collator for the collation's locale and, when
the collator calls them equal, by their bytes (strcmp): the order ``ORDER BY`` gives, which destiny.csv follows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable


@functools.lru_cache(maxsize=None)
def icu_collator(locale: str):
    """ICU's collator for a PostgreSQL ICU locale ('und', 'en-US', 'en-u-kn-true'), opened as PostgreSQL opens it
    (ucol_open on the locale string). PyICU links the system's ICU: on Debian the library PostgreSQL links too."""
    import icu  # PyICU: imported only for a table keyed under an ICU collation

    return icu.Collator.createInstance(icu.Locale(locale))


def icu_version() -> str:
    import icu

    return icu.ICU_VERSION


def collated_key(locale: str) -> Callable[[str], bytes]:
    """Bytes whose order is ORDER BY's under the collation: ICU's sort key (NUL-terminated, no other NUL), then
    the UTF-8 bytes and a NUL (the tie-break). Prefix-free, as every key component must be."""
    sort_key = icu_collator(locale).getSortKey

    def key(text: str) -> bytes:
        if "\x00" in text:
            raise ValueError("text holds a NUL character, which PostgreSQL text never does")
        return sort_key(text) + text.encode("utf-8") + b"\x00"

    return key
