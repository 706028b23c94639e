"""Run one pipeline step in a process of its own, so a test can arm a crash point (CDC_CRASH_AT) and SIGKILL it.

    python -m tests.stack.crash_step '<json>'   # {"settings": {...}, "connector": path, "data_dir": path,
                                                #  "group": id, "step": "consume" | "merge", "run_id": id, "max_events": n}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

from cdc_pipeline.history import RunRef
from tests.stack.pipeline_driver import PipelineDriver

SETTINGS = ("pg_host", "pg_port", "pg_user", "pg_password", "pg_db", "kafka_bootstrap", "connect_url")


def arguments(driver: PipelineDriver, step: str, run: RunRef, max_events: int = 10_000) -> str:
    settings = {name: getattr(driver.settings, name) for name in SETTINGS}
    return json.dumps({"settings": settings, "connector": str(driver.spec.path), "data_dir": str(driver.layout.folder.parent),
                       "group": driver.group, "step": step, "run_id": run.run_id, "try": run.try_number,
                       "max_events": max_events})


def main(raw: str) -> int:
    args = json.loads(raw)
    driver = PipelineDriver(SimpleNamespace(**args["settings"]), Path(args["connector"]), Path(args["data_dir"]),
                            group=args["group"])
    run = RunRef(args["run_id"], args["try"], args["try"] + 1)
    if args["step"] == "consume":
        driver.consume(run, max_events=args["max_events"])
    else:
        driver.merge(run)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
