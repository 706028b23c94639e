"""Plain-Python core of the CDC pipeline: no Airflow imports, so tests and tools use it directly."""
