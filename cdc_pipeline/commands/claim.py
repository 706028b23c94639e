"""``claim``: make this worker the owner of a connector's folder, on purpose.

Two uses: a connector moved to another queue or host (its folder copied here while its DAGs were paused: the copy
is checked to be whole before it is taken over), or a connector whose files are gone started afresh here
(``--fresh``: its consumer group is forgotten, so the next run reads its topics as a new pipeline's).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cdc_pipeline.connector_spec import ConnectorSpec, find_connector_spec
from cdc_pipeline.errors import ConfigError
from cdc_pipeline.ownership import GUIDE, Worker, has_history, read_owner, write_owner


def claim(spec: ConnectorSpec, data_dir: Path, worker: Worker, *, fresh: bool,
          out_of_step: Callable[[], list[str]], forget: Callable[[], dict]) -> str:
    folder = Path(data_dir) / spec.name
    if fresh:
        if has_history(folder):
            raise ConfigError(f"--fresh starts {spec.name} afresh only where it has no files, and {folder} holds its "
                              "run history: run claim without --fresh to take those files over, or reset them "
                              f"(python -m cdc_pipeline reset --connector {spec.name} ...)")
        forgotten = forget()
        write_owner(folder, spec, worker)
        read = "; ".join(f"{topic} {dict(sorted(parts.items()))}" for topic, parts in sorted(forgotten.items()))
        return (f"{spec.name} starts afresh on {worker.describe()} in {folder}: "
                + (f"forgot what its consumer group had read ({read}); " if read else "")
                + "its next run reads its topics as a new pipeline (unpause its DAGs)")
    if not has_history(folder):
        raise ConfigError(f"{folder} holds no run history of {spec.name}: copy the connector's folder here from the "
                          "worker that held it (its DAGs paused), then claim it; or pass --fresh to start it afresh "
                          f"here with a new snapshot ({GUIDE})")
    problems = out_of_step()
    if problems:
        raise ConfigError(f"{folder} is not a whole copy of {spec.name}'s files: {'; '.join(problems)}. Copy the "
                          "folder again from the worker that held it, with the connector's DAGs paused")
    try:
        before = read_owner(folder)
    except ConfigError:
        before = None
    write_owner(folder, spec, worker)
    was = before.describe() if before else "no owner recorded"
    return f"{folder} now belongs to {worker.describe()} (was: {was}); unpause {spec.dag_id} and its _ops DAG"


def add_claim_command(sub, environment) -> None:
    """``claim --connector NAME [--fresh] --yes``; ``environment(args)`` gives the services."""
    cmd = sub.add_parser("claim", help="make this worker the owner of a connector's folder (moved here, or --fresh)")
    cmd.add_argument("--connector", required=True)
    cmd.add_argument("--fresh", action="store_true",
                     help="no files here: forget the connector's consumer group and start it afresh (a new snapshot)")
    cmd.add_argument("--yes", action="store_true", help="do it without asking")
    cmd.set_defaults(func=lambda args: run_claim(args, environment(args)))


def run_claim(args, env) -> int:
    from cdc_pipeline.kafka.client import KafkaClients
    from cdc_pipeline.kafka.offsets import delete_group
    from cdc_pipeline.pipeline import connector_pipelines
    from cdc_pipeline.tasks.consume import state_out_of_step

    spec = find_connector_spec(env.connectors_dir, args.connector, env.data_dir)
    worker = Worker.here(spec.settings.queue_name)
    if not args.yes:
        raise ConfigError(f"claim changes which worker runs {spec.name}: pass --yes to make {worker.describe()} its "
                          "owner")

    def out_of_step() -> list[str]:
        return [f"{pipe.label}: {why}" for pipe in connector_pipelines(env.data_dir, spec)
                if pipe.layout.history.exists() and (why := state_out_of_step(pipe))]

    def forget() -> dict:
        with KafkaClients.for_pipeline(env.kafka_config(), spec.name) as kafka:
            return delete_group(kafka, [t.topic for t in spec.tables])

    print(claim(spec, env.data_dir, worker, fresh=args.fresh, out_of_step=out_of_step, forget=forget))
    return 0
