"""The Markdown shown on a pipeline DAG's page (Airflow's Docs tab)."""

from __future__ import annotations

from cdc_pipeline.connector_spec import ConnectorSpec
from cdc_pipeline.layout import PipelineLayout

PIPELINE_DOC = """
### CDC of `{table}` into `destiny.csv`

Connector file `{path}` · topic `{topic}` · files in `{folder}` ·
[CDC dashboard](/dags/{dag_id}/plugin/cdc-dashboard) (a tab of this page) · on data loss: **{on_data_loss}** · on schema change: **{on_schema_change}**

Every minute, four tasks:

1. **register_connector** checks PostgreSQL (`wal_level=logical`, the table's primary key, every column's type,
   the slot `{slot}`), compares the table's columns with what `destiny.csv` was built from (a schema change
   starts a rebuild), creates or updates the Debezium connector `{name}` (nothing is sent when unchanged) and
   waits until it runs. It runs beside the drain and retries once: an outage never holds back what Kafka has.
2. **consume_batch** checks that Kafka still holds everything after the run history's resume point (a loss
   starts a rebuild from a new snapshot), reads at most `max_events` events, writes them to `buffer.csv`,
   records the range and commits the offsets.
3. **merge_batch** applies `buffer.csv` to the state: per key the newest change wins, deletes and TRUNCATE
   remove rows, replays change nothing; `destiny.csv` is switched to the new version in one rename.
4. **finish_run** writes the run's final status and one-line summary, and fails the run if a task failed.

**Operate:** `{name}` has an operations DAG, `{dag_id}_ops` (reset, resnapshot, verify, history), and the
dashboard shows health, backlog and every run. Every task is safe to clear and re-run. **Backfill** on
[`{dag_id}_backfill`](/dags/{dag_id}_backfill): this DAG refuses backfills, so its runs and their record never
change after the fact.
"""

BACKFILL_DOC = """
### Backfills of `{tables}`

Backfill this DAG (*Trigger → Backfill*, or `POST /api/v2/backfills` with `dag_id={dag_id}_backfill`) over an
interval: each minute `[t - 1 min, t)` of it writes, per table, from the change log,

- `snapshots/<t>.csv`: the table as it was at `t`, in `destiny.csv`'s form;
- `changes/<t - 1 min>_<t>.csv`: the changes committed in that minute, in `buffer.csv`'s form.

It reads the change log only: the live pipeline (`{dag_id}`, its connector, offsets, `destiny.csv`) and its run
history are left as they were, and the same interval writes the same bytes (a file that holds them already is left
untouched). It never runs by itself. "Missing Runs" backfills the minutes not backfilled before; "All Runs" writes
them again.

**What can be answered:** from the change log's earliest instant (the first snapshot or the last rebuild) up to
what the pipeline has read: `operation=status` of `{dag_id}_ops` and `python -m cdc_pipeline coverage --connector
<name>` say which instants, before you backfill. A minute before it fails at
once with one line naming that instant; a minute the pipeline has not read yet is asked again by the task's
retries.
"""


def backfill_doc(spec: ConnectorSpec) -> str:
    return BACKFILL_DOC.format(tables=", ".join(spec.table_names), dag_id=spec.dag_id)


def pipeline_doc(spec: ConnectorSpec, layout: PipelineLayout) -> str:
    return PIPELINE_DOC.format(
        table=spec.qualified_table, path=spec.path, topic=spec.topic, folder=layout.folder, slot=spec.slot_name,
        name=spec.name, dag_id=spec.dag_id, on_data_loss=spec.settings.on_data_loss,
        on_schema_change=spec.settings.on_schema_change,
    )
