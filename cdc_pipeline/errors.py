"""Every error the pipeline raises on purpose derives from CdcError, so callers can catch ours and not others'.

Messages say what failed, the value, the likely cause and the fix. ``expected`` marks errors that
describe an outage or a refusal an operator is meant to read as one line (no traceback in the task log).
``retry_helps`` is False for refusals that trying again a few seconds later cannot change (a wrong setting, a
poison message, a schema change the connector file says to fail on): their task fails at once, not after its
retries.
"""

from __future__ import annotations


class CdcError(Exception):
    """Base of the pipeline's own errors."""

    expected = False
    retry_helps = True


class ConfigError(CdcError):
    """A connector file, a connection, a parameter or a setting is wrong."""

    expected = True
    retry_helps = False


class EventDecodeError(CdcError):
    """A Kafka message is not a Debezium change event we can decode; it goes to the dead-letter file."""


class UnsupportedTypeError(EventDecodeError):
    """A column's type has no faithful text form here; the message names the column and the type."""


class ConnectorError(CdcError):
    """Kafka Connect refused the connector, or it or one of its tasks is not RUNNING."""


class ConnectUnreachableError(ConnectorError):
    """Kafka Connect's REST API did not answer."""

    expected = True


class SourceError(CdcError):
    """PostgreSQL is misconfigured for logical decoding, or the table cannot be captured as it is (the message
    names the setting, table or column and the fix)."""

    expected = True


class SourceUnreachableError(SourceError):
    """PostgreSQL did not accept a connection."""

    expected = True


class KafkaError(CdcError):
    """The broker refused a request, or its offsets contradict the run history."""


class BrokerUnreachableError(KafkaError):
    """The broker did not answer."""

    expected = True


class OffsetOutOfRangeError(KafkaError):
    def __init__(self, partition: int, offset: int, detail: str) -> None:
        super().__init__(
            f"partition {partition}: offset {offset} is out of range ({detail}): the topic was recreated or the "
            "broker lost its data"
        )
        self.partition = partition
        self.offset = offset


class DataLossError(KafkaError):
    """Kafka no longer holds everything after the pipeline's resume point (and on_data_loss is 'fail')."""

    expected = True


class SchemaChangedError(CdcError):
    """The source table's columns or types changed (and on_schema_change is 'fail')."""

    expected = True
    retry_helps = False


class DeadLettersError(CdcError):
    """A batch held more undecodable messages than max_dead_letters allows; nothing was committed."""

    expected = True
    retry_helps = False


class BatchFileError(CdcError):
    """buffer.csv or destiny.csv is not in the shape the pipeline wrote."""


class StateError(CdcError):
    """The state store is missing, inconsistent with destiny.csv, or was written by another version."""


class PipelineBusyError(CdcError):
    """Another task or operator command of the same pipeline held the lock for longer than we wait."""

    expected = True


class OperationInProgressError(CdcError):
    """An operator command (reset, resnapshot) is running or did not finish: scheduled runs wait for it."""

    expected = True


class VerifyMismatchError(CdcError):
    """verify found destiny.csv different from the source table at the same instant."""

    expected = True


class AsOfError(CdcError):
    """An as-of snapshot or a change window was asked for an instant the change log cannot answer."""

    expected = True
    retry_helps = False


class RunFailedError(CdcError):
    """A run's task failed earlier; the run's last task reports it so the run shows failed."""

    expected = True


class WaitTimeout(CdcError):
    """A bounded wait (cdc_pipeline.waiting.wait_until) ended without the condition it waited for.

    ``gave_up`` is True when it stopped early because the process it waited on had exited. The message
    names what was awaited, the timeout, the last answer of the check and the end of the log, if any.
    """

    def __init__(self, what: str, timeout: float, last_answer: str, log_tail: str = "", *,
                 log_path: object = None, gave_up: bool = False, elapsed: float | None = None) -> None:
        self.what = what
        self.timeout = timeout
        self.last_answer = last_answer
        self.log_tail = log_tail
        self.log_path = log_path
        self.gave_up = gave_up
        self.elapsed = timeout if elapsed is None else elapsed
        where = f" (log: {log_path})" if log_path else ""
        if gave_up:
            message = (f"stopped waiting for {what} after {self.elapsed:.1f} s of {timeout:g} s: the process it "
                       f"waited on has exited{where}; last check: {last_answer}")
        else:
            message = (f"timed out after {timeout:g} s waiting for {what}{where}; last check: {last_answer}. "
                       + ("The log below usually says why; if it is only slow, allow a longer timeout" if log_tail
                          else "If it is only slow, allow a longer timeout"))
        if log_tail:
            message += f"\n--- last lines of {log_path or 'the log'} ---\n{log_tail}"
        super().__init__(message)


class SinkError(CdcError):
    """A sink beside destiny.csv (a Parquet file, a PostgreSQL table) could not be rendered; the state and the
    offsets are unaffected, and the sink's retry renders the live generation again."""


class SinkUnreachableError(SinkError):
    """The sink's database did not accept a connection or dropped it mid-way (an outage: the retry catches up)."""

    expected = True


class NotCoveredYetError(AsOfError):
    """An as-of instant or a change window ends later than what the change log is known to hold complete (the
    pipeline has not read everything Debezium published up to it yet): asking again later answers it."""

    expected = True
    retry_helps = True


class TablesFailedError(CdcError):
    """A step shared by several tables of a connector failed for some of them; the message names each."""

    expected = True


class WrongWorkerError(CdcError):
    """A connector's folder on this worker's disk belongs to another queue or worker, or is missing while Kafka says
    the connector was read before: running here would start it empty beside its real files."""

    expected = True
    retry_helps = False
