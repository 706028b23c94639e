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


def test_the_real_refused_connection_keeps_connection_refused_and_the_fix():
    """The text a refused connection really gives (libpq's address repeated, its own hint): the reason stays at
    the length the dashboard and the status show (ONE_LINE), the address going first."""
    import pytest

    from cdc_pipeline.errors import SourceUnreachableError
    from cdc_pipeline.source.checks import SourceParams
    from devstack.ports import free_port

    with pytest.raises(SourceUnreachableError) as refused:
        SourceParams("127.0.0.1", free_port(), "postgres", "secret", "testdb").connect()
    message = str(refused.value)
    assert "Connection refused. Is it running (locally: ./stack status)?" in message, message
    assert "accepting TCP/IP" not in message and "?." not in message
    long_port_name = message.replace("testdb", "a_database_with_a_rather_long_name_as_production_ones_have")
    line = one_line(f"register_connector: {long_port_name}")
    assert len(line) <= 160 and "Connection refused" in line and line.endswith("connection cdc_postgres."), line
    assert line.startswith("register_connector: cannot connect to PostgreSQL at … Connection refused"), line


def test_addresses_go_before_the_middle_is_cut():
    text = ('consume: the broker at kafka-1.internal.example.com:9092 did not answer a metadata request for topic '
            '"pgserver1.public.clientes" within 15 s: Local: Broker transport failure. Is it running?')
    line = one_line(text, 120)
    assert len(line) <= 120 and "Broker transport failure. Is it running?" in line and line.startswith("consume:")
