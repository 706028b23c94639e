"""The local stack's defaults, in one home: the pipeline's own fallbacks (``environment.py``, the Kafka clients)
and the launcher's table of settings (``devstack/settings.py``) both read them here."""

PG_HOST = "127.0.0.1"
PG_PORT = 55432
PG_DB = "testdb"
PG_USER = "postgres"  # the administrator: creates the databases, the capture role and the publications
CAPTURE_USER = "cdc_capture"  # the pipeline and Debezium: LOGIN REPLICATION, SELECT on the tables
SINK_DB = "cdc_sink"
KAFKA_PORT = 19092
KAFKA_CONTROLLER_PORT = 19093
CONNECT_PORT = 18083
AIRFLOW_PORT = 18080
AIRFLOW_USER = "admin"
AIRFLOW_PASSWORD = "admin"
CONNECT_USER = "cdc"  # Kafka Connect's REST API (basic authentication)
GROUP_PREFIX = "cdc-csv"  # each pipeline's consumer group is <prefix>.<connector>
