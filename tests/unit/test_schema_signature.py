"""Schema changes seen in the events: what counts as a change, and what is only another spelling."""

from cdc_pipeline.history import History
from cdc_pipeline.recovery.schema_signature import signature_change

SNAPSHOT = (("id", "int32", None, "SERIAL", "10", "0", False), ("v", "string", None, "TEXT", "2147483647", "0", True))
STREAMED = (("id", "int32", None, "INT4", "10", "0", False), ("v", "string", None, "TEXT", "2147483647", "0", True))
WIDER = (*STREAMED, ("added", "int32", None, "INT4", "10", "0", True))
RETYPED = (("id", "int32", None, "INT4", "10", "0", False), ("v", "string", None, "VARCHAR", "20", "0", True))


def test_the_first_batch_of_a_lineage_records_its_signature(tmp_path):
    runs = History.open(tmp_path / "runs.sqlite").runs
    assert signature_change(runs, {SNAPSHOT: ("id", "v")}, epoch=1) is None
    assert runs.get_setting("event_signature.1")


def test_a_serial_key_read_by_the_snapshot_and_then_streamed_is_not_a_change(tmp_path):
    runs = History.open(tmp_path / "runs.sqlite").runs
    signature_change(runs, {SNAPSHOT: ()}, epoch=1)
    assert signature_change(runs, {STREAMED: ()}, epoch=1) is None


def test_an_added_column_and_a_new_type_are_changes(tmp_path):
    runs = History.open(tmp_path / "runs.sqlite").runs
    signature_change(runs, {STREAMED: ()}, epoch=1)
    assert signature_change(runs, {WIDER: ()}, epoch=1).endswith("column added added")
    assert "column v changed type (TEXT(2147483647,0) -> VARCHAR(20,0))" in signature_change(runs, {RETYPED: ()}, epoch=1)


def test_a_change_inside_a_lineages_first_batch_is_caught(tmp_path):
    runs = History.open(tmp_path / "runs.sqlite").runs
    assert "column added added" in signature_change(runs, {STREAMED: (), WIDER: ()}, epoch=2)


def test_each_lineage_has_its_own_signature(tmp_path):
    runs = History.open(tmp_path / "runs.sqlite").runs
    signature_change(runs, {STREAMED: ()}, epoch=1)
    assert signature_change(runs, {WIDER: ()}, epoch=2) is None
