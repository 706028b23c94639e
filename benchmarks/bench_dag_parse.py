"""What parsing the DAG file costs the dag-processor, which re-parses it every 30 s.

Each sample is a fresh child process (as the dag-processor forks one per file): it imports ``airflow.sdk``
first (the floor: any DAG file pays it), then fills a ``DagBag`` from ``dags/`` and reports how long that
took, how many DAGs it built and which of the pipeline's heavy libraries got imported on the way (none
should: they are imported inside the task callables).

Run: ``.venv/bin/python benchmarks/bench_dag_parse.py [--runs 7] [--connectors include/connectors]``. Prints
one line per run and, last, one JSON object; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pandas", "pyarrow", "numpy", "confluent_kafka", "psycopg", "orjson")

CHILD = """
import json, sys, time
start = time.perf_counter()
import airflow.sdk  # noqa: F401  the floor
from airflow.dag_processing.dagbag import DagBag
floor = time.perf_counter() - start
start = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
fill = time.perf_counter() - start
print(json.dumps({"floor_s": floor, "fill_s": fill, "dags": len(bag.dags), "errors": len(bag.import_errors),
                  "heavy": [m for m in json.loads(sys.argv[2]) if m in sys.modules]}))
"""


def one_run(connectors: Path, home: Path) -> dict:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AIRFLOW_HOME": str(home),
           "CDC_CONNECTORS_DIR": str(connectors), "CDC_DATA_DIR": str(home / "data"),
           "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}"}
    result = subprocess.run([sys.executable, "-c", CHILD, str(ROOT / "dags"), json.dumps(HEAVY)], env=env,
                            capture_output=True, text=True, timeout=300, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--connectors", type=Path, default=ROOT / "include" / "connectors")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dag-parse-") as home:
        one_run(args.connectors, Path(home))  # first run creates the config and warms the page cache
        runs = []
        for index in range(args.runs):
            run = one_run(args.connectors, Path(home))
            runs.append(run)
            print(f"run {index + 1}: airflow.sdk import {run['floor_s']:.3f} s, DagBag fill {run['fill_s']:.3f} s, "
                  f"{run['dags']} DAGs, {run['errors']} import errors, heavy imports: {run['heavy'] or 'none'}")
    fills = [r["fill_s"] for r in runs]
    floors = [r["floor_s"] for r in runs]
    print(json.dumps({
        "benchmark": "dag_parse", "runs": len(runs), "dags": runs[-1]["dags"], "import_errors": runs[-1]["errors"],
        "fill_median_s": round(statistics.median(fills), 4), "fill_min_s": round(min(fills), 4),
        "fill_max_s": round(max(fills), 4), "floor_airflow_sdk_median_s": round(statistics.median(floors), 4),
        "fill_over_floor": round(statistics.median(fills) / statistics.median(floors), 3),
        "heavy_imports": sorted({m for r in runs for m in r["heavy"]}),
    }))


if __name__ == "__main__":
    main()
