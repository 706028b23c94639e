"""``bytea`` as PostgreSQL prints it under ``bytea_output=hex`` (the default): ``\\x`` and lowercase hex."""

from __future__ import annotations

import binascii

__all__ = ["format_bytea_base64"]


def format_bytea_base64(b64: str) -> str:
    """Base64 (Connect ``bytes`` through the JsonConverter) as ``\\x00ff10``; empty is ``\\x``."""
    return "\\x" + binascii.a2b_base64(b64, strict_mode=True).hex()
