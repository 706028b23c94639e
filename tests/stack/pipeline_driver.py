"""Drive the pipeline's tasks against the real local services, without Airflow."""

from __future__ import annotations

import json
from pathlib import Path


from cdc_pipeline.connector_spec import load_connector_spec
from cdc_pipeline.history import History, RunRef
from cdc_pipeline.kafka.client import KafkaClients
from cdc_pipeline.kafka.topic import topic_partitions, watermarks
from cdc_pipeline.kafka_connect import KafkaConnectClient
from cdc_pipeline.pipeline import Pipeline, connector_pipelines
from cdc_pipeline.source.checks import SourceParams
from cdc_pipeline.tasks.consume import consume_batch
from cdc_pipeline.tasks.consume_tables import consume_tables
from cdc_pipeline.tasks.merge import merge_batch
from cdc_pipeline.tasks.register import register_connector
from cdc_pipeline.services import Services
from cdc_pipeline.waiting import WaitTimeout, wait_until
from tests.stack.peek import copy_table

REPO = Path(__file__).resolve().parents[2]
PASSWORD_REFERENCE = "${env:CDC_CAPTURE_PASSWORD}"


def write_connector(folder: Path, name: str, table: str, prefix: str, *, partitions: int = 4, **settings) -> Path:
    """A connector file like the shipped one, for another table, slot and topic prefix; ``settings`` are
    top-level pipeline settings (on_data_loss, sinks, ...). The topic gets ``partitions`` partitions (Kafka
    Connect creates it so): several by default, so that every test crosses partitions as a team's may."""
    shipped = json.loads((REPO / "include" / "connectors" / "clientes.json").read_text())
    config = dict(shipped["config"])
    config.update({"table.include.list": table, "topic.prefix": prefix, "slot.name": f"slot_{name}",
                   "publication.name": f"pub_{name}", "topic.creation.default.partitions": str(partitions)})
    # The shipped file verifies daily; a test's pipeline verifies only when the test asks (a scheduled operations
    # run would compete with the operations a test triggers).
    document = {"name": name, **{k: v for k, v in shipped.items() if k not in ("name", "config", "verify_every")},
                **settings, "config": config}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(document, indent=2))
    return path


def drained_pipeline(settings, tmp_path: Path, name: str, *, columns: str = "id int PRIMARY KEY, v text",
                     rows: str = "g, 'v' || g", count: int = 10, config: dict[str, str] | None = None,
                     **connector_settings) -> PipelineDriver:
    """A pipeline of its own: table ``public.<name>`` made anew with ``columns`` and ``count`` rows (``rows`` over
    ``generate_series(1, count) g``), its connector file (``config`` added to the connector's config;
    ``connector_settings`` as write_connector takes them) registered, and drained until destiny.csv equals COPY."""
    path = write_connector(tmp_path / "connectors", name, f"public.{name}", name.replace("_", ""), **connector_settings)
    if config:
        document = json.loads(path.read_text())
        document["config"].update(config)
        path.write_text(json.dumps(document, indent=2))
    driver = PipelineDriver(settings, path, tmp_path / "data")
    driver.sql(f"DROP TABLE IF EXISTS public.{name}")
    driver.sql(f"CREATE TABLE public.{name} ({columns})")
    driver.sql(f"INSERT INTO public.{name} SELECT {rows} FROM generate_series(1, {count}) g")
    driver.register()
    assert driver.drain_until_equal("id") == driver.destiny()
    return driver


CREATED: list[PipelineDriver] = []  # retired at the end of each test module (tests/stack/conftest.py)


