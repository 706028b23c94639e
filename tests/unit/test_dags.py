"""The DAG folder imports cleanly, cheaply, and every DAG follows the pipeline's policy (no Airflow services)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("pandas", "pyarrow", "numpy", "confluent_kafka", "psycopg", "orjson")


@pytest.fixture(scope="module")
def dag_bag(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("CDC_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    mp.setenv("CDC_CONNECTORS_DIR", str(REPO / "include" / "connectors"))
    mp.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    yield bag
    mp.undo()


def test_no_import_errors(dag_bag):
    assert dag_bag.import_errors == {}


def test_one_dag_per_connector_file(dag_bag):
    connectors = sorted(json.loads(p.read_text())["name"] for p in (REPO / "include" / "connectors").glob("*.json"))
    assert sorted(dag_bag.dag_ids) == sorted([f"cdc_{name}" for name in connectors] +
                                             [f"cdc_{name}_ops" for name in connectors] +
                                             [f"cdc_{name}_backfill" for name in connectors] + ["cdc_new_connector"])


def test_pipeline_policy(dag_bag):
    dag = dag_bag.dags["cdc_clientes"]
    assert dag.schedule == "* * * * *"  # cron: run ids are whole minutes
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert {"cdc", "debezium"} <= set(dag.tags)
    assert "register_connector" in dag.doc_md and "Operate" in dag.doc_md
    # Registration runs beside the drain, so an outage of the source never holds back consume and merge.
    assert dag.get_task("register_connector").upstream_task_ids == set()
    assert dag.get_task("consume_batch").upstream_task_ids == set()
    assert dag.get_task("merge_batch").upstream_task_ids == {"consume_batch"}
    finish = dag.get_task("finish_run")
    assert {"register_connector", "merge_batch"} <= finish.upstream_task_ids and finish.trigger_rule == "all_done"
    register = dag.get_task("register_connector")
    assert register.retries == 1 and register.retry_delay <= timedelta(seconds=10)
    for task_id in ("consume_batch", "merge_batch"):
        assert dag.get_task(task_id).retries >= 3
    assert finish.retries == 0
    assert all(task.multiple_outputs is False for task in dag.tasks)  # one summary XCom per task
    # The asset event comes from a task of its own that skips itself when destiny.csv did not change.
    assert dag.get_task("merge_batch").outlets == []
    publish = dag.get_task("publish_destiny")
    assert [o.name for o in publish.outlets] == ["cdc_clientes_destiny"]
    assert publish.upstream_task_ids == {"merge_batch"} and "publish_destiny" in finish.upstream_task_ids
    assert {"max_events", "start_from", "connector_timeout_seconds"} <= set(dag.params.keys())


def test_parsing_the_dag_file_imports_none_of_the_pipelines_heavy_dependencies(tmp_path):
    probe = (
        "import sys, runpy; runpy.run_path(sys.argv[1]);"
        f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    env = {"CDC_DATA_DIR": str(tmp_path), "CDC_CONNECTORS_DIR": str(REPO / "include" / "connectors"),
           "AIRFLOW_HOME": str(tmp_path / "home"), "PYTHONPATH": f"{REPO}:{REPO / 'plugins'}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", probe, str(REPO / "dags" / "cdc_pipelines.py")], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    (heavy,) = [line for line in result.stdout.splitlines() if line.startswith("HEAVY:")]
    assert heavy == "HEAVY:", f"imported at parse time: {heavy}"


@pytest.mark.parametrize(("imports", "expected"), [
    # finish_run and publish_destiny: the runners module alone
    ("import cdc_airflow.runners", ""),
    # a merge task: the state's libraries, not Kafka's nor PostgreSQL's clients
    ("import cdc_airflow.runners, cdc_pipeline.tasks.merge", "pandas,pyarrow,numpy,orjson"),
])
def test_a_task_process_imports_only_what_its_step_uses(tmp_path, imports, expected):
    probe = f"import sys; {imports}; print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    env = {"AIRFLOW_HOME": str(tmp_path / "home"), "PYTHONPATH": f"{REPO}:{REPO / 'plugins'}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    (heavy,) = [line for line in result.stdout.splitlines() if line.startswith("HEAVY:")]
    assert heavy == f"HEAVY:{expected}"


def test_a_broken_connector_file_gets_a_dag_that_says_why_and_the_others_still_load(tmp_path, monkeypatch):
    from cdc_airflow.dag_factory import build_dags
    from cdc_airflow.settings import DagSettings

    shutil.copy(REPO / "include" / "connectors" / "clientes.json", tmp_path / "clientes.json")
    document = json.loads((tmp_path / "clientes.json").read_text())
    document["config"] = document["config"] | {"database.password": "oops"}
    document["name"] = "leaky"
    (tmp_path / "leaky.json").write_text(json.dumps(document))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    dags = build_dags(DagSettings(connectors_dir=tmp_path, data_dir=tmp_path / "data"))
    assert set(dags) == {"cdc_clientes", "cdc_clientes_ops", "cdc_clientes_backfill", "cdc_leaky_invalid",
                         "cdc_new_connector"}
    assert "remove database.password" in dags["cdc_leaky_invalid"].doc_md


def test_verify_every_schedules_the_operations_dag_to_verify_and_without_it_the_dag_runs_only_when_triggered(
        tmp_path, monkeypatch):
    from cdc_airflow.dag_factory import build_dags
    from cdc_airflow.settings import DagSettings

    document = json.loads((REPO / "include" / "connectors" / "clientes.json").read_text())
    assert document["verify_every"] == "1d"  # the shipped file verifies daily
    document.pop("verify_every")
    (tmp_path / "clientes.json").write_text(json.dumps(document))
    (tmp_path / "audited.json").write_text(json.dumps({**document, "name": "audited", "verify_every": "6h"}))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    dags = build_dags(DagSettings(connectors_dir=tmp_path, data_dir=tmp_path / "data"))
    audited, plain = dags["cdc_audited_ops"], dags["cdc_clientes_ops"]
    assert audited.schedule == timedelta(hours=6) and audited.params["operation"] == "verify"
    assert plain.schedule is None and plain.params["operation"] == "status"


def test_a_refusal_fails_its_task_at_once_and_an_outage_keeps_its_retries(dag_bag):
    from airflow.sdk.definitions.retry_policy import RetryAction
    from cdc_airflow.task_runtime import RefusalExit, one_line_errors

    from cdc_pipeline.errors import ConfigError, DeadLettersError, NotCoveredYetError, SourceUnreachableError

    def exit_of(error: Exception) -> SystemExit:
        @one_line_errors
        def task():
            raise error

        with pytest.raises(SystemExit) as ended:
            task()
        return ended.value

    for dag_id, task_id in (("cdc_clientes", "register_connector"), ("cdc_clientes", "consume_batch"),
                            ("cdc_clientes", "merge_batch"), ("cdc_clientes_backfill", "backfill_interval")):
        policy = dag_bag.dags[dag_id].get_task(task_id).retry_policy
        for refusal in (ConfigError("start_from is only for a new pipeline"), DeadLettersError("poison")):
            ended = exit_of(refusal)
            assert isinstance(ended, RefusalExit)
            assert policy.evaluate(ended, try_number=1, max_tries=4).action == RetryAction.FAIL, task_id
        for transient in (SourceUnreachableError("PostgreSQL is down"), NotCoveredYetError("not read yet")):
            ended = exit_of(transient)
            assert not isinstance(ended, RefusalExit)
            assert policy.evaluate(ended, try_number=1, max_tries=4).action == RetryAction.DEFAULT, task_id


def test_publish_destiny_skips_unless_destiny_changed():
    from airflow.sdk.exceptions import AirflowSkipException

    from cdc_airflow import runners

    class Outlet:
        extra: dict | None = None

    outlet = Outlet()
    context = {"outlet_events": {"asset": outlet}}
    for merged in (None, {"events": 0, "destiny_changed": False}, {"events": 5, "destiny_changed": False}):
        with pytest.raises(AirflowSkipException, match="did not change"):
            runners.publish_destiny(context, "asset", merged)
    assert outlet.extra is None
    extra = runners.publish_destiny(context, "asset", {"events": 5, "inserted": 2, "updated": 3, "destiny_rows": 9,
                                                       "generation": "live/gen-000002", "destiny_changed": True})
    assert outlet.extra == extra == {"events": 5, "inserted": 2, "updated": 3, "deleted": 0, "truncated": 0,
                                     "destiny_rows": 9, "generation": "live/gen-000002"}


def test_backfills_go_to_a_dag_of_their_own_that_never_runs_by_itself(dag_bag):
    """The live DAG refuses backfills (reprocessing would clear its scheduled runs and rewrite their record); the
    backfill DAG walks the same cron ticks for a backfill and schedules nothing by itself."""
    import pendulum
    from airflow.timetables.base import TimeRestriction
    from cdc_airflow.backfill_timetable import BackfillOnlyTimetable

    live, backfill = dag_bag.dags["cdc_clientes"], dag_bag.dags["cdc_clientes_backfill"]
    assert {t.value for t in live.allowed_run_types} == {"scheduled", "manual"}
    assert backfill.task_ids == ["backfill_interval"] and "backfill_interval" not in live.task_ids
    timetable = backfill.timetable
    assert isinstance(timetable, BackfillOnlyTimetable) and timetable.periodic and not timetable.can_be_scheduled
    start, end = pendulum.datetime(2026, 12, 6, 12, 0), pendulum.datetime(2026, 12, 6, 12, 3)  # as Airflow passes them
    ticks, info = [], None
    while info := timetable.next_dagrun_info(last_automated_data_interval=info and info.data_interval,
                                             restriction=TimeRestriction(start, end, catchup=True)):
        ticks.append(info.logical_date.strftime("%H:%M"))
    assert ticks == ["12:00", "12:01", "12:02", "12:03"]
    assert timetable.next_dagrun_info(last_automated_data_interval=None,
                                      restriction=TimeRestriction(start, None, catchup=False)) is None
    assert timetable.summary == "backfills only (* * * * *)" and "_backfill" in live.doc_md


def test_the_operations_form_names_each_operation_and_sets_apart_the_fields_few_use(dag_bag):
    params = dag_bag.dags["cdc_clientes_ops"].params
    operation = params.get_param("operation").schema
    assert operation["values_display"]["resnapshot"].startswith("resnapshot (needs Confirm): ")
    assert "needs Confirm" not in operation["values_display"]["verify"]
    sections = {name: params.get_param(name).schema.get("section") for name in ("date", "run_id", "confirm")}
    assert sections == {"date": "Only for reset_to_date", "run_id": "Only for reset_to_run",
                        "confirm": "Only for operations that change the pipeline"}
    assert params.get_param("operation").schema.get("section") is None  # the one field every operation needs


def test_a_backfill_run_of_the_backfill_dag_covers_the_minute_before_its_logical_date(dag_bag):
    """The backfill DAG's schedule is a timetable, not a cron string: its interval start comes from the
    timetable's own cron expression."""
    from datetime import UTC, datetime

    from cdc_airflow.backfill_runner import previous_tick

    dag = dag_bag.dags["cdc_clientes_backfill"]
    assert previous_tick(dag, datetime(2026, 12, 6, 4, 36, tzinfo=UTC)) == datetime(2026, 12, 6, 4, 35, tzinfo=UTC)


