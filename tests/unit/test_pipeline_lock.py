import multiprocessing
import time

import pytest

from cdc_pipeline.pipeline_lock import PipelineBusyError, pipeline_lock


def _hold(folder, seconds, ready):
    with pipeline_lock(folder):
        ready.set()
        time.sleep(seconds)


def test_a_second_holder_waits_and_then_gives_up_with_a_clear_error(tmp_path):
    ready = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold, args=(tmp_path, 3, ready))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(PipelineBusyError, match="held .*lock"):
            with pipeline_lock(tmp_path, timeout=0.5, interval=0.1):
                pass
        started = time.monotonic()
        with pipeline_lock(tmp_path, timeout=10, interval=0.1):
            waited = time.monotonic() - started
        assert waited > 0.5  # it got the lock only once the holder let go
    finally:
        holder.join(10)


def test_the_lock_is_released_when_its_holder_dies(tmp_path):
    ready = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold, args=(tmp_path, 60, ready))
    holder.start()
    assert ready.wait(10)
    holder.kill()
    holder.join(10)
    with pipeline_lock(tmp_path, timeout=2, interval=0.1):
        pass
