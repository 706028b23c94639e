"""The pipeline lock: one holder at a time, a clear error past the wait, released by a dying holder."""

import multiprocessing

import pytest

from cdc_pipeline.errors import PipelineBusyError
from cdc_pipeline.layout import PipelineLayout
from cdc_pipeline.pipeline_lock import is_locked, pipeline_lock


def _hold(folder, ready, release):
    with pipeline_lock(PipelineLayout(folder)):
        ready.set()
        release.wait(60)


@pytest.fixture
def holder(tmp_path):
    ready, release = multiprocessing.Event(), multiprocessing.Event()
    process = multiprocessing.Process(target=_hold, args=(tmp_path, ready, release))
    process.start()
    assert ready.wait(10)
    yield process, release
    if process.is_alive():  # setting an Event a killed process waited on would block for good
        release.set()
    process.join(10)


def test_a_second_holder_gives_up_with_a_clear_error_while_the_first_holds(tmp_path, holder):
    layout = PipelineLayout(tmp_path)
    assert is_locked(layout)
    with pytest.raises(PipelineBusyError, match="held .*lock"):
        with pipeline_lock(layout, timeout=0.3, interval=0.1):
            pass


def test_the_lock_is_taken_once_the_holder_lets_go(tmp_path, holder):
    process, release = holder
    release.set()
    process.join(10)
    layout = PipelineLayout(tmp_path)
    assert not is_locked(layout)
    with pipeline_lock(layout, timeout=5, interval=0.1):
        assert is_locked(layout)  # a second descriptor, even in this process, sees the lock held


def test_the_lock_is_released_when_its_holder_dies(tmp_path, holder):
    process, _ = holder
    process.kill()
    process.join(10)
    layout = PipelineLayout(tmp_path)
    assert not is_locked(layout)
    with pipeline_lock(layout, timeout=2, interval=0.1):
        pass
