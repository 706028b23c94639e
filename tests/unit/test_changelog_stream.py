"""The change log's bounded reader: files in merge order, position order within a merge, copies dropped."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from cdc_pipeline.changelog import ChangeLog, Deduplicator, event_millis, position_order
from cdc_pipeline.layout import PipelineLayout


def events(rows, *, day="2026-11-24") -> pa.Table:
    """rows of (partition, offset, lsn, id)."""
    return pa.table({
        "operacion": ["c"] * len(rows), "id": [str(r[3]) for r in rows],
        "timestamp": [f"{day} 10:00:0{i % 10}.{i:03d}+00" for i in range(len(rows))], "_topic": ["t"] * len(rows),
        "_partition": pa.array([r[0] for r in rows], pa.int32()), "_offset": pa.array([r[1] for r in rows], pa.int64()),
        "_lsn": pa.array([r[2] for r in rows], pa.int64()), "_incarnation": pa.array([1] * len(rows), pa.int32()),
        "_txid": pa.array([None] * len(rows), pa.int64()),
    })


def test_position_order_keeps_each_partitions_offsets_and_interleaves_by_lsn():
    # Partition 0's offset 1 has a lower LSN than offset 0 (a transaction straddling the snapshot): it stays after it.
    table = events([(1, 0, 20, "b0"), (0, 0, 10, "a0"), (0, 1, 5, "a1"), (1, 1, 25, "b1"), (0, 2, 30, "a2")])
    ordered = table.take(position_order(table))
    assert ordered["id"].to_pylist() == ["a0", "a1", "b0", "b1", "a2"]


def test_the_deduplicator_drops_copies_across_merges_by_offset():
    dedup = Deduplicator()
    first = dedup(events([(0, 0, 10, "a"), (0, 1, 11, "b"), (1, 0, 12, "c")]))
    again = dedup(events([(0, 1, 11, "b"), (0, 2, 13, "d"), (1, 0, 12, "c"), (1, 1, 14, "e")]))
    assert first["id"].to_pylist() == ["a", "b", "c"]
    assert again["id"].to_pylist() == ["d", "e"]


def test_stream_reads_one_merge_at_a_time_in_merge_order_across_days(tmp_path):
    log = ChangeLog(PipelineLayout(tmp_path))
    log.append(events([(0, 0, 10, 1), (0, 1, 11, 2)], day="2026-11-25"), epoch=3, generation="lineage-0001/gen-000002")
    # A merge whose events fell on two days, and a later one written again under a new number by a retry.
    log.append(events([(0, 3, 13, 4)], day="2026-11-24"), epoch=3, generation="lineage-0001/gen-000010")
    log.append(events([(0, 2, 12, 3)], day="2026-11-25"), epoch=3, generation="lineage-0001/gen-000010")
    log.append(events([(0, 2, 12, 3), (0, 3, 13, 4), (0, 4, 14, 5)], day="2026-11-25"), epoch=3,
               generation="lineage-0001/gen-000011")
    log.append(events([(0, 0, 10, 99)]), epoch=2, generation="lineage-0001/gen-000001")  # another lineage
    files = log.log_files(epoch=3)
    assert [(f.generation, f.day) for f in files] == [(2, "2026-11-25"), (10, "2026-11-24"), (10, "2026-11-25"),
                                                      (11, "2026-11-25")]
    read = [(generation, table["id"].to_pylist()) for generation, table in log.stream(files)]
    assert read == [(2, ["1", "2"]), (10, ["3", "4"]), (11, ["5"])]
    assert log.read(epoch=3)["id"].to_pylist() == ["1", "2", "3", "4", "5"]  # the in-memory reader agrees


def test_event_millis_reads_postgresql_timestamptz_text():
    table = pa.table({"timestamp": ["2026-11-24 10:00:00+00", "2026-11-24 10:00:00.5+00", "2026-11-24 10:00:00.123+00"]})
    assert event_millis(table).tolist() == [1795514400000, 1795514400500, 1795514400123]


def test_remove_deletes_files_and_the_day_folders_they_empty(tmp_path):
    log = ChangeLog(PipelineLayout(tmp_path))
    a = log.append(events([(0, 0, 1, 1)], day="2026-11-24"), epoch=0, generation="lineage-0001/gen-000001")
    log.append(events([(0, 1, 2, 2)], day="2026-11-25"), epoch=0, generation="lineage-0001/gen-000002")
    assert log.remove(log.log_files(last_day="2026-11-24")) == 1
    assert not a[0].exists() and log.days() == ["2026-11-25"]
    assert pq.read_table(log.log_files()[0].path).num_rows == 1
