"""verify compares every byte: rows equal by key but a header, a row order or a row's bytes that differ from
COPY are a difference, named by its first line; task logs never carry row contents."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from cdc_pipeline.history import History
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.commands.verify import SourceSnapshot, VerifyResult, compare, log_differences

COPY = b'id,name\n1,ana\n2,"b,c"\n3,\n'


@pytest.fixture
def pipe(tmp_path):
    layout = PipelineLayout(tmp_path / "t")
    layout.folder.mkdir(parents=True)
    return SimpleNamespace(layout=layout, history=History.open(layout.history), table_description=lambda: None)


def check(pipe, destiny: bytes) -> VerifyResult:
    pipe.layout.destiny.write_bytes(destiny)
    return compare(pipe, SourceSnapshot(1, 2, frozenset(), "0/1", COPY), ("id",))


def test_the_same_bytes_are_identical(pipe):
    assert check(pipe, COPY).result == "identical"


@pytest.mark.parametrize("destiny, problem", [
    (b'id,name\n2,"b,c"\n1,ana\n3,\n', "the bytes differ from line 2"),                  # order
    (b'id,name\r\n1,ana\r\n2,"b,c"\r\n3,\r\n', "the header differs"),                     # line endings
    (b'id,name\n1,"ana"\n2,"b,c"\n3,\n', "the bytes differ from line 2"),                 # quoting
    (b'"id","name"\n1,ana\n2,"b,c"\n3,\n', "the header differs"),
])
def test_rows_equal_by_key_but_other_bytes_are_a_difference_named_by_its_line(pipe, destiny, problem):
    result = check(pipe, destiny)
    assert result.result == "different" and problem in result.line(), result.line()


def test_a_differing_row_is_logged_by_its_key_only(pipe, caplog):
    result = check(pipe, b'id,name\n1,ana\n2,"b,c"\n3,secret\n')
    assert result.differing[0]["key"] == ["3"] and result.line().startswith("DIFFERENT: 1 of 3 keys differ")
    assert result.differing[0]["destiny"] == "3,secret\n"  # kept for the verification record
    with caplog.at_level(logging.ERROR):
        log_differences(result)
    assert "key ['3'] differs" in caplog.text and "secret" not in caplog.text
