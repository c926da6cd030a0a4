"""Version numbers of ``models/NAME/``: allocated under a lock, so two deploys never collide.

A deploy reserves ``vN`` by creating its staging folder ``.vN.tmp-PID-XXXXXXXX`` while it holds
an exclusive ``flock`` on ``models/NAME/.lock``; the next deploy counts the reservations of live
processes as taken. The staging folder is renamed to ``vN`` when the package is complete. A
deploy that was killed leaves its staging folder behind: :func:`stale_staging` finds those whose
owner process is gone, and ``blase gc`` removes them.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from blase.resources import pid_alive

__all__ = ["LOCK_FILE", "reserve_version", "stale_staging"]

LOCK_FILE = ".lock"

# `.v3.tmp-1234-0a1b2c3d` (this layout) or `.v3.tmp-k2j4h5` (older Blase: no owner recorded)
_STAGING = re.compile(r"^\.v(?P<number>\d+)\.tmp-(?:(?P<pid>\d+)-)?[0-9A-Za-z_]+$")
# `.current.tmp-0a1b2c3d4e5f` (blase._fs's temporary; aged out) or `.current.1234.tmp` (older Blase)
_CURRENT_TMP = re.compile(r"^\.current\.(?:(?P<pid>\d+)\.tmp|tmp-[0-9a-f]+)$")
#: A staging folder without an owner pid counts as abandoned after this many seconds.
ORPHAN_AGE_S = 600


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``models/NAME`` (released when the process dies, too)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock: the rename below still refuses a clash
        yield
        return
    with open(folder / LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _abandoned(path: Path, owner: str | None) -> bool:
    if owner is not None:
        return not pid_alive(int(owner))
    try:
        return time.time() - path.stat().st_mtime > ORPHAN_AGE_S
    except OSError:
        return False


def reserve_version(folder: Path) -> tuple[str, Path]:
    """The next free ``vN`` of ``folder`` and the staging folder that reserves it."""
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder):
        taken = [0]
        for path in folder.iterdir():
            if path.name.startswith("v") and path.name[1:].isdigit() and path.is_dir():
                taken.append(int(path.name[1:]))
            elif (match := _STAGING.match(path.name)) and not _abandoned(path, match.group("pid")):
                taken.append(int(match.group("number")))
        version = f"v{max(taken) + 1}"
        staging = folder / f".{version}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
    return version, staging


def stale_staging(models_dir: Path) -> list[Path]:
    """Staging folders and ``current`` temporaries of deploys whose process is gone."""
    found: list[Path] = []
    if not models_dir.is_dir():
        return found
    for folder in sorted(p for p in models_dir.iterdir() if p.is_dir()):
        for path in sorted(folder.iterdir()):
            match = _STAGING.match(path.name) or _CURRENT_TMP.match(path.name)
            if match and _abandoned(path, match.group("pid")):
                found.append(path)
    return found
