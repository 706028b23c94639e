"""``python -m cdc_pipeline`` on a connector of several tables: a status block per table, --table for the commands
that work on one, every table in turn for status, history, verify and drain, and a history still readable when
the connector file is gone."""

from __future__ import annotations

import contextlib
import json

import pytest

from cdc_pipeline.commands import cli
from cdc_pipeline.services import Services
from cdc_pipeline.commands.operations import OperationResult
from cdc_pipeline.probes import asked_once
from cdc_pipeline.commands.status import Backlog, Probes
from tests.unit.many_tables_fixture import write_connectors, write_histories


@pytest.fixture()
def run(tmp_path, capsys):
    connectors, data = write_connectors(tmp_path / "connectors"), tmp_path / "data"
    write_histories(data)

    def run_cli(*args: str) -> tuple[int, str, str]:
        code = cli.main(["--data-dir", str(data), "--connectors-dir", str(connectors), *args])
        out, err = capsys.readouterr()
        return code, out, err

    run_cli.connectors, run_cli.data = connectors, data
    return run_cli


def headings(out: str) -> list[str]:
    return [line for line in out.splitlines() if not line.startswith((" ", "\t"))]


def test_status_shows_a_block_per_table_headed_by_connector_and_table(run):
    code, out, _ = run("status", "--offline")
    assert [h.split(" — ")[0] for h in headings(out)] == ["clientes: OK", "shop/public.a: OK", "shop/public.b: FAILING"]
    assert "  ! last failed run: merge_batch: disk full" in out
    assert code == 1  # one table failing is enough

    code, out, _ = run("status", "--offline", "--connector", "shop", "--table", "public.a")
    assert code == 0 and [h.split(":")[0] for h in headings(out)] == ["shop/public.a"]
    code, out, _ = run("status", "--offline", "--connector", "clientes", "--json")
    assert code == 0 and [s["name"] for s in json.loads(out)] == ["clientes"]


def test_an_unknown_or_loose_table_is_refused_naming_the_tables(run):
    code, _, err = run("status", "--offline", "--connector", "shop", "--table", "public.c")
    assert code == 1 and "does not capture 'public.c'; it captures public.a, public.b" in err
    code, _, err = run("status", "--offline", "--table", "public.a")
    assert code == 1 and "pass it with one --connector" in err
    code, _, err = run("history", "--connector", "clientes", "--table", "public.a")
    assert code == 1 and "it captures public.clientes" in err


@pytest.mark.parametrize("command", [["outages"], ["operations"], ["reset", "--to-beginning", "--yes"],
                                     ["resnapshot", "--yes"],
                                     ["as-of", "--at", "2026-11-24T12:00:00Z", "--out", "x.csv"]])
def test_commands_on_one_table_need_the_table_of_a_connector_of_several(run, command):
    code, _, err = run(command[0], "--connector", "shop", *command[1:])
    assert code == 1
    assert "error: connector shop captures 2 tables (public.a, public.b): pass --table with one of them" in err


def test_commands_on_one_table_read_that_tables_folder(run):
    code, out, _ = run("outages", "--connector", "shop", "--table", "public.b")
    assert code == 0 and out == "no outage recorded\n"
    code, _, err = run("as-of", "--connector", "shop", "--table", "public.b", "--at", "2026-11-24T12:00:00Z",
                       "--out", "x.csv")
    assert code == 1 and f"{run.data / 'shop' / 'public.b'} has no change log" in err


def test_history_goes_over_every_table_and_a_one_table_connector_prints_as_before(run):
    code, out, _ = run("history", "--connector", "shop")
    lines = out.splitlines()
    assert code == 0 and [line for line in lines if line.startswith("#")] == ["# shop/public.a", "# shop/public.b"]
    b = lines[lines.index("# shop/public.b"):]
    assert b[2].startswith("scheduled__2\tfailed") and b[3].startswith("scheduled__1\tmerged")

    code, out, _ = run("history", "--connector", "shop", "--table", "public.a", "--run", "scheduled__1")
    assert code == 0 and out.startswith("# shop/public.a\n")
    code, out, _ = run("history", "--connector", "clientes")
    assert code == 0 and out.startswith("run_id\tstatus\t") and "#" not in out


