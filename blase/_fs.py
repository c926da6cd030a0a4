"""Small filesystem primitives that keep outputs whole: never half-written, never half-replaced."""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from blase.errors import BlaseError

__all__ = [
    "AtomicTarget",
    "atomic_path",
    "disk_cause",
    "disk_guard",
    "replace_dir",
    "resolved_relative",
    "tree_bytes",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

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


def resolved_relative(files: Iterable[str | os.PathLike[str]], root: str | os.PathLike[str]) -> list[str]:
    """``Path(f).resolve().relative_to(Path(root).resolve()).as_posix()`` of each file, or
    ``str(f)`` for a file outside ``root``. Each folder is resolved once and each file only
    checked for being a link: resolving every part of every path of a folder of 100,000 images
    cost 600,000 ``lstat`` calls and as many path objects."""
    top = os.path.realpath(root)
    prefix = top if top.endswith(os.sep) else top + os.sep
    folders: dict[str, str] = {}
    out: list[str] = []
    for path in files:
        text = os.fspath(path)
        head, name = os.path.split(text)
        real = folders.get(head)
        if real is None:
            real = os.path.realpath(head or os.curdir)
            real = folders[head] = real if real.endswith(os.sep) else real + os.sep
        full = real + name
        if not name or name in (os.curdir, os.pardir) or os.path.islink(full):
            full = os.path.realpath(text)
        out.append(full[len(prefix):].replace(os.sep, "/") if full.startswith(prefix) else str(path))
    return out


def _temp_sibling(path: Path) -> Path:
    """A fresh hidden name next to ``path`` (same folder, so the rename is atomic): unique per
    call, so concurrent writers of one file never share a temporary."""
    return path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:12]}")


class AtomicTarget:
    """A temporary sibling of ``path`` for a writer that outlives one block (a Parquet
    writer fed batch by batch): write to :attr:`tmp`, then :meth:`commit` (fsync, rename onto
    ``path``) or :meth:`discard` (remove the temporary; ``path`` stays as it was)."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.tmp = _temp_sibling(self.path)
        self.fsync = fsync

    def commit(self) -> None:
        """Rename the finished temporary onto ``path``; a temporary never written is a no-op."""
        if not os.path.lexists(self.tmp):
            return
        try:
            if self.fsync:
                _fsync_file(self.tmp)
            os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        _remove(self.tmp)


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` for a writer that wants a file name (pyarrow,
    numpy, DuckDB's ``COPY``, matplotlib); when the block ends without an error the file is
    fsynced and renamed onto ``path``, and on any error the temporary is removed and ``path``
    is left as it was. A block that writes nothing leaves ``path`` untouched."""
    target = AtomicTarget(path, fsync=fsync)
    try:
        yield target.tmp
    except BaseException:
        target.discard()
        raise
    target.commit()


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary sibling, fsync, then ``os.replace``.
    Readers see the old file or the new one, never a part; on error the old file stays."""
    with atomic_path(path, fsync=False) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_text_atomic(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """:func:`write_bytes_atomic` for text."""
    write_bytes_atomic(path, text.encode(encoding))


def write_json_atomic(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2,
                      sort_keys: bool = False, default: Callable[[Any], Any] | None = None,
                      newline: bool = True) -> None:
    """:func:`write_bytes_atomic` of ``obj`` as JSON (UTF-8, a final newline unless told)."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, default=default)
    write_text_atomic(path, text + "\n" if newline else text)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)  # read-only: works on a file already made read-only
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass
