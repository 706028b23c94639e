"""What `./stack status` printed, read back the way a user reads it, to know which exit code it owes."""

import re

# "<pipeline>: <STATE> — <headline>" (cdc_pipeline.commands.status.PipelineStatus.lines)
PIPELINE_LINE = re.compile(r"^(?P<name>\S+): (?P<state>[A-Z][A-Z ]*[A-Z]) — (?P<headline>.*)$", re.MULTILINE)
HEALTHY_PIPELINE_STATES = {"OK", "NOT STARTED"}
# PAUSED is healthy only with nothing waiting ("DAG paused · backlog 0 · ..."): a paused pipeline falls behind.
PAUSED_AND_CAUGHT_UP = re.compile(r"^DAG paused · backlog 0\b")


def pipeline_states(stdout: str) -> dict[str, str]:
    return {m["name"]: m["state"] for m in PIPELINE_LINE.finditer(stdout)}


def expected_exit_code(stdout: str) -> int:
    """0 only when every part runs, every connector and task is RUNNING and every pipeline is OK or not started.
    The shared test stack holds pipelines other tests left paused or failing on purpose, so the expectation
    follows what was printed rather than assuming a green stack."""
    part_down = "stopped" in stdout or "NOT READY" in stdout or "NOT RUNNING" in stdout
    pipelines_ok = all(m["state"] in HEALTHY_PIPELINE_STATES
                       or (m["state"] == "PAUSED" and PAUSED_AND_CAUGHT_UP.match(m["headline"]))
                       for m in PIPELINE_LINE.finditer(stdout))
    return 0 if not part_down and pipelines_ok else 1
