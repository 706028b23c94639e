"""benchmarks/bench_many_tables.py's watcher, without a stack: it sees a sampled change once a merge renames a new
destiny.csv into place, and it does not read a file again that nobody wrote since."""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def bench():
    spec = importlib.util.spec_from_file_location("bench_many_tables", REPO / "benchmarks" / "bench_many_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def merged(path: Path, rows: dict[int, int]) -> None:
    """As a merge does: a new file renamed into place."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text("id,version,note\n" + "".join(f"{key},{version},x\n" for key, version in rows.items()))
    os.replace(temporary, path)


def test_the_watcher_sees_a_change_once_merged_and_reads_an_unwritten_file_once(tmp_path, monkeypatch):
    module = bench()
    monkeypatch.setattr(module, "POLL_S", 0.01)
    reads: list[Path] = []
    real = module.versions_in
    monkeypatch.setattr(module, "versions_in", lambda path, keys: reads.append(path) or real(path, keys))
    destiny = tmp_path / "destiny.csv"
    merged(destiny, {1: 1, 2: 1})
    watcher = module.Watcher({"t": destiny})
    watcher.watch("t", 2, 2)
    watcher.start()
    try:
        time.sleep(0.3)  # about 30 polls of a file nobody writes
        assert watcher.pending() == 1 and len(reads) == 1
        merged(destiny, {1: 1, 2: 2})
        deadline = time.monotonic() + 5
        while watcher.pending() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert watcher.pending() == 0 and len(reads) == 2
    finally:
        watcher.stop()
    assert len(watcher.delays([("t", 2, 2, 0.0)])) == 1
