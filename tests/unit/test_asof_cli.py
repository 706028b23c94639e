"""``python -m cdc_pipeline as-of`` and ``changes`` on a synthetic pipeline folder."""

from __future__ import annotations

from cdc_pipeline.commands.cli import main
from tests.unit.test_asof_support import SyntheticPipeline, c, model_as_of, r, u

SNAPSHOT = "2026-11-24 10:00:00+00"


def test_as_of_and_changes_from_the_command_line(tmp_path, capsys):
    pipe = SyntheticPipeline(tmp_path / "data")
    pipe.merge([r(1, "ana", SNAPSHOT), r(2, "bea", SNAPSHOT)], read_started="2026-11-24T10:00:05+00:00")
    pipe.merge([u(1, "ana2", "2026-11-24 10:01:00+00"), c(3, "cai", "2026-11-24 10:02:00+00")],
               read_started="2026-11-24T10:03:00+00:00")
    data = str(tmp_path / "data")
    out = tmp_path / "asof.csv"
    assert main(["--data-dir", data, "as-of", "--connector", "clientes", "--at", "2026-11-24T10:01:30Z", "--out", str(out)]) == 0
    assert out.read_bytes() == model_as_of(pipe.merged, "2026-11-24T10:01:30Z")
    assert "the table as of 2026-11-24T10:01:30Z, 2 rows" in capsys.readouterr().out

    changes = tmp_path / "changes.csv"
    assert main(["--data-dir", data, "changes", "--connector", "clientes", "--from", "2026-11-24T10:01:00Z",
                 "--to", "2026-11-24T10:02:00Z", "--out", str(changes)]) == 0
    lines = changes.read_text().splitlines()
    assert lines[0].startswith("operacion,id,nombre,email,timestamp,_topic,_partition") and len(lines) == 2
    assert "1 changes committed in [2026-11-24T10:01:00Z, 2026-11-24T10:02:00Z)" in capsys.readouterr().out


def test_refusals_are_one_readable_line_and_exit_1(tmp_path, capsys):
    pipe = SyntheticPipeline(tmp_path / "data")
    pipe.merge([r(1, "ana", SNAPSHOT)], read_started="2026-11-24T10:00:05+00:00")
    pipe.record_run("2026-11-24T10:01:05+00:00")
    data = str(tmp_path / "data")
    assert main(["--data-dir", data, "as-of", "--connector", "clientes", "--at", "2026-11-24T09:00:00Z",
                 "--out", str(tmp_path / "x.csv")]) == 1
    assert "earliest instant its change log answers exactly, 2026-11-24T10:00:00Z" in capsys.readouterr().err
    assert main(["--data-dir", data, "as-of", "--connector", "clientes", "--at", "noon", "--out", str(tmp_path / "x.csv")]) == 1
    assert "write it like 2026-11-24" in capsys.readouterr().err
    assert main(["--data-dir", data, "changes", "--connector", "other", "--from", "2026-11-24", "--to", "2026-11-25",
                 "--out", str(tmp_path / "x.csv")]) == 1
    assert "has no change log" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_coverage_says_which_instants_can_be_answered_before_asking(tmp_path, capsys):
    data = str(tmp_path / "data")
    assert main(["--data-dir", data, "coverage", "--connector", "clientes"]) == 0
    assert "clientes: no change log yet" in capsys.readouterr().out
    pipe = SyntheticPipeline(tmp_path / "data")
    pipe.merge([r(1, "ana", SNAPSHOT)], read_started="2026-11-24T10:00:05+00:00")
    pipe.merge([c(2, "bea", "2026-11-24 10:01:00+00")], read_started="2026-11-24T10:02:00+00:00")
    assert main(["--data-dir", data, "coverage", "--connector", "clientes"]) == 0
    assert "answer instants from 2026-11-24T10:00:00Z (the time of the snapshot it starts from) to " \
           "2026-11-24T10:01:30Z" in capsys.readouterr().out
