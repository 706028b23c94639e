"""Live answers for the status strip, asked from the api-server: backlog from Kafka, the connector from Kafka
Connect, the replication slot from PostgreSQL, the DAG's paused flag from Airflow's metadata database.

The api-server reads Airflow connections like the tasks do, through the Task SDK's ``BaseHook.get_connection``:
``airflow.api_fastapi.main`` marks the process as a server (``_AIRFLOW_PROCESS_CONTEXT=server``), so the SDK
looks in the environment (``AIRFLOW_CONN_*``), external secrets backends and the metadata database (checked
in airflow/sdk/execution_time/supervisor.py, Airflow 3.3.2; the browser test asks through it). A connection
that is missing or a service that does not answer costs the page only that cell: the status says which
service could not be asked and why.

The three services are asked at once in a small thread pool (never on the event loop), a page waits at most
``PROBE_SECONDS``, and an answer (or failure) is reused for ``ANSWER_SECONDS`` so auto-refresh and several
viewers do not multiply the load; a question still in flight is joined, never asked twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor, TimeoutError as FutureTimeout
from typing import Any

from cdc_pipeline.connector_spec import ConnectorSpec
from cdc_pipeline.commands.status import Backlog, Probes, kafka_backlog

PROBE_SECONDS = 4.0     # how long a page waits for the services
ANSWER_SECONDS = 10.0   # how long an answer is reused


class LiveAnswers:
    """Questions to the services, each asked at most once per ``ttl`` seconds and never twice at a time."""

    def __init__(self, ttl: float = ANSWER_SECONDS, workers: int = 6) -> None:
        self.ttl = ttl
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cdc-dashboard-probe")
        self._asked: dict[Hashable, tuple[float, Future]] = {}
        self._lock = threading.Lock()

    def ask(self, key: Hashable, question: Callable[[], Any]) -> Future:
        now = time.monotonic()
        with self._lock:
            asked = self._asked.get(key)
            if asked is not None and (not asked[1].done() or now - asked[0] < self.ttl):
                return asked[1]
            future = self._pool.submit(question)
            self._asked[key] = (now, future)
            return future


ANSWERS = LiveAnswers()


def live_probes(spec: ConnectorSpec, ends: dict[int, int] | None, *, seconds: float = PROBE_SECONDS,
                answers: LiveAnswers = ANSWERS) -> Probes:
    """Probes for ``pipeline_status`` whose questions are already on their way; each waits until a common
    deadline ``seconds`` from now. ``ends`` is the resume point (None: nothing read yet, Kafka not asked)."""
    deadline = time.monotonic() + seconds
    connector = answers.ask((spec.name, "connector"), lambda: _connector(spec, seconds))
    slot = answers.ask((spec.name, "slot"), lambda: _slot(spec))
    paused = answers.ask((spec.dag_id, "paused"), lambda: _paused(spec.dag_id))
    backlog = None
    if ends is not None:
        key = (spec.name, spec.topic, "backlog", tuple(sorted(ends.items())))  # each table reads its own topic
        backlog = answers.ask(key, lambda: _backlog(spec, dict(ends), seconds))

    def waiting(future: Future, service: str):
        def answer(*_args):
            try:
                return future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                raise TimeoutError(f"{service} did not answer within {seconds:g} s") from None
        return answer

    return Probes(backlog=waiting(backlog, "Kafka") if backlog is not None else None,
                  connector=waiting(connector, "Kafka Connect"), slot=waiting(slot, "PostgreSQL"),
                  paused=waiting(paused, "Airflow"))


def _backlog(spec: ConnectorSpec, ends: dict[int, int], seconds: float) -> Backlog:
    from cdc_airflow.hooks import PipelineKafkaHook

    with PipelineKafkaHook(spec.name).clients() as kafka:
        return kafka_backlog(kafka, spec.topic, max_seconds=max(seconds * 2, 5.0))(ends)


def _connector(spec: ConnectorSpec, seconds: float) -> dict[str, Any] | None:
    from cdc_airflow.hooks import kafka_connect_client
    from cdc_pipeline.probes import connector_probe

    # The connection's URL and credentials; a task's client waits 30 s, the page's a few.
    return connector_probe(lambda: kafka_connect_client(timeout=seconds), spec.name)()


def _slot(spec: ConnectorSpec) -> dict[str, Any] | None:
    from cdc_airflow.hooks import source_params
    from cdc_pipeline.probes import slot_probe

    return slot_probe(source_params(), spec.slot_name)()


def _paused(dag_id: str) -> bool | None:
    """The DAG's paused flag from Airflow's metadata database (None: Airflow does not know the DAG yet)."""
    from sqlalchemy import select

    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.scalar(select(DagModel.is_paused).where(DagModel.dag_id == dag_id))
