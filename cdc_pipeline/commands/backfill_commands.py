"""The ``as-of`` and ``changes`` subcommands of ``python -m cdc_pipeline`` (cdc_pipeline.commands.cli adds them).

    python -m cdc_pipeline as-of --connector clientes --at 2026-11-24T12:00:00Z --out clientes-1200.csv
    python -m cdc_pipeline changes --connector clientes --from 2026-11-24T11:00:00Z --to 2026-11-24T12:00:00Z --out c.csv
    python -m cdc_pipeline coverage --connector clientes      # which instants they (and backfills) can answer now

Both read the pipeline folder only (no service is asked) and write their file atomically. A connector capturing
several tables needs ``--table schema.table``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cdc_pipeline.errors import ConfigError
from cdc_pipeline.instants import parse_instant
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.commands.table_choice import add_table_option, chosen_folders

INSTANT_HELP = "ISO date-time, UTC when no zone is given, e.g. 2026-11-24T12:00:00Z"


def add_subcommands(sub, environment) -> None:
    """``as-of`` and ``changes``; ``environment(args)`` gives the folders (the CLI's, passed in, not imported)."""
    as_of = sub.add_parser("as-of", help="the table as it was at an instant, in destiny.csv's form, from the change log")
    as_of.add_argument("--connector", required=True)
    add_table_option(as_of)
    as_of.add_argument("--at", required=True, help=INSTANT_HELP)
    as_of.add_argument("--out", required=True, type=Path, help="the CSV file to write (replaced atomically)")
    as_of.set_defaults(func=lambda args: cmd_as_of(args, environment(args)))

    changes = sub.add_parser("changes", help="the change events committed in [--from, --to), in buffer.csv's form")
    changes.add_argument("--connector", required=True)
    add_table_option(changes)
    changes.add_argument("--from", dest="start", required=True, help=INSTANT_HELP)
    changes.add_argument("--to", dest="end", required=True, help=f"{INSTANT_HELP} (not included)")
    changes.add_argument("--out", required=True, type=Path, help="the CSV file to write (replaced atomically)")
    changes.set_defaults(func=lambda args: cmd_changes(args, environment(args)))

    covered = sub.add_parser("coverage", help="which instants as-of, changes and backfills can answer now")
    covered.add_argument("--connector", required=True)
    add_table_option(covered, every=True)
    covered.set_defaults(func=lambda args: cmd_coverage(args, environment(args)))


def cmd_as_of(args: argparse.Namespace, env) -> int:
    from cdc_pipeline.backfill.asof import write_as_of

    at = _instant(args.at, "--at")
    result = write_as_of(_layout(args, env), at, args.out)
    print(result.line())
    return 0


def cmd_changes(args: argparse.Namespace, env) -> int:
    from cdc_pipeline.backfill.changes import write_changes

    start, end = _instant(args.start, "--from"), _instant(args.end, "--to")
    result = write_changes(_layout(args, env), start, end, args.out)
    print(result.line())
    return 0


def cmd_coverage(args: argparse.Namespace, env) -> int:
    from cdc_pipeline.backfill.limits import answerable_now

    for _, layout in chosen_folders(env.data_dir, env.connectors_dir, args.connector, args.table, every=True):
        print(answerable_now(layout))
    return 0


def _instant(value: str, what: str):
    moment = parse_instant(value, what)
    if moment is None:
        raise ConfigError(f"{what} is empty; {INSTANT_HELP}")
    return moment


def _layout(args: argparse.Namespace, env) -> PipelineLayout:
    [(_, layout)] = chosen_folders(env.data_dir, env.connectors_dir, args.connector, args.table)
    if not layout.changelog_dir.is_dir():
        raise ConfigError(f"{layout.folder} has no change log (changelog/): is {args.connector!r} the connector's "
                          "name, and has its DAG merged anything yet? (--data-dir / CDC_DATA_DIR)")
    return layout
