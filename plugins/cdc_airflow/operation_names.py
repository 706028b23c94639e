"""The operations an operator picks in ``cdc_<name>_ops``'s form: the DAG shows them, the runner checks them."""

from __future__ import annotations

OPERATIONS = {
    "status": "health, backlog, data as of, last runs (changes nothing)",
    "history": "the last 20 runs (changes nothing)",
    "verify": "compare destiny.csv with the source at one consistent point (changes nothing unless it differs "
              "and on_data_loss is resnapshot)",
    "reset_to_beginning": "move the state aside and rebuild destiny.csv from the topic's beginning",
    "reset_to_date": "move the state aside; keep only changes committed from 'date' on",
    "reset_to_run": "move the state aside; read again from where run 'run_id' started",
    "resnapshot": "rebuild destiny.csv from a new snapshot, aside; it switches when complete",
    "clear_unfinished_operation": "clear the marker of an operator command that died",
}
CHANGING = frozenset({"reset_to_beginning", "reset_to_date", "reset_to_run", "resnapshot", "clear_unfinished_operation"})
ALL_TABLES = "*"  # a connector of several tables: the operation runs for each table in turn
