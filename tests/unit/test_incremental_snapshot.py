"""One table re-snapshots alone: the connector's signal settings, the signal ids, what Debezium's notifications say,
the offsets that still list a table, the recovery's signal in runs.sqlite, and the placeholder count of a state."""

import json

import orjson
import pytest

from cdc_pipeline.connector_spec import load_connector_spec
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.history import History
from cdc_pipeline.kafka.signals import Notification, new_signal_id, parse_notification, signal_time_us
from cdc_pipeline.recovery.incremental import (SILENCE_S, UNHEARD_S, rebuilds_alone, table_snapshot_verdict,
                                               tables_still_snapshotting)
from tests.unit.test_connector_spec import base_config, write

T0 = 1_780_000_000_000_000  # microseconds


def note(kind: str, signal: str, **data) -> Notification:
    return Notification(signal, kind, "Incremental Snapshot", {k: str(v) for k, v in data.items()},
                        (signal_time_us(signal) or 0) // 1000 + 50)


def test_a_connector_of_several_tables_gets_kafka_signals_and_notifications_one_table_gets_none(tmp_path):
    many = load_connector_spec(write(tmp_path, base_config() | {"table.include.list": "public.a,public.b"}, name="shop"))
    config = many.config_for_source(host="h", port=5432, user="u", dbname="d")
    assert config["signal.enabled.channels"] == "kafka" and config["read.only"] == "true"
    assert config["signal.kafka.topic"] == "pgserver1.cdc-signals" == many.signal_topic
    assert config["notification.enabled.channels"] == "sink"
    assert config["notification.sink.topic.name"] == "pgserver1.cdc-notifications" == many.notification_topic
    assert config["signal.kafka.bootstrap.servers"] == "${env:CDC_SIGNAL_BOOTSTRAP_SERVERS}"
    assert config["signal.kafka.groupId"] == "cdc-signals.shop"
    one = load_connector_spec(write(tmp_path, base_config(), name="one"))
    assert not any(k.startswith(("signal.", "notification.")) or k == "read.only"
                   for k in one.config_for_source(host="h", port=5432, user="u", dbname="d"))
    assert rebuilds_alone(many, "schema_change") and rebuilds_alone(many, "operator")
    assert not rebuilds_alone(many, "upgrade") and not rebuilds_alone(one, "schema_change")


@pytest.mark.parametrize("key", ["signal.enabled.channels", "signal.kafka.topic", "notification.enabled.channels",
                                 "read.only"])
def test_the_signal_settings_are_the_pipelines_own(tmp_path, key):
    with pytest.raises(ConfigError, match=f"remove {key}.*re-snapshot alone"):
        load_connector_spec(write(tmp_path, base_config() | {key: "x"}))


def test_signal_ids_sort_by_time_and_foreign_ids_are_not_ours():
    first, second = new_signal_id(T0), new_signal_id(T0 + 1)
    assert signal_time_us(first) == T0 and signal_time_us(second) == T0 + 1 and first < second
    assert signal_time_us("ad-hoc") is None and signal_time_us(None) is None and signal_time_us("cdc-12") is None


def test_a_notification_is_read_with_or_without_the_converters_schema():
    payload = {"id": "cdc-1", "aggregate_type": "Incremental Snapshot", "type": "TABLE_SCAN_COMPLETED",
               "additional_data": {"scanned_collection": "public.a", "status": "SUCCEEDED"}, "timestamp": 5}
    for value in (orjson.dumps(payload), orjson.dumps({"schema": {}, "payload": payload})):
        parsed = parse_notification(value)
        assert (parsed.id, parsed.type, parsed.data["status"], parsed.timestamp_ms) == ("cdc-1", "TABLE_SCAN_COMPLETED",
                                                                                        "SUCCEEDED", 5)
    assert parse_notification(b"not json") is None and parse_notification(None) is None
    assert parse_notification(b'{"hello": 1}') is None


def test_scanned_needs_the_table_scan_and_the_end_under_this_signal_or_a_later_one():
    ours, later, earlier = new_signal_id(T0), new_signal_id(T0 + 10), new_signal_id(T0 - 10)
    now = T0 // 1000 + 1000
    scan = note("TABLE_SCAN_COMPLETED", ours, scanned_collection="public.a", status="SUCCEEDED")
    assert table_snapshot_verdict([scan], ours, "public.a", now_ms=now).state == "waiting"
    assert table_snapshot_verdict([scan, note("COMPLETED", ours)], ours, "public.a", now_ms=now).state == "scanned"
    # Another table's signal came after ours: Debezium's notifications now carry its id.
    moved_on = [note("TABLE_SCAN_COMPLETED", later, scanned_collection="public.a", status="EMPTY"),
                note("COMPLETED", later)]
    assert table_snapshot_verdict(moved_on, ours, "public.a", now_ms=now).state == "scanned"
    # What an earlier snapshot of the table said counts for nothing.
    old = [note("TABLE_SCAN_COMPLETED", earlier, scanned_collection="public.a", status="SUCCEEDED"),
           note("COMPLETED", earlier)]
    assert table_snapshot_verdict(old, ours, "public.a", now_ms=now).detail == "signal sent, not acted on yet"


def test_a_snapshot_that_ended_without_the_table_or_was_aborted_is_asked_again_and_a_failure_is_loud():
    ours = new_signal_id(T0)
    now = T0 // 1000 + 1000
    other = [note("TABLE_SCAN_COMPLETED", ours, scanned_collection="public.b", status="SUCCEEDED"),
             note("COMPLETED", ours)]
    verdict = table_snapshot_verdict(other, ours, "public.a", now_ms=now)
    assert (verdict.state, verdict.detail) == ("again", "Debezium's snapshot ended without scanning public.a")
    skipped = [note("TABLE_SCAN_COMPLETED", ours, scanned_collection="public.a", status="UNKNOWN_SCHEMA"),
               note("COMPLETED", ours)]
    assert table_snapshot_verdict(skipped, ours, "public.a", now_ms=now).state == "again"
    # The task's connection closed under the scan (a signal read while the task restarted): asked again.
    closed = [note("TABLE_SCAN_COMPLETED", ours, scanned_collection="public.a", status="SQL_EXCEPTION"),
              note("COMPLETED", ours)]
    verdict = table_snapshot_verdict(closed, ours, "public.a", now_ms=now)
    assert verdict.state == "again" and "SQL_EXCEPTION" in verdict.detail
    broken = [note("TABLE_SCAN_COMPLETED", ours, scanned_collection="public.a", status="NO_PRIMARY_KEY"),
              note("COMPLETED", ours)]
    verdict = table_snapshot_verdict(broken, ours, "public.a", now_ms=now)
    assert verdict.state == "failed" and "NO_PRIMARY_KEY" in verdict.detail
    aborted = [note("TABLE_SCAN_COMPLETED", ours, scanned_collection="public.a", status="SUCCEEDED"),
               note("ABORTED", ours, data_collections="public.a,public.b")]
    assert table_snapshot_verdict(aborted, ours, "public.a", now_ms=now).state == "again"


def test_silence_after_a_signal_means_it_was_lost():
    ours = new_signal_id(T0)
    sent_ms = T0 // 1000
    assert table_snapshot_verdict([], ours, "public.a", now_ms=sent_ms + 1000).state == "waiting"
    verdict = table_snapshot_verdict([], ours, "public.a", now_ms=sent_ms + UNHEARD_S * 1000 + 1)
    assert verdict.state == "again" and "did not act on the signal" in verdict.detail
    started = [note("STARTED", ours, data_collections="public.a")]  # heard at once: a long scan may go quiet
    assert table_snapshot_verdict(started, ours, "public.a", now_ms=sent_ms + 2000).detail == "scan in progress"
    assert table_snapshot_verdict(started, ours, "public.a", now_ms=sent_ms + UNHEARD_S * 5000).state == "waiting"
    verdict = table_snapshot_verdict(started, ours, "public.a", now_ms=sent_ms + SILENCE_S * 1000 + 1000)
    assert verdict.state == "again" and "no word" in verdict.detail


def test_the_committed_offsets_tell_which_tables_are_still_being_snapshotted():
    listed = json.dumps([{"incremental_snapshot_collections_id": "public.a",
                          "incremental_snapshot_collections_additional_condition": None}])
    assert tables_still_snapshotting([{"offset": {"lsn": 5, "incremental_snapshot_collections": listed}}]) == {"public.a"}
    assert tables_still_snapshotting([{"offset": {"lsn": 5}}]) == set()
    assert tables_still_snapshotting(None) == set() and tables_still_snapshotting([]) == set()
    assert tables_still_snapshotting([{"offset": {"incremental_snapshot_collections": "{broken"}}]) == {"?"}


def test_a_signal_is_recorded_and_sending_it_again_asks_for_a_new_confirmation(tmp_path):
    incidents = History.open(tmp_path / "runs.sqlite").incidents
    rid = incidents.start_recovery(run_id="a", reason="operator", detail="x", lost=None, epoch=2)
    assert not incidents.active_recovery().incremental
    incidents.recovery_signaled(rid, "cdc-1")
    incidents.recovery_step(rid, "snapshot_confirmed")
    assert incidents.active_recovery().snapshot_confirmed_at is not None
    incidents.recovery_signaled(rid, "cdc-2")
    again = incidents.active_recovery()
    assert (again.step, again.signal_id, again.signals, again.snapshot_confirmed_at) == ("signaled", "cdc-2", 2, None)
    assert again.incremental


def test_a_rebuilt_state_holding_a_toast_placeholder_is_read_again_before_it_is_promoted(tmp_path):
    """A row changed inside its chunk's window without its TOASTed value, and never read whole after: the merge
    does not promote, the recovery asks for a read again; once a full read replaced the placeholder, it promotes."""
    from types import SimpleNamespace

    from cdc_pipeline.debezium.events import UNAVAILABLE_VALUE
    from cdc_pipeline.history import RunRef
    from cdc_pipeline.layout import PipelineLayout
    from cdc_pipeline.state import StateStore
    from cdc_pipeline.tasks.merge import _promote_if_complete
    from tests.unit.test_state_support import CLIENTES, events

    layout = PipelineLayout(tmp_path / "clientes")
    store = StateStore(layout)
    store.create(CLIENTES)
    store.apply(events(("c", "1", "old", "x", 10, 0, 0)))
    store.create(CLIENTES, lineage="rebuild", epoch=1)
    store.apply(events(("u", "1", UNAVAILABLE_VALUE, "y", 50, 0, 1), ("r", "2", "two", "x", 50, 0, 2)), lineage="rebuild")
    assert store.rows_with_value(store.rebuild(), UNAVAILABLE_VALUE) == 1
    history = History.open(layout.history)
    rid = history.incidents.start_recovery(run_id=None, reason="operator", detail="x", lost=None, epoch=1)
    history.incidents.recovery_signaled(rid, "cdc-1")
    history.incidents.recovery_step(rid, "snapshot_read")
    pipe = SimpleNamespace(history=history, layout=layout, spec=SimpleNamespace(qualified_table="public.clientes"))
    run = RunRef("manual__t", 1, 1)
    assert _promote_if_complete(pipe, store, run, "rebuild", frozenset()) is None
    assert history.incidents.active_recovery().step == "reread_needed" and store.rebuild() is not None
    assert layout.destiny.read_text() == "id,nombre,email\n1,old,x\n"  # the live table is untouched
    store.apply(events(("r", "1", "ana", "y", 60, 0, 3)), lineage="rebuild")  # the read again
    history.incidents.recovery_signaled(rid, "cdc-2")
    history.incidents.recovery_step(rid, "snapshot_read")
    assert "complete" in _promote_if_complete(pipe, store, run, "rebuild", frozenset())
    assert layout.destiny.read_text() == "id,nombre,email\n1,ana,y\n2,two,x\n"


def test_a_loss_of_every_topic_rebuilds_the_whole_connector_a_loss_of_one_only_its_table(monkeypatch):
    from types import SimpleNamespace

    from cdc_pipeline.history import Incarnation
    from cdc_pipeline.kafka.topic import TopicState
    from cdc_pipeline.recovery import rebuild

    def table(name, topic_id):
        incidents = SimpleNamespace(latest_incarnation=lambda: Incarnation(1, name, topic_id, None))
        return SimpleNamespace(spec=SimpleNamespace(topic=name), history=SimpleNamespace(incidents=incidents))

    a, b, c = table("a", "id-a"), table("b", "id-b"), table("c", "id-c")
    a.siblings = lambda: [b, c]
    broker = {}
    monkeypatch.setattr(rebuild, "inspect_topic", lambda _kafka, name: broker[name])
    broker.update(a=TopicState("a", True, "new-a"), b=TopicState("b", False), c=TopicState("c", True, "new-c"))
    assert rebuild._every_topic_lost(a, kafka=None)
    broker["c"] = TopicState("c", True, "id-c")  # c's topic is the one its history knows
    assert not rebuild._every_topic_lost(a, kafka=None)


def test_a_table_rebuild_that_crashed_before_its_signal_is_started_again(tmp_path, monkeypatch):
    import contextlib
    import sqlite3
    from types import SimpleNamespace

    from cdc_pipeline.recovery import incremental

    history = History.open(tmp_path / "runs.sqlite")
    fresh = history.incidents.start_recovery(run_id=None, reason="schema_change", detail="c added", lost=None, epoch=2)
    pipe = SimpleNamespace(history=history, spec=SimpleNamespace(qualified_table="public.a"),
                           table_description=lambda: "described")
    started = []
    monkeypatch.setattr(incremental, "rebuild_locks", lambda _pipe: contextlib.nullcontext())
    monkeypatch.setattr(incremental, "start_table_rebuild",
                        lambda pipe, **kw: started.append(kw) or SimpleNamespace(id=99))
    kafka = lambda: contextlib.nullcontext("clients")  # noqa: E731
    assert incremental.confirm_table_snapshots([pipe], connect=None, kafka_factory=kafka, whole_rebuild=None) == {}  # seconds old: its step runs
    with sqlite3.connect(tmp_path / "runs.sqlite") as db:
        db.execute("UPDATE recoveries SET started_at = '2026-01-01T00:00:00.000+00:00' WHERE id = ?", (fresh,))
    lines = incremental.confirm_table_snapshots([pipe], connect=None, kafka_factory=kafka, whole_rebuild=None)
    assert "never signaled" in lines["public.a"] and started[0]["reason"] == "schema_change"
    assert started[0]["kafka"] == "clients" and "c added" in started[0]["detail"]
    history.incidents.recovery_step(fresh, "resumed")  # a whole rebuild that moved on is left alone
    started.clear()
    assert incremental.confirm_table_snapshots([pipe], connect=None, kafka_factory=kafka, whole_rebuild=None) == {} and not started


def test_after_five_signals_that_never_completed_the_whole_connector_re_snapshots(tmp_path, monkeypatch):
    import contextlib
    from types import SimpleNamespace

    from cdc_pipeline.recovery import incremental

    history = History.open(tmp_path / "runs.sqlite")
    rid = history.incidents.start_recovery(run_id=None, reason="operator", detail="asked", lost=None, epoch=2)
    for _ in range(incremental.MAX_SIGNALS - 1):
        history.incidents.recovery_signaled(rid, new_signal_id())
    ours = new_signal_id()
    history.incidents.recovery_signaled(rid, ours)
    spec = SimpleNamespace(qualified_table="public.a", notification_topic="n", signal_topic="s",
                           config={"topic.prefix": "p"})
    pipe = SimpleNamespace(history=history, spec=spec, table_description=lambda: "described")
    dropped = [note("TABLE_SCAN_COMPLETED", ours, scanned_collection="public.b", status="SUCCEEDED"),
               note("COMPLETED", ours)]  # Debezium ended without our table, a fifth time
    monkeypatch.setattr(incremental, "read_notifications", lambda clients, topic, since: dropped)
    monkeypatch.setattr(incremental, "rebuild_locks", lambda _pipe: contextlib.nullcontext())
    whole = []
    lines = incremental.confirm_table_snapshots(
        [pipe], connect="connect", kafka_factory=lambda: contextlib.nullcontext("clients"),
        whole_rebuild=lambda pipe, **kw: whole.append(kw) or SimpleNamespace(id=8))
    assert "the whole connector re-snapshots instead" in lines["public.a"] and lines["public.a"].startswith("rebuild 8")
    assert whole[0]["reason"] == "operator" and whole[0]["connect"] == "connect" and whole[0]["kafka"] == "clients"
