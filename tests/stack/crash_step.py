"""Run one pipeline step in a process of its own, so a test can arm a crash point (CDC_CRASH_AT) and SIGKILL it.

    python -m tests.stack.crash_step '<json>'   # {"settings": {...}, "connector": path, "data_dir": path, "group": id,
                                                #  "step": "consume" | "merge" | "register" | "resnapshot",
                                                #  "run_id": id, "max_events": n, "tables": false}

``tables``: the connector captures several tables, driven as its DAG drives them (ConnectorDriver).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from cdc_pipeline.crashpoints import ENV
from cdc_pipeline.history import RunRef
from tests.stack.pipeline_driver import REPO, ConnectorDriver, PipelineDriver

SETTINGS = ("pg_host", "pg_port", "pg_user", "pg_password", "pg_db", "capture_user", "capture_password",
            "kafka_bootstrap", "connect_url")


def arguments(driver: PipelineDriver, step: str, run: RunRef, max_events: int = 10_000) -> str:
    settings = {name: getattr(driver.settings, name) for name in SETTINGS}
    # A one-table pipeline's folder is <data_dir>/<connector>; a connector of several has a folder per table in it.
    data_dir = driver.data_dir if isinstance(driver, ConnectorDriver) else driver.layout.folder.parent
    return json.dumps({"settings": settings, "connector": str(driver.spec.path), "data_dir": str(data_dir),
                       "group": driver.group, "step": step, "run_id": run.run_id, "try": run.try_number,
                       "max_events": max_events, "tables": isinstance(driver, ConnectorDriver)})


def step_armed_at(driver: PipelineDriver, step: str, run: RunRef, point: str) -> subprocess.CompletedProcess:
    """Run one step in a process of its own that SIGKILLs itself if it reaches ``point``."""
    env = {**os.environ, ENV: point, "PYTHONPATH": f"{REPO}:{REPO / 'plugins'}"}
    return subprocess.run([sys.executable, "-m", "tests.stack.crash_step", arguments(driver, step, run)],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=300)


def killed_at(driver: PipelineDriver, step: str, run: RunRef, point: str) -> subprocess.CompletedProcess:
    result = step_armed_at(driver, step, run, point)
    assert result.returncode == -signal.SIGKILL, f"{step} did not die at {point}: {result.stderr[-3000:]}"
    return result


def main(raw: str) -> int:
    args = json.loads(raw)
    kind = ConnectorDriver if args.get("tables") else PipelineDriver
    driver = kind(SimpleNamespace(**args["settings"]), Path(args["connector"]), Path(args["data_dir"]),
                  group=args["group"])
    run = RunRef(args["run_id"], args["try"], args["try"] + 1)
    if args["step"] == "consume":
        driver.consume(run, max_events=args["max_events"])
    elif args["step"] == "merge":
        driver.merge(run)
    elif args["step"] == "register":
        driver.register(run)
    else:  # resnapshot (it takes the rebuild's locks itself)
        from cdc_pipeline.commands import operations

        with driver.kafka() as kafka, driver.connect() as connect:
            operations.resnapshot(driver.pipe, kafka, connect, origin="test", connector_config=driver.connector_config())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
