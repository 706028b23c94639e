"""SIGKILL at each crash point of a merge, then the same merge again: the files equal an uncrashed merge's."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cdc_pipeline.pgtext.copy_csv import format_rows
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.state import StateStore
from tests.unit.test_state_support import CLIENTES, events

REPO = Path(__file__).resolve().parents[2]
CHUNK_ROWS = 4
MERGE_SCRIPT = """
import sys
from cdc_pipeline.pgtext.copy_csv import read_copy_csv
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.state import StateStore
from pathlib import Path
store = StateStore(PipelineLayout(Path(sys.argv[1])), chunk_rows=int(sys.argv[3]))
print(store.apply(read_copy_csv(sys.argv[2])).as_dict())
"""


def write_batch(path: Path, frame) -> Path:
    path.write_text(format_rows(list(frame.columns), frame.itertuples(index=False)), encoding="utf-8")
    return path


@pytest.fixture
def base(tmp_path) -> PipelineLayout:
    """A state of 30 keys, some deleted, in several index chunks."""
    layout = PipelineLayout(tmp_path / "base" / "clientes")
    store = StateStore(layout, chunk_rows=CHUNK_ROWS)
    store.create(CLIENTES)
    rows = [("c", str(k), f"name {k}", f"{k}@x", 100 + k, k % 3, k) for k in range(30)]
    rows += [("d", str(k), None, None, 200 + k, k % 3, 30 + k) for k in range(0, 30, 7)]
    store.apply(events(*rows))
    return layout


@pytest.fixture
def batch(tmp_path) -> Path:
    rows = [("u", str(k), f"changed {k}", None, 300 + k, k % 3, 100 + k) for k in range(1, 30, 4)]
    rows += [("c", str(k), f"new {k}", "n@x", 400 + k, k % 3, 200 + k) for k in range(30, 36)]
    rows += [("d", "2", None, None, 500, 2, 300), ("t", None, None, None, 250, 0, 150)]
    return write_batch(tmp_path / "buffer.csv", events(*rows))


def run_merge(layout: PipelineLayout, batch: Path, crash_at: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("CDC_CRASH_AT", None)
    if crash_at:
        env["CDC_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-c", MERGE_SCRIPT, str(layout.folder), str(batch), str(CHUNK_ROWS)],
                          env=env, capture_output=True, text=True, timeout=120)


def snapshot(layout: PipelineLayout) -> dict[str, object]:
    """Everything a reader or the next merge sees: destiny.csv, the live generation's files, the generation list."""
    live = StateStore(layout).live()
    manifest = json.loads(live.manifest_path.read_text())
    manifest.pop("created_at")
    return {
        "destiny": layout.destiny.read_bytes(),
        "linked": os.stat(layout.destiny).st_ino == os.stat(live.destiny_path).st_ino,
        "keys": live.keys_path.read_bytes(),
        "rows": live.rows_path.read_bytes(),
        "manifest": manifest,
        "generations": sorted(str(p.relative_to(layout.state_dir)) for p in layout.state_dir.glob("lineage-*/gen-*")),
        "pointers": sorted(p.name for p in layout.state_dir.iterdir() if p.is_file()),
    }


@pytest.fixture
def uncrashed(base, batch, tmp_path) -> dict[str, object]:
    layout = PipelineLayout(tmp_path / "uncrashed" / "clientes")
    shutil.copytree(base.folder, layout.folder)
    finished = run_merge(layout, batch, None)
    assert finished.returncode == 0, finished.stderr
    return snapshot(layout)


@pytest.mark.parametrize("point", ["merge.mid_state_write", "merge.before_live_switch", "merge.after_live_switch"])
def test_a_merge_killed_at_a_crash_point_then_run_again_ends_identical(base, batch, uncrashed, tmp_path, point):
    layout = PipelineLayout(tmp_path / "crashed" / "clientes")
    shutil.copytree(base.folder, layout.folder)
    before = layout.destiny.read_bytes()
    crashed = run_merge(layout, batch, point)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    if point != "merge.after_live_switch":
        assert layout.destiny.read_bytes() == before  # readers still see the previous table
    again = run_merge(layout, batch, None)
    assert again.returncode == 0, again.stderr
    assert snapshot(layout) == uncrashed
