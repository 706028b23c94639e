"""Every error the pipeline raises on purpose derives from CdcError, so callers can catch ours and not others'."""


class CdcError(Exception):
    """Base of the pipeline's own errors. Messages say what failed, the value, the likely cause and the fix."""


class ConfigError(CdcError):
    """A connector file, a connection or a setting is wrong."""


class EventDecodeError(CdcError):
    """A Kafka message is not a Debezium change event we can decode; it goes to the dead-letter file."""


class UnsupportedTypeError(EventDecodeError):
    """A column's type has no faithful text form here; the message names the column and the type."""


class ConnectorError(CdcError):
    """Kafka Connect refused the connector, or it or one of its tasks is not RUNNING."""


class SourceError(CdcError):
    """PostgreSQL is unreachable or misconfigured for logical decoding."""


class KafkaError(CdcError):
    """The broker is unreachable, refused a commit, or its offsets contradict the run history."""


class BatchFileError(CdcError):
    """buffer.csv or destiny.csv is not in the shape the pipeline wrote."""


class RunFailedError(CdcError):
    """A run's task failed earlier; the run's last task reports it so the run shows failed."""
