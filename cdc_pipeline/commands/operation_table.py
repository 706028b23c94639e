"""The operator's operations, one table: what each does, whether it changes the pipeline, which field it needs,
and the function that runs it on one pipeline.

The operations DAG (``cdc_<name>_ops``) builds its form from this table and dispatches from it; the command line
(``python -m cdc_pipeline reset|resnapshot|verify|operations --clear``) dispatches its commands from it too. Each
caller brings the services in its own way (:class:`cdc_pipeline.services.Services`: Airflow connections, or the
CDC_* settings) and says what it prints or logs. Importing this module is light (the DAG file reads the table while
Airflow parses it): each operation imports what it runs when it runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cdc_pipeline.errors import ConfigError

if TYPE_CHECKING:
    from cdc_pipeline.services import Services
    from cdc_pipeline.connector_spec import ConnectorSpec
    from cdc_pipeline.pipeline import Pipeline

log = logging.getLogger(__name__)

ALL_TABLES = "*"  # a connector of several tables: the operation runs for each table in turn

# What each field an operation needs looks like (the refusal when it is missing shows it).
FIELD_EXAMPLES = {
    "date": "e.g. 2026-11-24 or 2026-11-24T08:00:00Z",
    "run_id": "e.g. scheduled__2026-11-24T08:00:00+00:00 (python -m cdc_pipeline history lists them)",
}


@dataclass(frozen=True)
class OperationRequest:
    origin: str                       # who asked (cli:user@host, airflow:<run id>): kept with the operation's marker
    run_label: str                    # the run id a verify records its comparison under
    date: datetime | None = None      # reset_to_date
    run_id: str | None = None         # reset_to_run
    whole: bool = False               # resnapshot: every table of the connector (the connector's own snapshot)
    scheduled: bool = False           # verify: a scheduled one skips a pipeline with nothing to compare yet
    timeout: float = 300.0            # verify: seconds to wait for the pipeline to catch up


@dataclass(frozen=True)
class OperationOutcome:
    message: str               # what was done, in words: the command line prints it, the operations DAG logs it
    result: dict[str, Any]     # the operations DAG task's result
    logged: bool = False       # the operation logged its message itself (verify): the DAG does not log it again


@dataclass(frozen=True)
class Operation:
    name: str
    description: str
    changes: bool                                      # changes the pipeline: needs confirm (--yes on the CLI)
    run: Callable[[Pipeline, Services, OperationRequest], OperationOutcome]
    needs: tuple[str, ...] = ()                        # fields of the request it cannot do without

    def check(self, request: OperationRequest) -> None:
        for field in self.needs:
            if not getattr(request, field):
                raise ConfigError(f"{self.name} needs {field!r}, {FIELD_EXAMPLES[field]}")

    def __call__(self, pipe: Pipeline, services: Services, request: OperationRequest) -> OperationOutcome:
        self.check(request)
        return self.run(pipe, services, request)


def _status(pipe: Pipeline, services: Services, request: OperationRequest) -> OperationOutcome:
    from cdc_pipeline.commands.status import pipeline_status

    status = pipeline_status(pipe.label, pipe.layout, services.probes(pipe) if services.probes else None)
    answers = _answerable(pipe)
    return OperationOutcome("\n".join([*status.lines(), answers]), {**status.as_dict(), "backfill_answers": answers})


def _answerable(pipe: Pipeline) -> str:
    """Which instants as-of and backfills (cdc_<name>_backfill) can answer now: worth reading before one."""
    from cdc_pipeline.backfill.limits import answerable_now

    try:
        return answerable_now(pipe.layout)
    except Exception as exc:  # noqa: BLE001 - a status reports, never fails
        return f"{pipe.layout.name}: could not read the change log ({exc})"


def _history(pipe: Pipeline, services: Services, request: OperationRequest) -> OperationOutcome:
    from cdc_pipeline.tasks.finish import run_line

    rows = pipe.history.runs.recent_runs(20)
    return OperationOutcome("\n".join(f"{row['run_id']} {row['status']}: {run_line(row)}" for row in rows),
                            {"runs": [{k: row[k] for k in ("run_id", "status", "offset_ranges", "destiny_rows", "error")}
                                      for row in rows]})


def _verify(pipe: Pipeline, services: Services, request: OperationRequest) -> OperationOutcome:
    from cdc_pipeline.commands.verify import verify

    not_yet = nothing_to_verify_yet(pipe) if request.scheduled else None
    if not_yet:
        return OperationOutcome(f"verify: {not_yet}; the next scheduled verify compares",
                                {"result": "skipped", "reason": not_yet})
    result = verify(pipe, services, run_id=request.run_label, timeout=request.timeout)
    return OperationOutcome(result.line(), result.as_dict(), logged=True)


def nothing_to_verify_yet(pipe: Pipeline) -> str | None:
    """Why a scheduled verify (verify_every) has nothing to compare yet: the pipeline has not described its table
    or merged a first snapshot, or a rebuild is under way. A verify asked by hand still fails saying so."""
    if pipe.table_description() is None or not pipe.layout.history.exists():
        return f"{pipe.label} has not run yet"
    if pipe.history.incidents.active_recovery() is not None:
        return f"{pipe.label} is being rebuilt from a new snapshot"
    return None


def _reset_to(target: str) -> Callable[[Pipeline, Services, OperationRequest], OperationOutcome]:
    def reset(pipe: Pipeline, services: Services, request: OperationRequest) -> OperationOutcome:
        from cdc_pipeline.commands import operations

        with services.kafka(pipe.spec.name) as kafka:
            done = operations.reset(pipe, kafka, to=target, date=request.date, run_id=request.run_id,
                                    origin=request.origin)
        return OperationOutcome(done.message, {"message": done.message, **done.detail})

    return reset


def _resnapshot(pipe: Pipeline, services: Services, request: OperationRequest) -> OperationOutcome:
    from cdc_pipeline.commands import operations

    with services.kafka(pipe.spec.name) as kafka, services.connect() as connect:
        done = operations.resnapshot(pipe, kafka, connect, origin=request.origin,
                                     connector_config=services.connector_config(pipe.spec), whole=request.whole)
    return OperationOutcome(done.message, {"message": done.message, **done.detail})


def _clear(pipe: Pipeline, services: Services, request: OperationRequest) -> OperationOutcome:
    from cdc_pipeline.commands import operations

    message = operations.clear_operation(pipe, request.origin)
    return OperationOutcome(message, {"message": message})


OPERATIONS = {op.name: op for op in (
    Operation("status", "health, backlog, data as of, last runs (changes nothing)", False, _status),
    Operation("history", "the last 20 runs (changes nothing)", False, _history),
    Operation("verify", "compare destiny.csv with the source at one consistent point (changes nothing unless it "
                        "differs and on_data_loss is resnapshot)", False, _verify),
    Operation("reset_to_beginning", "move the state aside and rebuild destiny.csv from the topic's beginning", True,
              _reset_to("beginning")),
    Operation("reset_to_date", "move the state aside; keep only changes committed from 'date' on", True,
              _reset_to("date"), needs=("date",)),
    Operation("reset_to_run", "move the state aside; read again from where run 'run_id' started", True,
              _reset_to("run"), needs=("run_id",)),
    Operation("resnapshot", "rebuild destiny.csv from a new snapshot, aside; it switches when complete", True,
              _resnapshot),
    Operation("clear_unfinished_operation", "clear the marker of an operator command that died", True, _clear),
)}
CHANGING = frozenset(name for name, op in OPERATIONS.items() if op.changes)


def operation_named(name: str | None) -> Operation:
    if name not in OPERATIONS:
        raise ConfigError(f"operation {name!r} is not one of {', '.join(OPERATIONS)}")
    return OPERATIONS[name]


def needing(field: str) -> list[str]:
    """The operations that read ``field`` (the form sets it apart under their names)."""
    return [name for name, op in OPERATIONS.items() if field in op.needs]


def run_on_connector(operation: Operation, spec: ConnectorSpec, data_dir, services: Services,
                     request: OperationRequest, table: str | None = None) -> dict[str, Any]:
    """``operation`` on the connector's pipeline, or, for a connector of several tables, on ``table`` or on each
    table in turn (``ALL_TABLES``, or None); a resnapshot of every table is the connector's own snapshot, once.
    Answers the operations DAG's task result; logs what was done."""
    from cdc_pipeline.pipeline import Pipeline, table_layout

    operation.check(request)
    if not spec.many_tables:
        return _logged(operation, Pipeline(spec, table_layout(data_dir, spec)), services, request)
    chosen = table or ALL_TABLES
    names = spec.table_names if chosen == ALL_TABLES else (spec.for_table(chosen).qualified_table,)
    if operation.name == "resnapshot" and chosen == ALL_TABLES:
        whole = Pipeline.under(data_dir, spec.for_table(names[0]))
        return {"tables": {ALL_TABLES: _logged(operation, whole, services, replace(request, whole=True))}}
    results = {}
    for name in names:
        log.info("%s: %s", name, operation.name)
        results[name] = _logged(operation, Pipeline.under(data_dir, spec.for_table(name)), services, request)
    return {"tables": results}


