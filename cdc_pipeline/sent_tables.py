"""The table list last sent to Kafka Connect for a connector (``connect_tables.json`` in its data folder).

Registration reads it to tell which tables are new even when Kafka Connect forgot the connector, and the
connector file's patterns read it as the tables they matched last (``load_connector_spec(path, data_dir)``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from cdc_pipeline.atomic import atomic_write_text
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.history import utc_now

SENT_TABLES = "connect_tables.json"   # beside the tables' folders


def sent_tables(connector_folder: Path) -> list[str] | None:
    """The tables last sent to Kafka Connect for this connector (None: never recorded)."""
    try:
        return list(json.loads((connector_folder / SENT_TABLES).read_text(encoding="utf-8"))["tables"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{connector_folder / SENT_TABLES} cannot be read ({exc}): it records which tables Kafka "
                          "Connect was last sent. Delete it only if Kafka Connect still knows the connector "
                          "(GET /connectors/<name>/config)") from exc


def record_sent_tables(connector_folder: Path, connector: str, tables: Sequence[str]) -> None:
    """After Kafka Connect accepted the config: the tables it was sent (written only when they changed)."""
    connector_folder.mkdir(parents=True, exist_ok=True)
    if sent_tables(connector_folder) != list(tables):
        atomic_write_text(connector_folder / SENT_TABLES,
                          json.dumps({"connector": connector, "tables": list(tables), "at": utc_now()}) + "\n")