def test_a_connector_with_a_queue_runs_every_task_of_its_dags_on_that_queue_and_the_others_on_the_default(
        tmp_path, monkeypatch):
    from cdc_airflow.dag_factory import build_dags
    from cdc_airflow.settings import DagSettings

    clientes = json.loads((REPO / "include" / "connectors" / "clientes.json").read_text())
    tienda = json.loads((REPO / "include" / "connectors" / "tienda.json").read_text())
    (tmp_path / "clientes.json").write_text(json.dumps({**clientes, "queue": "host-a"}))
    (tmp_path / "tienda.json").write_text(json.dumps({**tienda, "queue": "host-b"}))
    (tmp_path / "plain.json").write_text(json.dumps({**clientes, "name": "plain"}))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    dags = build_dags(DagSettings(connectors_dir=tmp_path, data_dir=tmp_path / "data"))
    queues = {dag_id: {task.queue for task in dag.tasks} for dag_id, dag in dags.items()}
    for suffix in ("", "_ops", "_backfill"):
        assert queues[f"cdc_clientes{suffix}"] == {"host-a"}
        assert queues[f"cdc_tienda{suffix}"] == {"host-b"}  # the mapped per-table tasks too
        assert queues[f"cdc_plain{suffix}"] == {"default"}
    assert queues["cdc_new_connector"] == {"default"}
    # The queue adds to the retry policy, it does not replace it.
    assert dags["cdc_clientes"].get_task("consume_batch").retries == dags["cdc_plain"].get_task("consume_batch").retries
