"""The watcher that stops a local Ray's processes when the process that started it dies
(blase.executor.reap_on_exit); no Ray needed: a stand-in child titled as Ray titles its workers."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the watcher runs on POSIX systems")

_PARENT = """
import subprocess, sys, time
from blase.executor import reap_on_exit
reap_on_exit()
ray_like = subprocess.Popen(["ray::RayTrainWorker", "600"], executable="sleep")  # titled as Ray's workers are
other = subprocess.Popen(["sleep", "600"])
print(ray_like.pid, other.pid, flush=True)
time.sleep(600)
"""


def test_kill_9_of_the_starting_process_stops_its_ray_processes_and_nothing_else():
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True)
    ray_like, other = (psutil.Process(int(pid)) for pid in parent.stdout.readline().split())
    try:
        watcher = next(p for p in psutil.Process(parent.pid).children() if "blase.executor._reaper" in p.cmdline())
        # it looks at the descendants every second: let it see the Ray one (a loaded box is slow)
        while time.time() - max(watcher.create_time(), ray_like.create_time()) < 5:
            time.sleep(0.2)
        parent.kill()
        parent.wait()
        gone, _ = psutil.wait_procs([ray_like], timeout=20)
        assert gone, "the Ray process outlived the process that started it"
        assert other.is_running() and other.status() != psutil.STATUS_ZOMBIE  # not Ray's: left alone
        psutil.wait_procs([watcher], timeout=20)
        assert not watcher.is_running()
    finally:
        for proc in (ray_like, other):
            if proc.is_running():
                proc.kill()
        if parent.poll() is None:
            parent.kill()
