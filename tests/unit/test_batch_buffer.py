"""buffer.csv: layout, deduplication by record identity, clearing, and refusals."""

import pytest

from cdc_pipeline.buffer.batch_buffer import BatchBuffer, BufferMeta
from cdc_pipeline.errors import BatchFileError, ConfigError
from cdc_pipeline.layout import PipelineLayout

META = BufferMeta("public.clientes", ("id", "nombre", "email"), ("id",), epoch=2)


def row(offset, op="c", nombre="Ana", email=None, partition="0", incarnation="1"):
    return {"operacion": op, "id": str(offset), "nombre": nombre, "email": email, "timestamp": "2026-11-24 00:00:00+00",
            "_topic": "t", "_partition": partition, "_offset": str(offset), "_lsn": str(100 + offset),
            "_incarnation": incarnation, "_txid": "700"}


def buffer_in(tmp_path) -> BatchBuffer:
    return BatchBuffer(PipelineLayout(tmp_path))


def test_prototype_columns_come_first_then_provenance(tmp_path):
    buffer = buffer_in(tmp_path)
    buffer.add(META, [row(1, email="")])
    assert buffer.path.read_text().splitlines() == [
        "operacion,id,nombre,email,timestamp,_topic,_partition,_offset,_lsn,_incarnation,_txid",
        'c,1,Ana,"",2026-11-24 00:00:00+00,t,0,1,101,1,700',
    ]
    assert buffer.read_meta() == META


def test_adding_the_same_records_twice_keeps_them_once(tmp_path):
    buffer = buffer_in(tmp_path)
    buffer.add(META, [row(1), row(2)])
    assert buffer.add(META, [row(2), row(3)]) == 3
    _, frame = buffer.read()
    assert list(frame["_offset"]) == ["1", "2", "3"]
    assert frame["email"].tolist() == [None, None, None]


def test_the_same_offset_of_another_incarnation_is_another_record(tmp_path):
    buffer = buffer_in(tmp_path)
    buffer.add(META, [row(1, incarnation="1")])
    assert buffer.add(META, [row(1, incarnation="2")]) == 2


def test_clear_leaves_an_empty_buffer_and_keeps_a_bounded_archive(tmp_path):
    buffer = buffer_in(tmp_path)
    for i in range(3):
        buffer.add(META, [row(i)])
        buffer.clear(archive_as=f"run{i}", keep=2)
    _, frame = buffer.read()
    assert frame.empty
    assert sorted(p.name for p in buffer.layout.archive_dir.iterdir()) == ["buffer-run1.csv", "buffer-run2.csv"]


def test_unmerged_events_of_another_layout_are_not_mixed_with_new_ones(tmp_path):
    buffer = buffer_in(tmp_path)
    buffer.add(META, [row(1)])
    other = BufferMeta("public.clientes", ("id", "nombre", "email", "added"), ("id",), epoch=2)
    with pytest.raises(BatchFileError, match="Merge or discard the buffer first"):
        buffer.add(other, [row(2)])


def test_a_reserved_column_name_is_refused(tmp_path):
    meta = BufferMeta("public.t", ("id", "timestamp"), ("id",))
    with pytest.raises(ConfigError, match="reserves"):
        buffer_in(tmp_path).add(meta, [])


def test_a_hand_edited_buffer_is_reported_not_guessed(tmp_path):
    buffer = buffer_in(tmp_path)
    buffer.add(META, [row(1)])
    buffer.path.write_text("a,b\n1,2\n")
    with pytest.raises(BatchFileError, match="edited by hand"):
        buffer.read()
