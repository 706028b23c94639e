"""bytea text (bytea_output=hex)."""

from __future__ import annotations

import binascii

import pytest

from cdc_pipeline.pgtext.binary import format_bytea_base64


@pytest.mark.parametrize(("raw", "expected"), [
    ("AP8Q", "\\x00ff10"),
    ("", "\\x"),
    ("zgM=", "\\xce03"),
])
def test_bytea_is_lowercase_hex(raw, expected):
    assert format_bytea_base64(raw) == expected


def test_invalid_base64_is_an_error():
    with pytest.raises(binascii.Error):
        format_bytea_base64("not base64!")
