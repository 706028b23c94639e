"""CDC pipelines: one Airflow DAG per Debezium connector file in include/connectors/.

Each DAG keeps ``destiny.csv`` in step with one PostgreSQL table. The wiring is in
``plugins/cdc_airflow/dag_factory.py``; the logic in the ``cdc_pipeline`` package.
"""

from cdc_airflow.dag_factory import build_dags

globals().update(build_dags())
