import pytest

from cdc_pipeline.batch_buffer import BatchBuffer, BufferMeta
from cdc_pipeline.errors import BatchFileError, ConfigError

META = BufferMeta("public.clientes", ("id", "nombre", "email"), ("id",))


def row(offset, op="c", nombre="Ana", email=None, partition="0"):
    return {"operacion": op, "id": str(offset), "nombre": nombre, "email": email, "timestamp": "2026-11-24 00:00:00+00",
            "_topic": "t", "_partition": partition, "_offset": str(offset), "_lsn": str(100 + offset)}


def test_prototype_columns_come_first_then_provenance(tmp_path):
    buffer = BatchBuffer(tmp_path)
    buffer.add(META, [row(1, email="")])
    assert buffer.path.read_text().splitlines() == [
        "operacion,id,nombre,email,timestamp,_topic,_partition,_offset,_lsn",
        'c,1,Ana,"",2026-11-24 00:00:00+00,t,0,1,101',
    ]


def test_adding_the_same_records_twice_keeps_them_once(tmp_path):
    buffer = BatchBuffer(tmp_path)
    buffer.add(META, [row(1), row(2)])
    _, count = buffer.add(META, [row(2), row(3)])
    assert count == 3
    _, frame = buffer.read()
    assert list(frame["_offset"]) == ["1", "2", "3"]
    assert frame["email"].tolist() == [None, None, None]


def test_archive_leaves_an_empty_buffer_and_keeps_a_bounded_archive(tmp_path):
    buffer = BatchBuffer(tmp_path)
    for i in range(3):
        buffer.add(META, [row(i)])
        buffer.archive(f"run{i}", keep=2)
    _, frame = buffer.read()
    assert frame.empty
    assert sorted(p.name for p in buffer.archive_dir.iterdir()) == ["buffer-run1.csv", "buffer-run2.csv"]


def test_a_reserved_column_name_is_refused(tmp_path):
    meta = BufferMeta("public.t", ("id", "timestamp"), ("id",))
    with pytest.raises(ConfigError, match="reserves"):
        BatchBuffer(tmp_path).add(meta, [])


def test_a_hand_edited_buffer_is_reported_not_guessed(tmp_path):
    buffer = BatchBuffer(tmp_path)
    buffer.add(META, [row(1)])
    buffer.path.write_text("a,b\n1,2\n")
    with pytest.raises(BatchFileError, match="edited by hand"):
        buffer.read()
