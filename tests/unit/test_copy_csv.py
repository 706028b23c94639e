"""COPY CSV writer and reader. Expected bytes were produced by PostgreSQL 15's own
``COPY (SELECT ...) TO STDOUT WITH (FORMAT csv, HEADER)`` on a scratch cluster."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from cdc_pipeline.pgtext.copy_csv import (
    encode_field,
    format_dataframe,
    format_row,
    format_rows,
    read_copy_csv,
    write_rows,
)
from cdc_pipeline.errors import BatchFileError

# CREATE TABLE t1("a,b" text, "q""x" text, c text);
# INSERT INTO t1 VALUES ('\.', '', NULL), (E'x\ry', E'a\nb', 'ñ ,'), ('"', ' ', 'back\slash');
T1_HEADER = ["a,b", 'q"x', "c"]
T1_ROWS = [["\\.", "", None], ["x\ry", "a\nb", "ñ ,"], ['"', " ", "back\\slash"]]
T1_COPY = b'"a,b","q""x",c\n\\.,"",\n"x\ry","a\nb","\xc3\xb1 ,"\n"""", ,back\\slash\n'

# CREATE TABLE t2(x text); INSERT INTO t2 VALUES ('\.'), (''), (NULL), ('a');
T2_COPY = b'x\n"\\."\n""\n\na\n'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        ("", '""'),
        ("plain", "plain"),
        (" lead and trail ", " lead and trail "),
        ("a,b", '"a,b"'),
        ('say "hi"', '"say ""hi"""'),
        ("line1\nline2", '"line1\nline2"'),
        ("cr\rhere", '"cr\rhere"'),
        ("tab\there", "tab\there"),
        ("back\\slash", "back\\slash"),
        ("\\N", "\\N"),
        ("ñañ", "ñañ"),
        ("\\.", "\\."),
    ],
)
def test_encode_field_follows_copy_quoting_rule(value, expected):
    assert encode_field(value) == expected


def test_encode_field_quotes_end_of_data_marker_only_in_single_column():
    assert encode_field("\\.", single_column=True) == '"\\."'
    assert encode_field("\\.x", single_column=True) == "\\.x"


def test_format_rows_matches_postgres_copy_bytes():
    assert format_rows(T1_HEADER, T1_ROWS).encode() == T1_COPY


def test_single_column_table_matches_postgres_copy_bytes():
    assert format_rows(["x"], [["\\."], [""], [None], ["a"]]).encode() == T2_COPY


def test_format_row_ends_with_bare_newline():
    assert format_row(["1", None, "x"]) == "1,,x\n"


def test_format_rows_rejects_ragged_row():
    with pytest.raises(BatchFileError, match="row 1 has 1 values but the header has 2"):
        format_rows(["a", "b"], [["only one"]])


def test_header_only_file_round_trips(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"k1,k2\n")
    frame = read_copy_csv(path)
    assert list(frame.columns) == ["k1", "k2"]
    assert len(frame) == 0
    assert format_dataframe(frame).encode() == b"k1,k2\n"


def test_read_distinguishes_null_from_empty_and_keeps_special_characters(tmp_path):
    path = tmp_path / "t1.csv"
    path.write_bytes(T1_COPY)
    frame = read_copy_csv(path)
    assert list(frame.columns) == T1_HEADER
    assert all(dtype == object for dtype in frame.dtypes)
    assert frame.values.tolist() == T1_ROWS
    assert frame.iloc[0, 2] is None


def test_read_single_column_keeps_null_rows(tmp_path):
    path = tmp_path / "t2.csv"
    path.write_bytes(T2_COPY)
    assert read_copy_csv(path)["x"].tolist() == ["\\.", "", None, "a"]


def test_read_rejects_empty_file(tmp_path):
    path = tmp_path / "nothing.csv"
    path.write_bytes(b"")
    with pytest.raises(BatchFileError, match="is empty"):
        read_copy_csv(path)


def test_read_rejects_file_with_wrong_field_count(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"a,b\n1,2,3\n")
    with pytest.raises(BatchFileError):
        read_copy_csv(path)


def test_write_rows_streams_same_bytes_as_format_rows(tmp_path):
    path = tmp_path / "out.csv"
    rows = [[str(i), None if i % 3 else "", f"v,{i}"] for i in range(20000)]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        write_rows(handle, ["a", "b", "c"], rows)
    assert path.read_bytes() == format_rows(["a", "b", "c"], rows).encode()


def test_format_dataframe_matches_row_writer():
    frame = pd.DataFrame({"a,b": ["\\.", "x\ry", '"'], 'q"x': ["", "a\nb", " "], "c": [None, "ñ ,", "back\\slash"]}, dtype=object)
    assert format_dataframe(frame).encode() == T1_COPY


def test_format_dataframe_single_column_quotes_end_of_data_marker():
    frame = pd.DataFrame({"x": ["\\.", "", None, "a"]}, dtype=object)
    assert format_dataframe(frame).encode() == T2_COPY


def test_format_dataframe_without_any_quoting_needed():
    frame = pd.DataFrame({"a": ["1", "2"], "b": [None, "x"]}, dtype=object)
    assert format_dataframe(frame) == "a,b\n1,\n2,x\n"


def test_format_dataframe_rejects_nan_instead_of_writing_null():
    frame = pd.DataFrame({"a": ["1", float("nan")]}, dtype=object)
    with pytest.raises(BatchFileError, match="column 'a' holds a value that is not str or None"):
        format_dataframe(frame)


def _random_value(rng: random.Random) -> str | None:
    if rng.random() < 0.1:
        return None
    alphabet = ["a", "Z", "0", ",", '"', "\n", "\r", " ", "\\", ".", "ñ", "€", "😀", "\t", ";"]
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))


@pytest.mark.parametrize("width", [1, 2, 5])
def test_round_trip_random_values(tmp_path, width):
    rng = random.Random(width)
    header = [f"c{i}" for i in range(width)]
    rows = [[_random_value(rng) for _ in range(width)] for _ in range(3000)]
    path = tmp_path / "rt.csv"
    text = format_rows(header, rows)
    path.write_bytes(text.encode())
    frame = read_copy_csv(path)
    assert frame.values.tolist() == rows
    assert format_dataframe(frame) == text
