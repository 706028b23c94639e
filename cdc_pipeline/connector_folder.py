"""A connector's folder as its table list changes: a one-table folder from before becomes its table's folder,
tables that left the connector file are marked retired, tables that joined are found (against Kafka Connect's
registered config, or, when Connect has forgotten the connector, the table list last sent to it).

All three keep every file: nothing here deletes.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from cdc_pipeline.atomic import atomic_write_text
from cdc_pipeline.connector_spec import ConnectorSpec, CapturedTable
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.history import utc_now
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.ownership import OWNER_FILE
from cdc_pipeline.pipeline_lock import (CONNECTOR_LOCK, CONNECTOR_STOP_LOCK, CONNECTOR_STOPPED, connector_lock,
                                        pipeline_lock)
from cdc_pipeline.sent_tables import SENT_TABLES

log = logging.getLogger(__name__)

ADOPTING = ".adopting."
RETIRED = "retired.json"


def prepare_connector_folder(pipe) -> list[str]:
    """The connector folder as the table list now says: a one-table folder from before moves into its table's
    folder; tables that left are marked retired; a one-table connector refuses a folder laid out for several."""
    data_dir = pipe.connector_folder.parent
    refuse_flat_over_nested(data_dir, pipe.spec)
    if not pipe.spec.many_tables:
        return []
    with connector_lock(pipe.connector_folder):
        adopted = adopt_one_table_folder(data_dir, pipe.spec)
    return ([adopted] if adopted else []) + retire_missing_tables(data_dir, pipe.spec)


def adopt_one_table_folder(data_dir: str | Path, spec: ConnectorSpec) -> str | None:
    """A connector that captured one table (flat folder) and now captures several: its files move into the table's
    own folder, ``<connector>/<schema>.<table>/``, so that table goes on from where it was, with no new snapshot.

    Two renames per file, through ``.adopting.<table>/``, so a crash in the middle is finished by the next call.
    The caller holds the connector lock. Answers what was done, or None."""
    folder = PipelineLayout.under(data_dir, spec.name).folder
    staged = sorted(folder.glob(f"{ADOPTING}*"))
    flat = PipelineLayout(folder)
    if not spec.many_tables or not (staged or flat.history.exists()):
        return None
    if staged:
        target_name = staged[0].name.removeprefix(ADOPTING)
    else:
        target_name = _described_table(flat)
    target = folder / target_name
    if target.exists() and (target / "runs.sqlite").exists():
        raise ConfigError(f"{folder} holds the files of a one-table pipeline of {target_name} and {target} holds "
                          "another history of it; keep one: move the one you do not want out of the data folder")
    stage = folder / f"{ADOPTING}{target_name}"
    with pipeline_lock(flat):  # a run of the one-table version still in flight finishes first
        stage.mkdir(exist_ok=True)
        keep = {stage.name, CONNECTOR_LOCK, CONNECTOR_STOP_LOCK, CONNECTOR_STOPPED, ".lock", SENT_TABLES, OWNER_FILE,
                *spec.table_names}
        for entry in sorted(folder.iterdir()):
            if entry.name not in keep and not entry.name.startswith(ADOPTING):
                os.rename(entry, stage / entry.name)
        os.rename(stage, target)
    done = (f"{spec.name} now captures {len(spec.tables)} tables: the one-table pipeline's files moved into {target} "
            "(it goes on from its resume point, no new snapshot)")
    log.warning("%s", done)
    return done


def _described_table(flat: PipelineLayout) -> str:
    try:
        described = json.loads(flat.table_info.read_text(encoding="utf-8"))
        return f"{described['schema']}.{described['table']}"
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{flat.folder} holds a one-table pipeline whose table.json cannot be read ({exc}), so its "
                          "files cannot be moved into their table's folder: restore table.json, or move the folder "
                          "out of the data folder to start the connector afresh") from exc


def refuse_flat_over_nested(data_dir: str | Path, spec: ConnectorSpec) -> None:
    """A connector back to one table after capturing several would start that table empty in the flat folder."""
    folder = PipelineLayout.under(data_dir, spec.name).folder
    nested = folder / spec.qualified_table / "runs.sqlite"
    if not spec.many_tables and nested.exists() and not (folder / "runs.sqlite").exists():
        raise ConfigError(
            f"{spec.name} now captures only {spec.qualified_table}, whose files are in {nested.parent} (from when it "
            f"captured several tables). Stop the pipeline and move them up: mv {nested.parent}/* {nested.parent}/.lock "
            f"{folder}/ (keeping the other tables' folders), or list a second table again")


def retire_missing_tables(data_dir: str | Path, spec: ConnectorSpec) -> list[str]:
    """Table folders of this connector whose table left the connector file: marked retired (``retired.json``),
    files kept. A table listed again is unmarked and goes on."""
    if not spec.expanded:
        return []  # its patterns' tables are not known here: nothing can be said to have left
    folder = PipelineLayout.under(data_dir, spec.name).folder
    notes = []
    why = ("no longer matched by the patterns of" if spec.patterns else "no longer in") + f" {spec.path.name}'s table.include.list"
    for history in sorted(folder.glob("*/runs.sqlite")):
        table_folder = history.parent
        marker = table_folder / RETIRED
        if table_folder.name in spec.table_names or table_folder.name.startswith(ADOPTING):
            if marker.exists():
                os.unlink(marker)
            continue
        if not marker.exists():
            atomic_write_text(marker, json.dumps({"retired_at": utc_now(), "why": f"{why}; its files are kept as "
                                                  "they were"}) + "\n")
            notes.append(f"{table_folder.name} left {spec.name} ({why}): its files stay in "
                         f"{table_folder}, marked retired")
            log.warning("%s", notes[-1])
    return notes


def joining_tables(spec: ConnectorSpec, registered: dict[str, str] | None,
                   sent: list[str] | None = None) -> list[CapturedTable]:
    """Tables in the connector file that the connector registered on Kafka Connect does not capture yet. Debezium
    streams a table added to a running connector but does not snapshot it, so its rows from before would never
    arrive: such a table starts with a rebuild.

    ``registered``: Connect's config of the connector, None when Connect does not know it. Then ``sent``, the
    list last sent (``sent_tables``), decides: Connect may have lost the connector's config but kept its offsets,
    and Debezium resumes from those without a snapshot. Neither: a first registration, whose snapshot covers
    every table."""
    if registered is not None:
        before = {entry.strip() for entry in registered.get("table.include.list", "").split(",")}
    elif sent is not None:
        before = set(sent)
    else:
        return []
    return [t for t in spec.tables if t.qualified not in before]
