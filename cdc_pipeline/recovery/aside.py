"""The part of every rebuild that happens beside the live state: record the recovery, move the table's resume point
to its topic's end, set the unmerged buffer aside and create an empty state in a new lineage, so destiny.csv keeps its
last good content until the rebuilt state is promoted."""

from __future__ import annotations

import logging

from cdc_pipeline.buffer.batch_buffer import BatchBuffer
from cdc_pipeline.connector_spec import ConnectorSpec
from cdc_pipeline.errors import DataLossError
from cdc_pipeline.history import Recovery, RunStatus
from cdc_pipeline.kafka.client import KafkaClients
from cdc_pipeline.kafka.topic import inspect_topic
from cdc_pipeline.kafka_connect import KafkaConnectClient
from cdc_pipeline.source.catalog import TableDescription
from cdc_pipeline.state import StateStore

log = logging.getLogger(__name__)


def ensure_registered(spec: ConnectorSpec, connect: KafkaConnectClient, connector_config: dict[str, str] | None) -> None:
    """Register the connector when Kafka Connect forgot it: both kinds of rebuild talk to it next."""
    if connect.status(spec.name) is not None:
        return
    # Only then: a caller's config may come from another environment than registration's (the CLI's).
    if connector_config is None:
        raise DataLossError(f"connector {spec.name} is not registered on Kafka Connect; let register_connector run "
                            "once, then the rebuild starts again")
    connect.put_config(spec.name, connector_config)


def record_start(pipe, run_id: str | None, reason: str, detail: str, lost, *, charged: bool) -> Recovery:
    """The recovery in the table's history; ``charged``: this table's loss is what started it."""
    incidents, runs = pipe.history.incidents, pipe.history.runs
    epoch = max(runs.current_epoch(), state_epoch(StateStore(pipe.layout))) + 1
    recovery_id = incidents.start_recovery(run_id=run_id, reason=reason, detail=detail, lost=lost, epoch=epoch)
    if reason == "data_loss" and charged:
        last_read = runs.last_run_where("status = ?", (RunStatus.MERGED.value,))
        incidents.link_data_loss(recovery_id, run_id=run_id, detail=detail,
                                 since=last_read["ended_at"] if last_read else None)
    return incidents.active_recovery()


def rebuild_aside(pipe, kafka: KafkaClients, run_id: str | None, description: TableDescription, reason: str,
                  recovery: Recovery) -> None:
    """Before the new snapshot starts: the topic's end becomes the resume point, the unmerged buffer is set aside,
    an empty state in the new epoch is created aside. Every record of the new snapshot lies after that end."""
    spec, store = pipe.spec, StateStore(pipe.layout)
    incidents, runs = pipe.history.incidents, pipe.history.runs
    recovery_id, epoch = recovery.id, recovery.epoch
    topic = inspect_topic(kafka, spec.topic)
    incarnation = None
    ends: dict[int, int] = {}
    if topic.exists:
        # The high watermark ListOffsets answers. A whole rebuild asks it with the connector stopped; a table
        # re-snapshotting alone asks it before its signal, so what comes after it is streamed changes (applied
        # to the empty state) and the snapshot's reads.
        ends = dict(topic.listed_high)
        latest = incidents.latest_incarnation()
        if latest is not None and latest.topic_id == topic.topic_id:
            incarnation = latest.seq
        else:
            if latest is not None:
                incidents.end_incarnation(latest.seq, f"superseded by a rebuild ({reason})")
            incarnation = incidents.add_incarnation(spec.topic, topic.topic_id, run_id)
    set_aside = BatchBuffer(pipe.layout).clear(archive_as=f"superseded-by-rebuild-{recovery_id}")
    store.discard_rebuild()
    store.create(description, lineage="rebuild", epoch=epoch)
    runs.set_resume_point(reason="rebuild", incarnation=incarnation, epoch=epoch, ends=ends, run_id=run_id)
    log.warning("rebuild %s started (%s): connector %s re-snapshots %s; reading topic %s from %s%s; destiny.csv keeps "
                "its last good content until the snapshot is complete", recovery_id, reason, spec.name,
                spec.qualified_table, spec.topic, ends or "its beginning (it does not exist yet)",
                f"; unmerged events set aside in {set_aside}" if set_aside else "")


def state_epoch(store) -> int:
    epochs = [info.epoch for info in (store.live(), store.rebuild()) if info is not None]
    return max(epochs, default=0)
