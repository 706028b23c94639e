"""register_connector: check the source, describe the table, keep the connector registered and running.

It runs beside the drain (consume, merge), so an unreachable source or Connect never holds back what Kafka
already has. It is also where changes that send no event are noticed: the catalog is compared with the
description the state was built from (ADD COLUMN ... DEFAULT fills existing rows silently).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from cdc_pipeline.atomic import atomic_write_text
from cdc_pipeline.errors import BrokerUnreachableError, ConnectUnreachableError, SourceError, SourceUnreachableError
from cdc_pipeline.history import RunRef
from cdc_pipeline.kafka.client import KafkaClients
from cdc_pipeline.kafka.signals import ensure_signal_topic
from cdc_pipeline.kafka.topic_config import refuse_compaction, topic_retention
from cdc_pipeline.pgtext.types import unsupported_columns
from cdc_pipeline.pipeline import Pipeline
from cdc_pipeline.connector_folder import joining_tables, prepare_connector_folder
from cdc_pipeline.pipeline_lock import rebuild_locks
from cdc_pipeline.recovery.incremental import confirm_table_snapshots
from cdc_pipeline.recovery.connector_stop import heal_interrupted_stop
from cdc_pipeline.recovery.rebuild import confirm_snapshot, refuse, start_rebuild, start_whole_rebuild
from cdc_pipeline.sent_tables import record_sent_tables, sent_tables
from cdc_pipeline.services import Services
from cdc_pipeline.source.catalog import TableDescription, schema_differences
from cdc_pipeline.source.checks import SourceParams, check_sources, linguistic_key_columns
from cdc_pipeline.source.publication import ensure_publication
from cdc_pipeline.state import StateStore
from cdc_pipeline.state.sort_keys import key_orders, unordered_key_columns
from cdc_pipeline.formatting import size_text
from cdc_pipeline.tasks.tracking import tracked

log = logging.getLogger(__name__)


def register_connector(pipes: list[Pipeline], services: Services, run: RunRef, *, timeout: float = 60.0) -> dict[str, Any]:
    """Check the source, create or update the connector (a no-op when unchanged), wait until RUNNING.

    ``pipes`` are the connector's tables (one pipeline each): every table is checked and described before the
    connector is sent, so a table that cannot be captured exactly registers none. The Kafka clients are made only
    when a rebuild starts. The summary is the first table's, with one entry per table under ``tables`` when there
    are several. ``services.admin``, a role owning the tables, keeps the connector's publication (the pipeline's
    own role otherwise, which then needs that right).
    """
    spec = pipes[0].spec
    source = services.source()
    folder_notes = prepare_connector_folder(pipes[0])
    with contextlib.ExitStack() as stack:
        summaries = [stack.enter_context(tracked(pipe.history, run, "register_connector")) for pipe in pipes]
        summaries[0]["notes"] = folder_notes
        reports = _checked_sources(pipes, source, run)
        problems = [f"{pipe.spec.qualified_table}: {problem}" if spec.many_tables else problem
                    for pipe, report in zip(pipes, reports) for problem in unsupported_columns(report.description)]
        if problems:
            raise SourceError(
                f"{', '.join(p.spec.qualified_table for p in pipes)} "
                f"{'have' if spec.many_tables else 'has'} columns destiny.csv cannot hold exactly, so nothing is "
                "registered:\n- " + "\n- ".join(problems))
        _refuse_inexact_key_order(pipes, reports)
        for pipe, report in zip(pipes, reports):
            atomic_write_text(pipe.layout.table_info, json.dumps(report.description.to_json(), indent=2) + "\n")
        config = services.connector_config(spec)
        # Before Debezium (re)starts: it reads the publication, and a table joining must be in it.
        summaries[0]["publication"] = ensure_publication(services.admin() or source, spec.publication_name,
                                                         spec.table_names)
        kafka = functools.partial(services.kafka, spec.name)
        connect = stack.enter_context(services.connect())
        try:
            healed = heal_interrupted_stop(pipes, connect, restart_whole_rebuild=functools.partial(
                _restart_whole_rebuild, connect=connect, kafka=kafka, config=config))
            if healed:
                summaries[0]["healed"] = healed
            for pipe, report, summary in zip(pipes, reports, summaries):
                changed = _schema_change(pipe, report.description)
                if changed:
                    summary["schema_change"] = _handle_schema_change(pipe, connect, kafka, config, report.description,
                                                                     changed, run)
            folder = pipes[0].connector_folder
            joined = joining_tables(spec, connect.get_config(spec.name), sent_tables(folder)) if spec.many_tables else []
            if spec.many_tables:
                _create_signal_topic(spec, kafka)
            if joined:
                summaries[0]["tables_added"] = _start_with_a_snapshot(pipes, joined, connect, kafka, config, run)
            action = connect.put_config(spec.name, config)
            record_sent_tables(folder, spec.name, spec.table_names)
            status = connect.wait_until_running(spec.name, timeout=timeout)
            if spec.many_tables:
                alone = confirm_table_snapshots(pipes, connect, kafka, whole_rebuild=start_whole_rebuild)
                if alone:
                    summaries[0]["tables_resnapshotting"] = alone
                    status = connect.wait_until_running(spec.name, timeout=timeout)
            recoveries = [confirm_snapshot(pipe.history, connect, pipe.spec) for pipe in pipes]
        except ConnectUnreachableError as exc:
            for pipe in pipes:
                pipe.history.incidents.seen_down("connect", run.run_id, str(exc))
            raise
        log.info("connector %s: config %s; %s", spec.name, action, status.describe())
        topics = _checked_topics([pipe.spec.topic for pipe in pipes], kafka)
        for pipe, report, summary, recovery in zip(pipes, reports, summaries, recoveries):
            summary["topic"] = topics[pipe.spec.topic]
            _summarise(pipe, report, summary, recovery, run, action=action, status=status, source=source)
    if spec.many_tables:
        return {**summaries[0], "tables": {p.spec.qualified_table: s for p, s in zip(pipes, summaries)}}
    return summaries[0]


def key_order_problems(description) -> list[str]:
    """Key columns whose ORDER BY destiny.csv cannot reproduce: text under a linguistic collation (destiny.csv
    compares code points), and types with no order of its own (ranges, arrays, ...: their text's code points).
    Enums order by their declared labels and domains by their base type."""
    problems = [f"key column {column} uses the collation {collation!r}, whose order is linguistic"
                for column, collation in linguistic_key_columns(description).items()]
    return problems + [f"key column {column} is of type {format_type}, which has no order destiny.csv reproduces"
                       for column, format_type in unordered_key_columns(key_orders(description)).items()]


def _refuse_inexact_key_order(pipes: list[Pipeline], reports) -> None:
    """destiny.csv is COPY ... ORDER BY the key: refuse a key it would order otherwise, unless the connector file
    accepts code-point order for such keys (``"key_order": "code_point"``)."""
    spec = pipes[0].spec
    if spec.settings.key_order == "code_point":
        return
    problems = [f"{pipe.spec.qualified_table}: {problem}" for pipe, report in zip(pipes, reports)
                for problem in key_order_problems(report.description)]
    if problems:
        raise SourceError(
            "destiny.csv would not be in the order ORDER BY gives on the source, so nothing is registered:\n- "
            + "\n- ".join(problems) + "\nEither give the key a byte-order collation (ALTER TABLE ... ALTER COLUMN "
            "... TYPE text COLLATE \"C\") or a type with an order of its own, or accept code-point order for such keys "
            f"with \"key_order\": \"code_point\" in {spec.path.name} (destiny.csv then holds the same rows and bytes, "
            "ordered by the keys' text).")


def _start_with_a_snapshot(pipes: list[Pipeline], joined, connect, kafka, config, run: RunRef) -> str:
    """Tables added to a running connector: Debezium would stream them without their existing rows, so each new
    table is snapshotted alone (an incremental snapshot) while the others stream."""
    added = [p for p in pipes if p.spec.qualified_table in {t.qualified for t in joined}]
    names = ", ".join(t.qualified for t in joined)
    what = f"{names} added to connector {added[0].spec.name}"
    connect.put_config(added[0].spec.name, config)  # first, so Debezium captures the tables listed now
    rebuilds = []
    for pipe in added:
        with rebuild_locks(pipe), kafka() as clients:
            recovery = start_rebuild(pipe, connect=connect, kafka=clients, connector_config=config, run_id=run.run_id,
                                     reason="table_added", detail=what)
        rebuilds.append(f"{pipe.spec.qualified_table} (rebuild {recovery.id})")
    done = f"{what}; snapshotted alone while the other tables stream: {', '.join(rebuilds)}"
    log.warning("%s", done)
    return done


def _restart_whole_rebuild(pipe: Pipeline, recovery, *, connect, kafka, config):
    """A whole rebuild killed before it resumed the connector starts again, as a new recovery."""
    with kafka() as clients:
        return start_whole_rebuild(pipe, connect=connect, kafka=clients, connector_config=config, run_id=None,
                                   reason=recovery.reason, detail=f"{recovery.detail} (started again: rebuild "
                                   f"{recovery.id} was interrupted)", description=pipe.table_description())


def _summarise(pipe: Pipeline, report, summary: dict, recovery, run: RunRef, *, action, status, source) -> None:
    spec, history = pipe.spec, pipe.history
    history.incidents.seen_up("connect", run.run_id)
    history.runs.update_run(run.run_id, topic=spec.topic)
    summary.update(
        connector=spec.name, table=spec.qualified_table, config=action, state=status.describe(), slot=spec.slot_name,
        slot_exists=report.slot_exists, slot_retained_wal_bytes=report.slot_retained_wal_bytes, notes=[*summary.get("notes", []), *report.notes],
        rebuild=(f"rebuild {recovery.id}: {recovery.step}" if recovery else None),
    )
    log.info("source %s: %s, slot %s %s, retained WAL %s", source.describe(), spec.qualified_table, spec.slot_name,
             "exists" if report.slot_exists else "will be created", size_text(report.slot_retained_wal_bytes))
    for note in report.notes:
        log.warning("source: %s", note)
    if recovery:
        log.warning("rebuild %s of %s (%s) in progress: %s", recovery.id, spec.qualified_table, recovery.reason,
                    recovery.step)


def _create_signal_topic(spec, kafka: Callable[[], KafkaClients]) -> None:
    """Before Debezium's task starts: it reads its signal topic but does not create it. A broker that does not
    answer is the drain's to report: registration goes on (a rebuild creates the topic before its signal)."""
    try:
        with kafka() as clients:
            ensure_signal_topic(clients, spec.signal_topic)
    except BrokerUnreachableError as exc:
        log.warning("signal topic %s not checked, the broker did not answer (%s)", spec.signal_topic, exc)


def _checked_topics(topics: list[str], kafka: Callable[[], KafkaClients]) -> dict[str, str]:
    """Each topic's cleanup and retention, with one set of clients; a compacted topic is refused (ConfigError). A
    broker that does not answer is the drain's to report: registration goes on."""
    checked = {}
    try:
        with kafka() as clients:
            for topic in topics:
                retention = topic_retention(clients, topic)
                if retention is None:
                    checked[topic] = "not created yet"
                    continue
                refuse_compaction(retention)
                log.info("topic %s: %s", topic, retention.describe())
                checked[topic] = retention.describe()
    except BrokerUnreachableError as exc:
        log.warning("topics of %s: settings not checked, the broker did not answer (%s)", topics[0], exc)
        return {topic: checked.get(topic, "not checked: broker unreachable") for topic in topics}
    return checked


def _checked_sources(pipes: list[Pipeline], source: SourceParams, run: RunRef):
    """Every table checked over one connection; an outage is recorded in every table's history."""
    try:
        spec = pipes[0].spec
        reports = check_sources(source, [(p.spec.schema, p.spec.table) for p in pipes], spec.slot_name,
                                spec.publication_name)
    except SourceUnreachableError as exc:
        for pipe in pipes:
            pipe.history.incidents.seen_down("postgres", run.run_id, str(exc))
        raise
    for pipe in pipes:
        pipe.history.incidents.seen_up("postgres", run.run_id)
    return reports


def _schema_change(pipe: Pipeline, description: TableDescription) -> list[str]:
    """What changed since the state (the rebuild in progress, else the live one) was built."""
    store = StateStore(pipe.layout)
    current = store.rebuild() or store.live()
    if current is None or current.description is None:
        return []
    return schema_differences(current.description, description)


def _handle_schema_change(pipe, connect, kafka, config, description, changes: list[str], run: RunRef) -> str:
    spec = pipe.spec
    what = f"schema of {spec.qualified_table} changed: {'; '.join(changes)}"
    if spec.settings.on_schema_change == "fail":
        pipe.history.runs.update_run(run.run_id, schema_change=f"{what}; on_schema_change=fail: nothing merged")
        raise refuse(spec, "schema_change", what)
    with rebuild_locks(pipe), kafka() as clients:
        recovery = start_rebuild(pipe, connect=connect, kafka=clients, connector_config=config, run_id=run.run_id,
                                 reason="schema_change", detail=what, description=description)
    done = f"{what}; rebuilding from a new snapshot (rebuild {recovery.id}); destiny.csv keeps its last good content until then"
    pipe.history.runs.update_run(run.run_id, schema_change=done)
    log.warning("%s", done)
    return done
