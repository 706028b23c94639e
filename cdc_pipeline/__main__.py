"""Operator commands that need no Airflow: ``python -m cdc_pipeline history|reset ...``."""

from cdc_pipeline.commands.cli import main

raise SystemExit(main())
