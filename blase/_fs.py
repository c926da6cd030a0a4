"""Small filesystem primitives that keep outputs whole: never half-written, never half-replaced."""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from blase.errors import BlaseError

__all__ = ["disk_cause", "disk_guard", "replace_dir", "tree_bytes", "write_file"]

#: What a write that failed for want of room says, by errno. EFBIG is RLIMIT_FSIZE (``ulimit
#: -f``): Python ignores SIGXFSZ, so the write raises instead of killing the process.
_DISK_CAUSES = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "file too large (over the file size limit, ulimit -f)",
}
#: The same causes as DuckDB's and Arrow's messages spell them when no errno comes along.
_DISK_TEXTS = {"no space left on device": errno.ENOSPC, "disk quota exceeded": errno.EDQUOT,
               "file too large": errno.EFBIG}


def disk_cause(exc: BaseException) -> str | None:
    """``"no space left on the device"`` (and the like) when ``exc`` is a write that failed
    for want of room, else None."""
    code = getattr(exc, "errno", None)
    if code not in _DISK_CAUSES:
        text = str(exc).lower()
        code = next((c for t, c in _DISK_TEXTS.items() if t in text), None)
    return _DISK_CAUSES.get(code) if code is not None else None


@contextmanager
def disk_guard(what: str, path: str | os.PathLike[str], error: type[BlaseError]) -> Iterator[None]:
    """Turn a write that fails for want of room (disk full, quota, file size limit) into
    ``error`` naming ``what``, ``path`` and the cause; other errors pass through. The writer
    inside cleans up its temporary files, so nothing half-written is left."""
    try:
        yield
    except Exception as exc:
        cause = disk_cause(exc)
        if cause is None:
            raise
        fix = ("raise the file size limit (ulimit -f)" if "ulimit" in cause
               else "free disk space (`blase gc --max-size SIZE` trims the step store)")
        raise error(f"cannot write {what} {path}: {cause}; nothing was left half-written",
                    hint=f"{fix}, then run the command again") from exc


def replace_dir(tmp: Path, out: Path) -> None:
    """Put the finished folder ``tmp`` in place of ``out``.

    The earlier ``out`` is moved aside first and removed last, so at every moment ``out`` is
    either the old complete folder or the new complete one.
    """
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError:
        if old is not None:  # put the old one back: never leave no `out` at all
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def tree_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes of the files under ``path`` (links not followed; files that vanish meanwhile
    count 0)."""
    total = 0
    for folder, _dirs, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary sibling, fsync, then ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
