"""Detached processes: pid file, is-alive, TERM then KILL after the deadline, children included."""

import os
import signal
import sys
import threading
import time

from cdc_pipeline.waiting import wait_until
from devstack import process

# A parent that starts a child ignoring SIGTERM, then waits: stop must still leave nothing behind.
STUBBORN = """
import signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('child up', flush=True); time.sleep(600)"])
print("CHILDPID", child.pid, flush=True)
time.sleep(600)
"""


def test_start_writes_pid_and_log_and_stop_kills_the_whole_tree(tmp_path):
    log, pid_file = tmp_path / "x.log", tmp_path / "x.pid"
    pid = process.start_detached([sys.executable, "-c", STUBBORN], log_path=log, pid_path=pid_file)
    assert process.read_pid(pid_file) == pid
    wait_until(lambda: "child up" in log.read_text().splitlines(), what="the child to start", timeout=30,
               interval=0.05, log_path=log)
    child = int(next(line.split()[1] for line in log.read_text().splitlines() if line.startswith("CHILDPID ")))
    assert process.is_alive(pid) and process.is_alive(child)
    assert process.running_pid(pid_file, "no-such-marker") is None  # marker guards against someone else's pid
    assert process.running_pid(pid_file, "child up") == pid

    assert process.stop_process(pid, timeout=0.5)  # True: the SIGKILL after 0.5 s got them both
    assert not process.is_alive(pid) and not process.is_alive(child)


def test_log_tail_returns_the_last_lines(tmp_path):
    log = tmp_path / "a.log"
    log.write_text("".join(f"{i}\n" for i in range(1000)))
    assert process.log_tail(log, 3) == "997\n998\n999"
    assert process.log_tail(tmp_path / "missing.log") == ""


def test_a_process_reference_is_not_fooled_by_its_pid_serving_another_process(tmp_path):
    me = process.ProcessRef.of(os.getpid())
    assert me is not None and me.alive()
    # The same pid with another start time: what a reference looks like once its process exited and the kernel
    # gave the number to a new one (or to a thread, whose id /proc answers too). It must not count, nor be signalled.
    recycled = process.ProcessRef(os.getpid(), me.started + 1)
    assert not recycled.alive()
    recycled.signal(signal.SIGTERM)  # would end this test run if it reached the pid
    assert process.ProcessRef.of(2 ** 22 + 1) is None  # above any pid_max: no such process
    thread = threading.Thread(target=time.sleep, args=(0.5,))
    thread.start()
    tid_ref = process.ProcessRef.of(thread.native_id)
    assert tid_ref is not None and tid_ref.started >= me.started
    thread.join()
