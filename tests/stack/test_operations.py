"""Operations on the real services: start from a date, reset, resnapshot, dead letters, operator commands beside
the schedule, verify, outages, and the source password kept out of Kafka Connect's stored config."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import multiprocessing
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cdc_pipeline.commands import cli
from cdc_pipeline.errors import BrokerUnreachableError, DeadLettersError, SourceError, SourceUnreachableError
from cdc_pipeline.history import RunRef
from cdc_pipeline.kafka.client import KafkaClients
from cdc_pipeline.kafka.topic import topic_partitions
from cdc_pipeline.source.checks import SourceParams, check_source, check_sources
from cdc_pipeline.errors import VerifyMismatchError
from cdc_pipeline.commands.verify import verify
from cdc_pipeline.waiting import WaitTimeout, wait_until
from devstack.ports import free_port
from tests.stack.pipeline_driver import PipelineDriver, drained_pipeline, write_connector
from tests.stack.workload import BackgroundChanges

pytestmark = pytest.mark.stack


def make(stack, tmp_path, name: str, rows: int = 10, **settings) -> PipelineDriver:
    return drained_pipeline(stack.settings, tmp_path, name, rows="g, 'old ' || g", count=rows, **settings)


def cli_args(driver: PipelineDriver, *command: str) -> list[str]:
    s = driver.settings
    return ["--data-dir", str(driver.layout.folder.parent), "--connectors-dir", str(driver.spec.path.parent),
            "--bootstrap-servers", s.kafka_bootstrap, "--group-prefix", "test", "--connect-url", s.connect_url,
            *command]


def test_start_from_a_date_skips_older_events_in_every_later_run(stack_services, tmp_path):
    driver = make(stack_services, tmp_path, "from_date")
    cut = datetime.now(UTC)
    time.sleep(1.1)  # a clock gap, not a wait for a condition: the cut must fall strictly between the two phases
    driver.sql("INSERT INTO public.from_date SELECT g, 'new ' || g FROM generate_series(11, 15) g")
    driver.wait_for_records(15)
    fresh = PipelineDriver(driver.settings, driver.spec.path, tmp_path / "fresh", group="test.from_date.fresh")
    fresh.register()  # the same connector: this only describes the table for the new folder
    run = fresh.next_run()
    consumed = fresh.consume(run, start_from=cut, max_events=3)
    fresh.merge(run)
    for _ in range(6):  # later runs have no start_from of their own: the recorded cut-off still applies
        fresh.run_once(max_events=3)
    assert consumed["reads"] == 0
    assert fresh.destiny().decode() == "id,v\n" + "".join(f"{i},new {i}\n" for i in range(11, 16))


def test_reset_to_the_beginning_rebuilds_destiny_and_keeps_the_old_files_and_history(stack_services, tmp_path):
    driver = make(stack_services, tmp_path, "reset_items")
    runs_before = len(driver.history.runs.recent_runs(1000))
    assert cli.main(cli_args(driver, "reset", "--connector", "reset_items", "--to-beginning", "--yes")) == 0
    assert not driver.layout.destiny.exists()
    assert list(driver.layout.folder.parent.glob("reset_items.before-reset-*/destiny.csv"))
    assert len(driver.history.runs.recent_runs(1000)) == runs_before  # the history stays
    assert driver.history.runs.resume_point().reason == "reset to beginning"
    consumed, _ = driver.run_once()
    assert consumed["reads"] >= 10  # the snapshot again: read from the beginning
    assert driver.destiny() == driver.copy_csv("id")


def test_an_operator_command_without_a_terminal_needs_yes(stack_services, tmp_path, capsys):
    driver = make(stack_services, tmp_path, "needs_yes")
    assert cli.main(cli_args(driver, "reset", "--connector", "needs_yes", "--to-beginning")) == 1
    assert "pass --yes" in capsys.readouterr().err


def _consume_slowly(settings_json: str, ready, release) -> None:
    """A scheduled run's consume step that stops just before committing its offsets (inside the pipeline lock)
    until told to go on: an in-flight run."""
    from types import SimpleNamespace

    import cdc_pipeline.tasks.consume as consume_module

    args = json.loads(settings_json)
    driver = PipelineDriver(SimpleNamespace(**args["settings"]), Path(args["connector"]), Path(args["data_dir"]),
                            group=args["group"])
    commit = consume_module.commit_offsets

    def commit_when_released(*a, **k):
        ready.set()
        release.wait(60)
        return commit(*a, **k)

    consume_module.commit_offsets = commit_when_released
    driver.consume(RunRef(args["run_id"], 1, 1), max_events=5)


def test_reset_waits_for_an_in_flight_run_and_scheduled_runs_step_aside_meanwhile(stack_services, tmp_path):
    from tests.stack.crash_step import arguments

    driver = make(stack_services, tmp_path, "busy_items", rows=30)
    driver.sql("INSERT INTO public.busy_items SELECT g, 'more ' || g FROM generate_series(31, 60) g")
    driver.wait_for_records(60)
    ready, release = multiprocessing.Event(), multiprocessing.Event()
    in_flight = multiprocessing.Process(target=_consume_slowly, args=(arguments(driver, "consume", RunRef("manual__inflight")),
                                                                       ready, release))
    in_flight.start()
    assert ready.wait(30)
    reset = multiprocessing.Process(target=cli.main, args=(cli_args(driver, "reset", "--connector", "busy_items",
                                                                     "--to-beginning", "--yes"),))
    reset.start()
    # The reset waits on the pipeline lock the in-flight run holds: it neither finishes nor marks itself running.
    with pytest.raises(WaitTimeout):
        wait_until(lambda: not reset.is_alive() or driver.history.incidents.running_operation() is not None,
                   what="the reset to get past the lock", timeout=3, interval=0.2)
    assert driver.history.runs.resume_point().reason != "reset to beginning"
    release.set()
    in_flight.join(60)
    reset.join(120)
    assert in_flight.exitcode == 0 and reset.exitcode == 0
    # The in-flight run committed before the reset; the reset came after it and wins: the next run starts over.
    point = driver.history.runs.resume_point()
    assert point.reason == "reset to beginning" and set(point.ends.values()) == {0}
    expected = driver.drain_until_equal("id")
    assert driver.destiny() == expected


def test_a_scheduled_run_steps_aside_while_an_operator_command_is_marked_running(stack_services, tmp_path):
    driver = make(stack_services, tmp_path, "marked_items")
    op = driver.history.incidents.begin_operation("reset", {}, "test")  # a command whose process died mid-way
    consumed, merged = driver.run_once()
    assert "did not finish" in consumed["skipped"] and "operations --connector marked_items --clear" in consumed["skipped"]
    assert driver.history.runs.recent_runs(1)[0]["status"] == "skipped"
    assert cli.main(cli_args(driver, "operations", "--connector", "marked_items", "--clear")) == 0
    assert driver.history.incidents.running_operation() is None and op


def test_resnapshot_keeps_destiny_until_the_new_snapshot_is_live(stack_services, tmp_path):
    driver = make(stack_services, tmp_path, "resnap_items", rows=50)
    before = driver.destiny()
    assert cli.main(cli_args(driver, "resnapshot", "--connector", "resnap_items", "--yes")) == 0
    assert driver.history.incidents.active_recovery().reason == "operator"
    assert driver.destiny() == before
    driver.sql("UPDATE public.resnap_items SET v = 'changed during the resnapshot' WHERE id = 7")
    expected = driver.converge("id")
    assert driver.destiny().decode() == expected.decode()
    assert driver.history.incidents.last_recovery().step == "promoted"


def _poison(driver: PipelineDriver, count: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": driver.settings.kafka_bootstrap})
    for number in range(count):
        producer.produce(driver.spec.topic, key=b"junk", value=b"\x00 not a debezium event %d" % number, partition=0)
    producer.flush(10)


def test_a_poison_message_fails_the_run_before_its_offsets_are_committed(stack_services, tmp_path):
    driver = make(stack_services, tmp_path, "poison_items")
    point = driver.history.runs.resume_point()
    _poison(driver, 1)
    driver.sql("INSERT INTO public.poison_items VALUES (100, 'after the junk')")
    driver.wait_for_records(12)
    with pytest.raises(DeadLettersError, match=r"1 messages of this batch cannot be decoded \(max_dead_letters is 0\).*"
                                               r"offset \d+.*not JSON"):
        driver.run_once()
    assert driver.history.runs.resume_point() == point  # nothing buffered or committed
    assert b"after the junk" not in driver.destiny()
    letters = [json.loads(line) for line in driver.layout.dead_letters.read_text().splitlines()]
    assert [base64.b64decode(d["value_base64"]) for d in letters] == [b"\x00 not a debezium event 0"]


def test_up_to_max_dead_letters_are_set_aside_and_the_run_goes_on(stack_services, tmp_path):
    driver = make(stack_services, tmp_path, "poison_five", max_dead_letters=5)
    _poison(driver, 5)
    driver.sql("INSERT INTO public.poison_five VALUES (100, 'after the junk')")
    expected = driver.drain_until_equal("id")
    assert driver.destiny() == expected and b"after the junk" in expected
    runs = driver.history.runs.recent_runs(100)
    assert sum(r["dead_lettered"] or 0 for r in runs) == 5
    assert any("undecodable messages set aside" in (r["notes"] or "") for r in runs)


def test_verify_is_identical_on_a_live_table_and_finds_a_key_changed_by_hand(stack_services, tmp_path):
    driver = make(stack_services, tmp_path, "verified", rows=200)
    with BackgroundChanges(driver, "public.verified", seed=9):
        result = verify(driver.pipe, driver.services, run_id="manual__verify-1")
    assert result.result == "identical" and result.compared >= 200
    driver.drain_until_equal("id")
    # destiny.csv changed in place, keeping its size (a replaced file would be relinked by the next merge): the
    # silent corruption only a comparison with the source finds.
    path = driver.layout.destiny
    data = path.read_bytes()
    row = data.index(b"\n42,") + 4
    path.chmod(0o644)
    with open(path, "r+b") as handle:
        handle.seek(row)
        handle.write(b"X")
    with pytest.raises(VerifyMismatchError, match="DIFFERENT: 1 of .* keys differ"):
        verify(driver.pipe, driver.services, run_id="manual__verify-2", rebuild=False)
    (last,) = driver.history.incidents.verifications(1)
    assert last["result"] == "different" and '"42"' in last["detail"]

    # With Kafka Connect at hand and on_data_loss=resnapshot (the default), a mismatch starts the atomic rebuild,
    # which brings back the table: byte-identical to COPY.
    with pytest.raises(VerifyMismatchError):
        verify(driver.pipe, driver.services, run_id="manual__verify-3")
    assert driver.history.incidents.active_recovery().reason == "verify_mismatch"
    (last,) = driver.history.incidents.verifications(1)
    assert "rebuild" in json.loads(last["detail"])["action"]
    expected = driver.converge("id")
    assert driver.destiny().decode() == expected.decode()
    assert driver.history.incidents.last_recovery().step == "promoted"


def test_the_source_password_never_reaches_kafka_connects_stored_config(stack_services, tmp_path):
    driver = make(stack_services, tmp_path, "secret_items")
    with driver.connect() as connect:
        stored = connect.get_config("secret_items")
    assert stored["database.password"] == "${env:CDC_CAPTURE_PASSWORD}"
    assert stored["database.user"] == driver.settings.capture_user  # the least-privilege role, not the administrator
    assert driver.settings.capture_password not in json.dumps(stored)
    assert driver.settings.pg_password not in json.dumps(stored)


def test_an_unreachable_broker_is_an_outage_with_the_fix(tmp_path):
    with KafkaClients({"bootstrap.servers": f"127.0.0.1:{free_port()}"}, "nobody") as clients:
        with pytest.raises(BrokerUnreachableError, match="did not answer a metadata request.*cdc_kafka"):
            topic_partitions(clients, "t", timeout=3)


class SourceDown(PipelineDriver):
    """The same pipeline, seen from a task whose source connection points at nothing."""

    @property
    def source(self) -> SourceParams:
        return SourceParams("127.0.0.1", self.dead_port, "postgres", "x", "testdb")


def test_an_unreachable_source_is_an_outage_recorded_until_it_is_back(stack_services, tmp_path):
    driver = make(stack_services, tmp_path, "outage_items")
    down = SourceDown(driver.settings, driver.spec.path, driver.layout.folder.parent, group=driver.group)
    down.dead_port = free_port()
    with pytest.raises(SourceUnreachableError, match="(?s)cannot connect to PostgreSQL.*cdc_postgres"):
        down.register()
    down.run_once()  # the drain goes on while the source is down
    (outage,) = driver.history.incidents.open_outages()
    assert outage["service"] == "postgres"
    driver.register()
    assert driver.history.incidents.open_outages() == []
    (closed,) = driver.history.incidents.outages()
    assert closed["back_at"] is not None
    assert cli.main(cli_args(driver, "outages", "--connector", "outage_items")) == 0


def test_a_table_without_primary_key_is_refused_before_registration(stack_services, tmp_path):
    driver = PipelineDriver(stack_services.settings, write_connector(tmp_path, "nokey", "public.nokey", "nk"),
                            tmp_path / "data")
    driver.sql("DROP TABLE IF EXISTS public.nokey")
    driver.sql("CREATE TABLE public.nokey (v text)")
    with pytest.raises(SourceError, match="has no primary key"):
        check_source(driver.source, "public", "nokey", "slot_nokey")


def test_a_collation_no_order_reproduces_on_a_text_key_is_reported_an_icu_one_is_not(stack_services, tmp_path):
    driver = PipelineDriver(stack_services.settings, write_connector(tmp_path, "coll", "public.coll_items", "co"),
                            tmp_path / "data")
    driver.sql("DROP TABLE IF EXISTS public.coll_items")
    driver.sql("DROP COLLATION IF EXISTS public.coll_ci")
    driver.sql("CREATE COLLATION public.coll_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)")
    driver.sql('CREATE TABLE public.coll_items (k text COLLATE public.coll_ci PRIMARY KEY)')
    report = check_source(driver.source, "public", "coll_items", "slot_coll")
    assert any("linguistic collation" in note and "coll_ci" in note for note in report.notes)
    driver.sql("DROP TABLE public.coll_items")
    driver.sql('CREATE TABLE public.coll_items (k text COLLATE "und-x-icu" PRIMARY KEY)')  # ordered exactly
    report = check_source(driver.source, "public", "coll_items", "slot_coll")
    assert not any("collation" in note for note in report.notes)
    assert report.description.column("k").icu_locale == "und"
    driver.sql("DROP TABLE public.coll_items")
    driver.sql("CREATE TABLE public.coll_items (k text PRIMARY KEY)")  # the cluster's C.UTF-8
    assert not any("collation" in note for note in check_source(driver.source, "public", "coll_items", "slot_coll").notes)


def test_a_publication_made_before_that_leaves_out_deletes_is_refused_before_registration(stack_services, tmp_path):
    """A hand-made publication that publishes no deletes (or truncates) would keep those changes from ever arriving
    while every run succeeds: registration refuses it, naming what is missing and the ALTER that fixes it."""
    driver = PipelineDriver(stack_services.settings, write_connector(tmp_path, "pubcheck", "public.pub_items", "pc"),
                            tmp_path / "data")
    driver.sql("DROP TABLE IF EXISTS public.pub_items")
    driver.sql("CREATE TABLE public.pub_items (id int PRIMARY KEY, v text)")
    driver.sql("DROP PUBLICATION IF EXISTS pub_pubcheck")
    driver.sql("CREATE PUBLICATION pub_pubcheck FOR TABLE public.pub_items WITH (publish = 'insert, update')")
    try:
        with pytest.raises(SourceError, match=r"does not publish delete, truncate.*ALTER PUBLICATION pub_pubcheck"):
            driver.register()
        with driver.connect() as connect:
            assert connect.get_config("pubcheck") is None  # nothing was sent to Kafka Connect
        driver.sql("ALTER PUBLICATION pub_pubcheck SET (publish = 'insert, update, delete, truncate')")
        check_sources(driver.source, [("public", "pub_items")], "slot_pubcheck", "pub_pubcheck")  # now accepted
    finally:
        driver.sql("DROP PUBLICATION IF EXISTS pub_pubcheck")
        driver.sql("DROP TABLE IF EXISTS public.pub_items")


@pytest.mark.parametrize("setup, named", [
    ("CREATE VIEW public.rel_x AS SELECT 1 AS id", "a view, not a table"),
    ("CREATE TABLE public.rel_x (id int, d date, PRIMARY KEY (id, d)) PARTITION BY RANGE (d)", "a partitioned table"),
    ("CREATE UNLOGGED TABLE public.rel_x (id int PRIMARY KEY)", "UNLOGGED"),
    ("CREATE TABLE public.rel_x (id int PRIMARY KEY, n int, twice int GENERATED ALWAYS AS (n * 2) STORED)",
     "column twice is GENERATED ALWAYS ... STORED"),
])
def test_relations_that_cannot_be_captured_exactly_are_refused_before_registration(stack_services, tmp_path, setup,
                                                                                  named):
    """A view named by mistake, a partitioned table, an UNLOGGED table (nothing in the WAL), a stored generated
    column (changes arrive without it): refused with the reason, before anything is sent to Kafka Connect."""
    driver = PipelineDriver(stack_services.settings, write_connector(tmp_path, "relx", "public.rel_x", "rx"),
                            tmp_path / "data")
    drop_rel_x(driver)
    driver.sql(setup)
    try:
        with pytest.raises(SourceError, match="cannot be captured exactly: .*" + re.escape(named)):
            driver.register()
        with driver.connect() as connect:
            assert connect.get_config("relx") is None
    finally:
        drop_rel_x(driver)


def drop_rel_x(driver: PipelineDriver) -> None:
    kind = driver.sql("SELECT relkind FROM pg_class WHERE oid = to_regclass('public.rel_x')")
    if kind:
        driver.sql(f"DROP {'VIEW' if kind[0][0] == 'v' else 'TABLE'} public.rel_x")


def test_a_drain_while_kafka_connect_still_runs_the_connector_records_no_clean_end(stack_services, tmp_path):
    """A clean end says nothing more can arrive on that incarnation (a broker that loses its data after it is then
    no loss): with the connector still running on Kafka Connect that would be untrue, so the drain merges what there
    is and says why it records no clean end. With Connect stopped (unreachable here) it records one."""
    from cdc_pipeline.commands import operations
    from cdc_pipeline.kafka_connect import KafkaConnectClient

    driver = make(stack_services, tmp_path, "drain_running")
    result = operations.drain(driver.pipe, driver.services, run_label="running")
    assert "NOT recorded as a clean end: Kafka Connect still runs connector drain_running (RUNNING)" in result.message
    resume = driver.history.runs.resume_point()
    assert driver.history.incidents.incarnation(resume.incarnation).clean_end is None
    stopped = f"http://127.0.0.1:{free_port()}"
    connect_stopped = dataclasses.replace(driver.services, connect=lambda: KafkaConnectClient(stopped, timeout=2))
    result = operations.drain(driver.pipe, connect_stopped, run_label="stopped")
    assert result.message.endswith("recorded as a clean end")
    assert driver.history.incidents.incarnation(resume.incarnation).clean_end == resume.ends


def test_keys_under_icu_collations_are_in_order_by_order_byte_for_byte(stack_services, tmp_path):
    """A text key under an ICU collation (a single key under "es-x-icu", a composite one under a numeric-ordering
    collation of our own) is ordered as PostgreSQL's ORDER BY orders it: ICU's collator, ties by bytes. Through
    Debezium, after inserts, updates and deletes, destiny.csv is COPY ... ORDER BY the key, which is not the
    code-point order."""
    driver = PipelineDriver(stack_services.settings, write_connector(tmp_path, "icu_key", "public.icu_items", "ik"),
                            tmp_path / "data")
    driver.sql("DROP TABLE IF EXISTS public.icu_items")
    driver.sql('CREATE TABLE public.icu_items (k text COLLATE "es-x-icu" PRIMARY KEY, v int)')
    words = ["Ñandú", "nueces", "Zumos", "azúcar", "Árboles", "café", "Cafe", "cafe", "ch", "cz", "_x", "a-b", "ab",
             "a b", "ﬁn", "fin", "Ωmega", "ωmega", "日本", "e\u0301", "é", "10", "9"]
    driver.sql("INSERT INTO public.icu_items SELECT w, i FROM unnest(%s::text[]) WITH ORDINALITY AS t(w, i)", (words,))
    driver.register()
    driver.drain_until_equal("k")
    driver.sql("UPDATE public.icu_items SET v = v + 100 WHERE k IN ('café', 'Zumos')")
    driver.sql("DELETE FROM public.icu_items WHERE k IN ('cz', 'é')")
    driver.sql("INSERT INTO public.icu_items VALUES ('Ábaco', 1), ('zz', 2), ('CH', 3)")
    expected = driver.drain_until_equal("k")
    assert driver.destiny() == expected
    assert expected != driver.copy_csv('k COLLATE "C"')  # the order matters: not the code points'

    driver.sql("DROP COLLATION IF EXISTS public.numeric_icu")
    driver.sql("CREATE COLLATION public.numeric_icu (provider = icu, locale = 'en-u-kn-true')")
    numeric = PipelineDriver(stack_services.settings, write_connector(
        tmp_path / "numeric", "icu_numeric", "public.icu_parts", "inu"), tmp_path / "data2")
    numeric.sql("DROP TABLE IF EXISTS public.icu_parts")
    numeric.sql("CREATE TABLE public.icu_parts (part text COLLATE public.numeric_icu, rev int, v text, "
                "PRIMARY KEY (part, rev))")
    numeric.sql("INSERT INTO public.icu_parts SELECT 'part-' || g, g % 3, 'v' FROM generate_series(1, 40) g")
    numeric.register()
    numeric.sql("UPDATE public.icu_parts SET v = 'w' WHERE rev = 1")
    expected = numeric.drain_until_equal("part, rev")
    assert numeric.destiny() == expected
    assert b"part-2,2,v\npart-3,0,v\n" in expected and b"part-9,0,v\npart-10,1,w\n" in expected  # 9 < 10


def test_a_key_no_order_reproduces_is_refused_unless_code_point_order_is_accepted(stack_services, tmp_path):
    """A nondeterministic (case-insensitive) ICU collation calls distinct keys equal, and no byte order is
    ORDER BY's: registration refuses the key, naming it and both fixes. A connector file that accepts code-point
    order ("key_order": "code_point") registers, and destiny.csv is COPY ... ORDER BY k COLLATE "C" byte for
    byte."""
    driver = PipelineDriver(stack_services.settings, write_connector(tmp_path, "ci_key", "public.ci_items", "cik"),
                            tmp_path / "data")
    driver.sql("DROP TABLE IF EXISTS public.ci_items")
    driver.sql("DROP COLLATION IF EXISTS public.case_insensitive")
    driver.sql("CREATE COLLATION public.case_insensitive (provider = icu, locale = 'und-u-ks-level2', "
               "deterministic = false)")
    driver.sql("CREATE TABLE public.ci_items (k text COLLATE public.case_insensitive PRIMARY KEY, v int)")
    driver.sql("INSERT INTO public.ci_items VALUES ('b', 1), ('a', 3), ('_x', 4), ('ä', 5), ('C', 6)")
    with pytest.raises(SourceError, match=r"(?s)key column k uses the collation 'case_insensitive'.*COLLATE \"C\".*"
                                          r"\"key_order\": \"code_point\" in ci_key.json"):
        driver.register()
    accepted = PipelineDriver(stack_services.settings, write_connector(
        tmp_path / "accepted", "ci_key_cp", "public.ci_items", "cikc", key_order="code_point"), tmp_path / "data2")
    accepted.register()
    expected = accepted.drain_until_equal('k COLLATE "C"')
    assert accepted.destiny() == expected
    assert expected != accepted.copy_csv("k")  # the linguistic order is another one: the documented exception
