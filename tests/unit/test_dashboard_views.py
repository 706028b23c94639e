"""The dashboard's data: LSNs, run states with tries, the runs table (folds, lines, offsets, merge), the strip."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from cdc_airflow.dashboard.catalog import Catalog
from cdc_pipeline.formatting import lsn_text, notes_list, size_text
from cdc_airflow.dashboard.history_query import MAX_PAGE, RunFilter, clamp_page
from cdc_airflow.dashboard.runs_table import AirflowLinks, run_state
from cdc_airflow.dashboard.status_strip import state_label, strip_cells
from cdc_airflow.dashboard.views import RunsQuery, dashboard, runs_page
from cdc_pipeline.commands.status import Backlog, Probes, pipeline_status
from tests.unit.test_dashboard_fixture import LSN, NO_PK, NOW, at, build_history, run_id, write_connectors


@pytest.fixture()
def catalog(tmp_path):
    build_history(tmp_path / "data" / "clientes")
    return Catalog.load(write_connectors(tmp_path / "connectors"), tmp_path / "data")


def entries(catalog, **query):
    return runs_page(catalog.pipelines["clientes"], RunsQuery.parse(**query), "", NOW)["entries"]


def runs_in(page_entries):
    found = []
    for entry in page_entries:
        found += entry["runs"] if entry["type"] == "fold" else [entry] if entry["type"] == "run" else []
    return found


@pytest.mark.parametrize(("lsn", "text"), [(0, "0/0"), (LSN, "16/B374D848"), (0xFFFFFFFF, "0/FFFFFFFF"),
                                           (0x100000000, "1/0"), (None, None)])
def test_an_lsn_is_written_as_postgresql_writes_it(lsn, text):
    assert lsn_text(lsn) == text


def test_notes_read_as_sentences_not_json():
    assert notes_list('["one thing", "another"]') == ["one thing", "another"]
    assert notes_list("plain words") == ["plain words"]
    assert notes_list(None) == []


def test_sizes_read_in_units():
    assert [size_text(n) for n in (512, 2048, 5 * 1024 ** 3)] == ["512 B", "2.0 kB", "5.0 GB"]


@pytest.mark.parametrize(("limit", "offset", "page"), [("100000", "0", (MAX_PAGE, 0)), ("-3", "-9", (1, 0)),
                                                       ("lots", None, (50, 0)), (None, "20", (50, 20))])
def test_any_limit_in_a_url_becomes_a_valid_page(limit, offset, page):
    assert clamp_page(limit, offset) == page


def test_an_unknown_status_filter_shows_every_run():
    assert RunFilter.parse("nonsense", "yes") == RunFilter("all", True)


def test_retries_show_while_airflow_has_not_finished_the_run(catalog):
    runs = {run["run_id"]: run for run in runs_in(entries(catalog))}
    assert runs[run_id(64)]["state"] == "retrying consume_batch 2/4"
    assert runs[run_id(64)]["tone"] == "warn"
    assert runs[run_id(30)]["state"] == "merged after 2 tries"
    assert runs[run_id(20)]["state"] == "failed after 2 tries"
    assert runs[run_id(0)]["state"] == "merged"


def test_a_try_that_is_running_again_counts_as_a_retry_and_a_forgotten_run_is_unfinished():
    running_again = [{"task_id": "merge_batch", "try_number": 1, "max_tries": 4, "status": "failed"},
                     {"task_id": "merge_batch", "try_number": 2, "max_tries": 4, "status": "running"}]
    run = {"status": "committed", "started_at": at(60)}
    assert run_state(run, running_again, NOW) == ("retrying merge_batch 2/4", "warn")
    assert run_state(run, [], NOW) == ("running (committed)", "busy")
    assert run_state(run, [], NOW + timedelta(hours=2))[0].startswith("unfinished")


def test_idle_runs_fold_into_one_line_and_lines_sit_between_runs_in_time_order(catalog):
    page = entries(catalog)
    kinds = [(e["type"], {"run": e.get("run_id"), "line": e.get("kind"), "fold": e.get("text")}[e["type"]]) for e in page]
    assert kinds == [("run", run_id(64)), ("line", "verify"), ("run", run_id(30)), ("run", run_id(20)),
                     ("line", "outage"), ("fold", "14 idle runs 12:01–12:14"), ("run", run_id(0))]
    outage = page[4]
    assert outage["text"].startswith("PostgreSQL unreachable since 12:19, still down") and outage["tone"] == "bad"
    assert page[1]["text"] == "verify: identical · 1 row compared"


def test_a_run_reads_in_one_line_per_column(catalog):
    runs = {run["run_id"]: run for run in runs_in(entries(catalog))}
    busy = runs[run_id(30)]
    assert busy["events_text"] == "u 37 · d 2"
    assert busy["offsets_text"] == "p0 [3, 40), p2 [0, 2)"  # only partitions that moved
    assert busy["merge_text"] == "+0 ~30 −2"
    first = runs[run_id(0)]
    assert first["max_lsn_text"] == "16/B374D848" and first["offsets_all_text"] == "p0 [0, 3), p1 [5, 5)"
    assert first["notes"] == ["slot debezium_clientes does not exist yet: the connector creates it"]
    failed = runs[run_id(20)]
    assert failed["error_line"].startswith("register_connector: table public.clientes has no primary key")
    assert len(failed["error_line"]) <= 160 and failed["error"] == f"register_connector: {NO_PK}"


def test_runs_link_to_their_airflow_run_and_task_logs(catalog):
    run = runs_in(entries(catalog))[0]
    links = AirflowLinks("", "cdc_clientes")
    assert run["airflow_url"] == links.run(run_id(64)) == \
        "/dags/cdc_clientes/runs/scheduled__2026-11-24T13%3A04%3A00%2B00%3A00"
    assert run["tries"][0]["log_url"] == f"{links.run(run_id(64))}/tasks/consume_batch?try_number=1"


def test_the_status_filter_and_carried_data(catalog):
    failed = runs_in(entries(catalog, status="failed"))
    assert [r["run_id"] for r in failed] == [run_id(20)]
    assert [r["run_id"] for r in runs_in(entries(catalog, status="running"))] == [run_id(64)]
    assert {r["run_id"] for r in runs_in(entries(catalog, status="retried"))} == {run_id(64), run_id(30), run_id(20)}
    with_data = runs_in(entries(catalog, data="1"))
    assert [r["run_id"] for r in with_data] == [run_id(64), run_id(30), run_id(0)]


def test_pages_cut_runs_and_lines_so_each_shows_once(catalog):
    pipeline = catalog.pipelines["clientes"]
    seen_runs, seen_lines, offset = [], [], 0
    while offset is not None:
        page = runs_page(pipeline, RunsQuery.parse(limit="3", offset=str(offset)), "", NOW)
        seen_runs += [r["run_id"] for r in runs_in(page["entries"])]
        seen_lines += [e["kind"] for e in page["entries"] if e["type"] == "line"]
        assert page["matching"] == 18
        offset = page["older_offset"]
    assert len(seen_runs) == len(set(seen_runs)) == 18
    assert sorted(seen_lines) == ["outage", "verify"]


def test_the_strip_without_probes_says_so_and_shows_the_history_view(catalog):
    pipeline = catalog.pipelines["clientes"]
    status = pipeline_status("clientes", pipeline.layout, None, now=NOW)
    assert status.state == "source down" and state_label(status) == "SOURCE DOWN since 12:19 UTC"
    cells = {c["key"]: c for c in strip_cells(status, NOW)}
    assert cells["backlog"]["detail"].endswith("as of the last run (Kafka not asked live)")
    assert cells["connector"]["detail"] == "Kafka Connect not asked from here"
    assert cells["rows"]["value"] == "1" and cells["verify"]["value"] == "identical"
    assert "PostgreSQL down since 12:19 UTC (1 run)" in cells["incidents"]["detail"]


def test_the_strip_with_live_answers_and_a_probe_that_fails(catalog):
    def failing_slot():
        raise TimeoutError("PostgreSQL did not answer within 4 s")

    probes = Probes(backlog=lambda ends: Backlog({0: 7, 1: 0, 2: 0}, 7, 125.0, "kafka"),
                    connector=lambda: {"state": "RUNNING", "tasks": [{"id": 0, "state": "FAILED"}]}, slot=failing_slot)
    data = dashboard(catalog.pipelines["clientes"], RunsQuery.parse(), probes=lambda spec, ends: probes, root="",
                     now=NOW)
    cells = {c["key"]: c for c in data["status"]["cells"]}
    assert cells["backlog"]["value"] == "7 events"
    assert cells["backlog"]["detail"] == "p0 7 · oldest 2 min · live from Kafka"
    assert cells["connector"]["tone"] == "bad" and cells["connector"]["detail"] == "task 0 FAILED"
    assert cells["slot"]["detail"] == "could not ask PostgreSQL: PostgreSQL did not answer within 4 s"
    assert data["status"]["probes"] == {"Kafka": "answered", "Kafka Connect": "answered",
                                        "PostgreSQL": "PostgreSQL did not answer within 4 s", "Airflow": "not asked"}


def test_the_catalog_finds_pipelines_by_dag_and_keeps_folders_without_a_connector_file(catalog, tmp_path):
    build_history(tmp_path / "data" / "retired")
    catalog = Catalog.load(tmp_path / "connectors", tmp_path / "data")
    assert catalog.by_dag_id("cdc_clientes_ops").name == "clientes"
    assert catalog.pipelines["retired"].spec is None and catalog.by_dag_id("some_other_dag") is None
    assert "broken.json" in catalog.broken


def test_the_last_error_has_its_own_cell_and_is_not_listed_twice():
    from cdc_airflow.dashboard.status_strip import problems
    from cdc_pipeline.commands.status import PipelineStatus

    status = PipelineStatus("p", "failing", "", last_error="register_connector: " + NO_PK,
                            problems=["connector is PAUSED", f"last failed run: register_connector: {NO_PK}"])
    cells = {c["key"]: c for c in strip_cells(status, NOW)}
    assert cells["last_error"]["value"].startswith("register_connector: table") and cells["last_error"]["detail"] == ""
    assert cells["last_error"]["title"] == status.last_error
    assert problems(status) == ["connector is PAUSED"]


def test_links_lead_to_the_mapped_table_tasks_and_to_the_backfill_dag():
    """A table of a connector of several: its merge and sinks are instances of the mapped group ``table`` (the
    list of instances, each named by its table); its backfill runs belong to the backfill DAG."""
    links = AirflowLinks("/af", "cdc_shop", table_group=True)
    assert links.task_log("scheduled__x", "merge_batch", 2) == \
        "/af/dags/cdc_shop/runs/scheduled__x/tasks/table.merge_batch/mapped"
    assert links.task_log("scheduled__x", "sink_parquet", 1).endswith("/tasks/table.sink_parquet/mapped")
    assert links.task_log("scheduled__x", "consume_batch", 1).endswith("/tasks/consume_batch?try_number=1")
    backfill = links.for_kind("backfill")
    assert backfill.run("backfill__y") == "/af/dags/cdc_shop_backfill/runs/backfill__y"
    assert backfill.task_log("backfill__y", "backfill_interval", 1).endswith("/tasks/backfill_interval?try_number=1")
    assert links.for_kind("scheduled") is links


def test_a_verification_line_reads_as_words_and_an_operator_command_says_done_once():
    from cdc_airflow.dashboard.runs_table import incident_line

    verify = incident_line({"kind": "verify", "at": NOW.isoformat(), "result": "different", "compared": 200,
                            "differing": 1, "detail": json.dumps({
                                "differing": [{"key": ["42"], "source": "42,a\n", "destiny": "42,X\n"}],
                                "explained": 2, "unverifiable": 0, "lsn": "0/1A2B", "action": "rebuild 3 started"})},
                           NOW)
    assert verify["detail"] == ("compared at WAL 0/1A2B · 2 keys changed since the snapshot, compared as of it · "
                                "differs: key 42 · rebuild 3 started")
    assert "42,X" not in verify["detail"]  # keys, never row contents
    command = incident_line({"kind": "operation", "at": NOW.isoformat(), "command": "resnapshot", "origin": "cli",
                             "status": "done", "ended_at": NOW.isoformat(), "detail": "done"}, NOW)
    assert command["detail"] is None and command["text"].count("done") == 1


def test_a_backlog_counted_from_offsets_says_about_and_why(catalog):
    pipeline = catalog.pipelines["clientes"]
    probes = Probes(backlog=lambda ends: Backlog({0: 5000}, 5000, 30.0, "kafka", approximate=True))
    cells = {c["key"]: c for c in strip_cells(pipeline_status("clientes", pipeline.layout, probes, now=NOW), NOW)}
    assert cells["backlog"]["value"] == "about 5,000 events"
    assert "each delete's tombstone counts too" in cells["backlog"]["detail"]
