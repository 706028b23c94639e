"""The tasks of a pipeline run, as plain functions the Airflow edge (and the CLI, and the tests) call.

``register`` (the connector and the source), ``consume`` (a bounded batch into buffer.csv, offsets committed
after it is durable), ``merge`` (buffer.csv into the state and destiny.csv), ``sink`` (one extra sink rendered
from the state through :mod:`cdc_pipeline.sinks`), ``finish`` (the run's final status). Each records its try in
the run history, logs short summary lines and returns a small summary dict (paths and numbers, never data).
Each is safe to retry and to run twice.
"""
