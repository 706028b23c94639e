"""A part's readiness wait: the launcher's errors (ReadinessTimeout, PartStartError) from the shared wait loop."""

import pytest

from cdc_pipeline.errors import WaitTimeout
from devstack.errors import PartStartError, ReadinessTimeout, StackError
from devstack.part import Part
from devstack.settings import StackSettings


class ProbePart(Part):
    """A part with no process: its probe answers what the test scripts."""

    name = "probe"
    port_env = "CDC_KAFKA_PORT"
    port_field = "kafka_port"
    marker = "no-such-process"
    other = "nobody"

    def __init__(self, settings, answers):
        super().__init__(settings)
        self.answers = iter(answers)

    def launch(self):
        pass

    def probe(self):
        answer = next(self.answers, "")
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def part(tmp_path):
    settings = StackSettings.load(env={}, stack_home=tmp_path)
    settings.logs_dir.mkdir()
    return lambda answers: ProbePart(settings, answers)


def test_a_probe_that_answers_ends_the_wait_with_its_detail(part):
    assert part([ConnectionRefusedError("no"), "", "healthy"]).wait_ready(10, alive=lambda: True) == "healthy"


def test_past_the_deadline_readiness_timeout_is_a_stack_error_and_a_wait_timeout(part):
    probe = part([])
    probe.log_path.write_text("FATAL: could not bind\n")
    with pytest.raises(ReadinessTimeout) as info:
        probe.wait_ready(0, alive=lambda: True)
    error = info.value
    assert isinstance(error, StackError) and isinstance(error, WaitTimeout)
    assert error.part == "probe" and error.timeout == 0
    assert "waiting for probe to be ready" in str(error) and "FATAL: could not bind" in str(error)


def test_a_process_that_exited_is_a_part_start_error_with_its_log(part):
    probe = part([ConnectionRefusedError("nobody listens")])
    probe.log_path.write_text("Error: Could not find or load main class\n")
    with pytest.raises(PartStartError, match="probe exited before it was ready") as info:
        probe.wait_ready(600, alive=lambda: False)
    assert "nobody listens" in str(info.value) and "Could not find or load main class" in str(info.value)
