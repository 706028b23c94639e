"""Airflow-specific edge of the pipeline: connections, hooks and the DAG factory. The logic is in cdc_pipeline."""