def _logged(operation: Operation, pipe: Pipeline, services: Services,
            request: OperationRequest) -> dict[str, Any]:
    outcome = operation(pipe, services, request)
    if not outcome.logged:
        for line in outcome.message.splitlines():
            log.log(logging.WARNING if operation.changes else logging.INFO, "%s", line)
    return outcome.result


def check_start_from(spec: ConnectorSpec, pipes: list[Pipeline], start_from: str | None) -> datetime | None:
    """The pipeline DAG's ``start_from`` as an instant; refused once any of its tables has read something: moving
    a started pipeline to a date is the operation reset_to_date, which sets the old files aside first."""
    from cdc_pipeline.formatting import describe_resume_point
    from cdc_pipeline.instants import parse_instant

    instant = parse_instant(start_from)
    if instant is None:
        return None
    started = [f"{p.spec.qualified_table} resumes at {describe_resume_point(resume)}" for p in pipes
               if (resume := p.history.runs.resume_point()) is not None]
    if started:
        raise ConfigError(
            f"start_from={start_from} is only for a pipeline that has not read anything yet; in {spec.name}, "
            f"{'; '.join(started)}. To restart from that date, trigger {spec.dag_id}_ops with "
            f"operation=reset_to_date and date={start_from}; or trigger this DAG without "
            "start_from.")
    return instant