def test_the_history_of_a_connector_whose_file_is_gone_is_found_by_its_table_folders(run):
    (run.connectors / "shop.json").unlink()
    code, out, _ = run("history", "--connector", "shop")
    assert code == 0 and [line for line in out.splitlines() if line.startswith("#")] == ["# shop/public.a",
                                                                                      "# shop/public.b"]
    code, _, err = run("outages", "--connector", "shop", "--table", "public.z")
    assert code == 1 and "it captures public.a, public.b (the table folders in" in err
    code, out, _ = run("outages", "--connector", "shop", "--table", "public.a")
    assert code == 0 and out == "no outage recorded\n"


def test_a_table_that_has_not_run_yet_is_named_among_the_others(run):
    shop = run.connectors / "shop.json"
    document = json.loads(shop.read_text())
    document["config"]["table.include.list"] = "public.a,public.b,public.new"
    shop.write_text(json.dumps(document))
    code, out, _ = run("history", "--connector", "shop")
    assert code == 0 and "# shop/public.new: no run history yet" in out
    code, _, err = run("outages", "--connector", "shop", "--table", "public.new")
    assert code == 1 and f"no run history at {run.data / 'shop' / 'public.new' / 'runs.sqlite'}" in err


def test_drain_and_verify_go_over_every_table(run, monkeypatch):
    drained, verified = [], []
    offline = Services(kafka=contextlib.nullcontext, connect=contextlib.nullcontext, source=lambda: None)
    monkeypatch.setattr("cdc_pipeline.environment.PipelineEnvironment.services", lambda env: offline)
    monkeypatch.setattr("cdc_pipeline.commands.operations.drain", lambda pipe, services, **_: drained.append(pipe.layout.folder)
                        or OperationResult(f"{pipe.label}: drained", {}))

    class Result:
        def __init__(self, pipe):
            verified.append(pipe.spec.topic)

        def line(self):
            return "identical"

        def as_dict(self):
            return {"result": "identical"}

    monkeypatch.setattr("cdc_pipeline.commands.verify.verify", lambda pipe, *a, **k: Result(pipe))
    code, out, _ = run("drain", "--connector", "shop")
    assert code == 0 and out == "shop/public.a: drained\nshop/public.b: drained\n"
    assert drained == [run.data / "shop" / "public.a", run.data / "shop" / "public.b"]
    code, out, _ = run("verify", "--connector", "shop", "--table", "public.b")
    assert code == 0 and out == "shop/public.b: identical\n" and verified == ["pgserver1.public.b"]
    code, out, _ = run("verify", "--connector", "clientes")
    assert code == 0 and out == "identical\n"


def test_each_table_reads_its_own_backlog_and_the_connector_is_asked_once(run, monkeypatch):
    asked, waiting = [], {"pgserver1.public.a": 4, "pgserver1.public.b": 9}

    @contextlib.contextmanager
    def probes(env, spec):
        connector = asked_once(lambda: asked.append(spec.name) or {"state": "RUNNING", "tasks": []})
        yield lambda scoped: Probes(backlog=lambda ends: Backlog({0: waiting[scoped.topic]}, waiting[scoped.topic]),
                                    connector=connector)

    monkeypatch.setattr(cli, "connector_probes", probes)
    code, out, _ = run("status", "--connector", "shop", "--json")
    statuses = json.loads(out)
    assert [(s["name"], s["backlog"]["total"]) for s in statuses] == [("shop/public.a", 4), ("shop/public.b", 9)]
    assert asked == ["shop"] and [s["connector"]["state"] for s in statuses] == ["RUNNING", "RUNNING"]


def test_a_probe_asked_once_answers_its_error_again_without_asking():
    calls = []

    def failing():
        calls.append(1)
        raise TimeoutError("Kafka Connect did not answer")

    probe = asked_once(failing)
    for _ in range(2):
        with pytest.raises(TimeoutError):
            probe()
    assert calls == [1]