class PipelineDriver:
    def __init__(self, settings, connector_path: Path, data_dir: Path, group: str | None = None) -> None:
        self.settings = settings
        self.spec = load_connector_spec(connector_path)
        self.pipe = Pipeline.under(data_dir, self.spec)
        self.pipes = connector_pipelines(data_dir, self.spec)  # what register checks: every table
        self.layout = self.pipe.layout
        self.group = group or f"test.{self.spec.name}"
        self.runs = 0
        CREATED.append(self)

    @property
    def history(self) -> History:
        return History.open(self.layout.history)

    @property
    def source(self) -> SourceParams:
        """The pipeline's role (least privilege), as the cdc_postgres connection gives it."""
        s = self.settings
        return SourceParams(s.pg_host, s.pg_port, s.capture_user, s.capture_password, s.pg_db)

    @property
    def admin(self) -> SourceParams:
        """The administrator: what the tests do to the source as its application would, and the publication."""
        s = self.settings
        return SourceParams(s.pg_host, s.pg_port, s.pg_user, s.pg_password, s.pg_db)

    def sql(self, statement: str, params=None):
        with self.admin.connect(autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else None

    def copy_csv(self, order_by: str) -> bytes:
        with self.admin.connect() as conn:
            return copy_table(conn, self.spec.qualified_table, order_by)

    def kafka(self, group: str | None = None) -> KafkaClients:
        return KafkaClients({"bootstrap.servers": self.settings.kafka_bootstrap}, group or self.group)

    def connect(self) -> KafkaConnectClient:
        return KafkaConnectClient(self.settings.connect_url)

    @property
    def services(self) -> Services:
        """What the Airflow tasks build from their connections, from the stack's settings (the test's own group)."""
        return Services(kafka=lambda name: self.kafka(), connect=self.connect, source=lambda: self.source,
                        password_reference=PASSWORD_REFERENCE, admin=lambda: self.admin)

    def connector_config(self) -> dict[str, str]:
        return self.services.connector_config(self.spec)

    def register(self, run: RunRef | None = None) -> dict:
        return register_connector(self.pipes, self.services, run or self.next_run())

    def consume(self, run: RunRef, max_events: int = 10_000, **kwargs) -> dict:
        return consume_batch(self.pipe, self.services, run, max_events=max_events, **kwargs)

    def merge(self, run: RunRef) -> dict:
        return merge_batch(self.pipe, run)

    def next_run(self) -> RunRef:
        self.runs += 1
        return RunRef(f"manual__test-{self.spec.name}-{self.runs:04d}", 1, 1, "2026-11-24T00:00:00+00:00",
                      "2026-11-24T00:01:00+00:00")

    def run_once(self, max_events: int = 10_000) -> tuple[dict, dict]:
        run = self.next_run()
        consumed = self.consume(run, max_events=max_events)
        return consumed, self.merge(run)

    def published_count(self) -> int:
        """Records published to the topic so far: the sum of its partitions' end offsets. Not what the topic still
        holds: a test that shortens retention would otherwise wait for records the broker already deleted."""
        with self.kafka("test.peek") as kafka:
            partitions = topic_partitions(kafka, self.spec.topic) or []
            return sum(watermarks(kafka, self.spec.topic, p)[1] for p in partitions)

    def alter_topic(self, settings: dict[str, str | None]) -> None:
        """Set the topic's own settings (``None`` removes one, back to the broker's default), as
        ``kafka-configs.sh --alter`` would."""
        from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

        entries = [ConfigEntry(name, value or "",
                               incremental_operation=AlterConfigOpType.DELETE if value is None else AlterConfigOpType.SET)
                   for name, value in settings.items()]
        with self.kafka("test.peek") as kafka:
            resource = ConfigResource(ResourceType.TOPIC, self.spec.topic, incremental_configs=entries)
            for future in kafka.admin.incremental_alter_configs([resource]).values():
                future.result()

    def delete_records(self, topic: str | None = None) -> dict[int, int]:
        """Kafka's DeleteRecords up to each partition's high watermark, as retention or an administrator would:
        every record now in the topic (default: the first table's) is gone, the offsets go on. Answers the new log
        start per partition."""
        from confluent_kafka import TopicPartition

        topic = topic or self.spec.topic
        with self.kafka("test.peek") as kafka:
            partitions = topic_partitions(kafka, topic) or []
            ends = {p: watermarks(kafka, topic, p)[1] for p in partitions}
            futures = kafka.admin.delete_records([TopicPartition(topic, p, end) for p, end in ends.items()],
                                                 request_timeout=30)
            for future in futures.values():
                future.result()
            return {p: watermarks(kafka, topic, p)[0] for p in partitions}

    def wait_for_records(self, at_least: int, timeout: float = 60.0) -> int:
        """Wait until Debezium has published at least this many records to the topic."""
        return wait_until(lambda: (n := self.published_count()) >= at_least and n,
                          what=f"{at_least} records in {self.spec.topic}", timeout=timeout, interval=0.5)

    def destiny(self) -> bytes:
        path = self.layout.destiny
        return path.read_bytes() if path.exists() else b""

    def drain_until_equal(self, order_by: str, *, max_events: int = 10_000, timeout: float = 120.0) -> bytes:
        """Run consume+merge until destiny.csv equals COPY's output, or the deadline; answer COPY's bytes."""
        expected = self.copy_csv(order_by)

        def settled() -> bool | Exception:
            try:
                self.run_once(max_events)
            except Exception as exc:  # noqa: BLE001 - a failing run ends the wait and is raised below
                return exc
            return self.destiny() == expected

        try:
            outcome = wait_until(settled, what=f"{self.layout.destiny} to equal COPY of {self.spec.qualified_table}",
                                 timeout=timeout, interval=1.0)
        except WaitTimeout:
            return expected  # the caller's byte comparison shows the difference
        if isinstance(outcome, Exception):
            raise outcome
        return expected

    def retire(self) -> None:
        """Delete the connector and drop its replication slot once the connector let go of it: the session's
        cluster has a fixed number of slots, and each connector left running costs the Connect worker too."""
        def dropped() -> bool:
            with self.connect() as connect:
                connect.delete(self.spec.name)  # again each time: a run in flight may have registered it once more
            rows = self.sql("SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = %s",
                            (self.spec.slot_name,))
            if rows and rows[0][0]:
                # The deleted connector's task lets go of the slot only once the worker has stopped it (seconds on
                # the distributed worker): end its walsender instead of waiting.
                self.sql("SELECT pg_terminate_backend(%s)", (rows[0][1],))
            elif rows:
                self.sql("SELECT pg_drop_replication_slot(%s)", (self.spec.slot_name,))
            return not rows

        wait_until(dropped, what=f"replication slot {self.spec.slot_name} to be dropped", timeout=120, interval=1)

    def converge(self, order_by: str, *, timeout: float = 240.0, max_events: int = 10_000) -> bytes:
        """Run as the DAG would (register, consume, merge) until no rebuild is pending and destiny.csv equals
        COPY; answer COPY's bytes (the caller compares, so a failure shows the difference)."""
        return self._run_until(lambda: self.destiny() == self.copy_csv(order_by), lambda: self.copy_csv(order_by),
                               what=f"{self.spec.name} to converge on COPY", timeout=timeout, max_events=max_events)

    def _run_until(self, identical, answer, *, what: str, timeout: float, max_events: int):
        """register + one run, again, until no table rebuilds and ``identical()``; then ``answer()``."""
        def settled() -> bool | Exception:
            try:
                self.register()
                self.run_once(max_events)
            except Exception as exc:  # noqa: BLE001 - a failing run ends the wait and is raised below
                return exc
            rebuilding = any(p.history.incidents.active_recovery() is not None for p in self.pipes)
            return not rebuilding and identical()

        try:
            outcome = wait_until(settled, what=what, timeout=timeout, interval=1.0)
        except WaitTimeout:
            return answer()
        if isinstance(outcome, Exception):
            raise outcome
        return answer()

class ConnectorDriver(PipelineDriver):
    """A connector of several tables, driven as its DAG drives it: register and consume once for every table,
    merge each table that has something to merge. ``self.pipe`` is the first table's pipeline."""

    def __init__(self, settings, connector_path: Path, data_dir: Path, group: str | None = None) -> None:
        super().__init__(settings, connector_path, data_dir, group)
        self.data_dir = data_dir

    def table(self, qualified: str) -> Pipeline:
        return next(p for p in self.pipes if p.spec.qualified_table == qualified)

    def register(self, run: RunRef | None = None) -> dict:
        """As register_tables does: a table list with patterns is expanded against the catalog first."""
        if self.spec.patterns:
            from cdc_pipeline.source.checks import expand_table_patterns

            self.spec = expand_table_patterns(self.source, load_connector_spec(self.spec.path))
            self.pipes = connector_pipelines(self.data_dir, self.spec)
            self.pipe, self.layout = self.pipes[0], self.pipes[0].layout
        return super().register(run)

    def consume(self, run: RunRef, max_events: int = 10_000, **kwargs) -> dict:
        return consume_tables(self.pipes, self.services, run, max_events=max_events, **kwargs)

    def run_once(self, max_events: int = 10_000) -> tuple[dict, dict]:
        run = self.next_run()
        consumed = self.consume(run, max_events=max_events)
        merged = {name: merge_batch(self.table(name), run) for name in consumed["to_merge"]}
        return consumed, merged

    def copy_table(self, qualified: str, order_by: str) -> bytes:
        return PipelineDriver.copy_csv(_Scoped(self, qualified), order_by)

    def destinies(self) -> dict[str, bytes]:
        return {p.spec.qualified_table: p.layout.destiny.read_bytes() if p.layout.destiny.exists() else b""
                for p in self.pipes}

    def copies(self, order_by: dict[str, str]) -> dict[str, bytes]:
        return {table: self.copy_table(table, order_by[table]) for table in self.spec.table_names}

    def converge_tables(self, order_by: dict[str, str], *, timeout: float = 300.0, max_events: int = 10_000
                        ) -> dict[str, bytes]:
        """Run as the DAG would until no table rebuilds and every destiny.csv equals COPY of its table; answer
        COPY's bytes per table (the caller compares, so a failure shows the difference)."""
        return self._run_until(lambda: self.destinies() == self.copies(order_by), lambda: self.copies(order_by),
                               what=f"every table of {self.spec.name} to converge on COPY", timeout=timeout,
                               max_events=max_events)

class _Scoped:
    """What PipelineDriver.copy_csv reads: the source and one table's spec."""

    def __init__(self, driver: ConnectorDriver, qualified: str) -> None:
        self.source, self.admin = driver.source, driver.admin
        self.spec = driver.spec.for_table(qualified)
