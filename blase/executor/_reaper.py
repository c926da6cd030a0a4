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

__all__ = ["reap_on_exit"]

#: Seconds between two looks at the descendants, and a SIGTERM's grace before SIGKILL.
_EVERY_S, _GRACE_S = 1.0, 5.0

_watcher: subprocess.Popen[bytes] | None = None


def reap_on_exit() -> None:
    """Start the watcher of this process (once per process; nothing on other systems than Linux,
    where Ray ties its own processes to the driver only partly)."""
    global _watcher
    if (_watcher is not None and _watcher.poll() is None) or not sys.platform.startswith("linux"):
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


def _is_ray(proc: object) -> bool:
    """A process of Ray's (gcs_server, raylet, ``ray::`` workers and agents, its Python helpers):
    anything else this process started is not the watcher's business."""
    import psutil

    try:
        words = [proc.name(), *proc.cmdline()[:3]]  # type: ignore[attr-defined]
    except psutil.Error:
        return False
    return any("ray" in word for word in words)


def watch(pid: int) -> None:
    """Note ``pid``'s descendants until stdin closes (``pid`` has exited), then stop them."""
    import psutil

    me = os.getpid()
    seen: dict[int, float] = {}
    try:
        parent = psutil.Process(pid)
    except psutil.Error:
        return
    while True:
        try:
            for child in parent.children(recursive=True):
                if child.pid != me and child.pid not in seen and _is_ray(child):
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
