"""Stop what a local Ray left running when the process that started it dies.

``ray.init()`` without an address starts a local Ray (gcs_server, raylet, agents, workers) as
descendants of this process. Ray ties the gcs_server and the raylet to it, but after a
``kill -9`` its dashboard and runtime-env agents linger for up to a minute, and a Ray Train
worker busy in a step finishes it first. :func:`reap_on_exit` starts a small watcher process
(``python -m blase.executor._reaper PID``) that notes this process's Ray descendants every
second and, once this process is gone (the pipe it holds closes, however it ended), stops
those still running: SIGTERM, then SIGKILL. So a killed ``blase run`` leaves no Ray process
behind, and ``blase run --resume RUN`` starts a fresh local Ray.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil

__all__ = ["reap_on_exit"]

#: Seconds between two looks at the descendants, and a SIGTERM's grace before SIGKILL.
_EVERY_S, _GRACE_S = 1.0, 5.0

_watcher: subprocess.Popen[bytes] | None = None


def reap_on_exit() -> None:
    """Start the watcher of this process (once per process; POSIX systems only: it waits on a pipe
    with ``select``)."""
    global _watcher
    if (_watcher is not None and _watcher.poll() is None) or os.name != "posix":
        return
    _watcher = subprocess.Popen(
        [sys.executable, "-m", "blase.executor._reaper", str(os.getpid())],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C in the terminal reaches this process, not the watcher
    )


def _stop(procs: dict[int, float]) -> None:
    import psutil

    alive = []
    for pid, created in procs.items():
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == created:  # not a new process that reused the id
                proc.send_signal(signal.SIGTERM)
                alive.append(proc)
        except psutil.Error:
            continue
    _, left = psutil.wait_procs(alive, timeout=_GRACE_S)
    for proc in left:
        try:
            proc.kill()
        except psutil.Error:
            continue


def _ray_dir() -> str | None:
    """Where the ``ray`` package is installed (its binaries and scripts live under it)."""
    import importlib.util

    spec = importlib.util.find_spec("ray")
    return os.path.dirname(spec.origin) + os.sep if spec is not None and spec.origin else None


def _is_ray(proc: psutil.Process, ray_dir: str | None) -> bool:
    """A process of Ray's: gcs_server, raylet, a ``ray::`` worker or agent, a program from
    Ray's package folder; anything else this process started is not the watcher's business."""
    import psutil

    try:
        name, args = proc.name(), proc.cmdline()[:3]
    except psutil.Error:
        return False
    if name in ("gcs_server", "raylet") or name.startswith("ray::"):
        return True
    return any(arg.startswith("ray::") or (ray_dir is not None and ray_dir in arg) for arg in args)


def watch(pid: int) -> None:
    """Note ``pid``'s Ray descendants until stdin closes (``pid`` has exited), then stop them."""
    import psutil

    me, ray_dir = os.getpid(), _ray_dir()
    seen: dict[int, float] = {}
    try:
        parent = psutil.Process(pid)
    except psutil.Error:
        return
    while True:
        try:
            for child in parent.children(recursive=True):
                if child.pid != me and child.pid not in seen and _is_ray(child, ray_dir):
                    seen[child.pid] = child.create_time()
        except psutil.Error:
            pass  # pid is gone: stdin is closed or about to be
        ready, _, _ = select.select([sys.stdin.buffer], [], [], _EVERY_S)
        if ready and not os.read(sys.stdin.fileno(), 1):
            break
    time.sleep(0.2)  # a normal exit: ray.shutdown() has stopped them already, or nearly
    _stop(seen)


if __name__ == "__main__":
    watch(int(sys.argv[1]))
