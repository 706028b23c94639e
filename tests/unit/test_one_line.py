"""A long error keeps its reason and its fix: the middle (a connection string, a path) is what is cut."""

from cdc_pipeline.formatting import one_line

CONNECTION_ERROR = (
    "register_connector: cannot connect to PostgreSQL at host=127.0.0.1 port=46532 dbname=testdb user=postgres "
    "(connection to server at \"127.0.0.1\", port 46532 failed: FATAL: the database system is shutting down). "
    "Is it running? Locally: ./stack status")


def test_a_long_error_keeps_what_failed_and_why_and_the_fix():
    line = one_line(CONNECTION_ERROR, 160)
    assert len(line) <= 160
    assert line.startswith("register_connector: cannot connect to PostgreSQL")
    assert line.endswith("FATAL: the database system is shutting down). Is it running? Locally: ./stack status")
    assert " … " in line


def test_short_text_is_folded_to_one_line_and_nothing_is_none():
    assert one_line("a\n  b\tc") == "a b c"
    assert one_line(None) is None and one_line("") is None
    assert one_line(0) == "0"
