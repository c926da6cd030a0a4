"""File, file-set and folder hashes, and the stat cache (see :mod:`blase.hashing`)."""

from __future__ import annotations

import fnmatch
import functools
import json
import logging
import os
import shutil
import stat
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePath
from typing import Any

import xxhash

from blase._fs import atomic_path
from blase.errors import HashError

logger = logging.getLogger(__name__)

# 1 MiB stays in L2 cache and measured fastest here (4 MiB and more were slower).
_CHUNK = 1 << 20
#: An entry is cached only if the file's mtime is at least this much older than "now".
RACY_WINDOW_NS = 2_000_000_000
_CACHE_FORMAT = 1
_FILES_TAG = b"blase-files-v1\0"
_CODE_TAG = b"blase-code-v1\0"
_EXCLUDED_PREFIX = ".blase"
# Larger numpy arrays enter canonical JSON as dtype, shape and a digest of their bytes.
_INLINE_ARRAY_BYTES = 64 << 10

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------- bytes and files


def hash_bytes(data: bytes | bytearray | memoryview) -> str:
    """xxh3-128 hex digest of ``data``."""
    return xxhash.xxh3_128_hexdigest(data)


_local = threading.local()


def _buffer() -> tuple[bytearray, memoryview]:
    """A read buffer per thread, reused across files."""
    pair = getattr(_local, "buffer", None)
    if pair is None:
        buf = bytearray(_CHUNK)
        pair = _local.buffer = (buf, memoryview(buf))
    return pair


def _os_error(path: str, exc: OSError) -> HashError:
    if isinstance(exc, FileNotFoundError):
        return HashError(
            f"Cannot hash {path}: no such file.",
            hint=f"Check the path (relative paths start at {os.getcwd()}) or create the file.",
        )
    if isinstance(exc, IsADirectoryError):
        return HashError(
            f"Cannot hash {path}: it is a folder, not a file.",
            hint="Use hash_folder() for a folder, or pass a file inside it.",
        )
    if isinstance(exc, PermissionError):
        return HashError(
            f"Cannot hash {path}: permission denied.",
            hint="Make the file readable (for example `chmod u+r`) or run as its owner.",
        )
    return HashError(
        f"Cannot hash {path}: {exc.strerror or exc}.",
        hint="Check that the file exists, is readable and that its disk is healthy.",
    )


def _stat_file(path: str) -> os.stat_result:
    """``os.stat`` of a regular file (symlinks followed), or a HashError naming the path."""
    try:
        st = os.stat(path)
    except OSError as exc:
        if os.path.islink(path):
            raise HashError(
                f"Cannot hash {path}: it is a broken symbolic link.",
                hint="Fix or remove the link.",
            ) from exc
        raise _os_error(path, exc) from exc
    if stat.S_ISDIR(st.st_mode):
        raise _os_error(path, IsADirectoryError(path))
    if not stat.S_ISREG(st.st_mode):
        raise HashError(
            f"Cannot hash {path}: it is not a regular file (a pipe, socket or device).",
            hint="Hash regular files only; copy the stream to a file first.",
        )
    return st


def _read_and_hash(path: str) -> str:
    h = xxhash.xxh3_128()
    buf, view = _buffer()
    try:
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                h.update(view[:n])
    except OSError as exc:
        raise _os_error(path, exc) from exc
    return h.hexdigest()


def _same_stat(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_size, a.st_mtime_ns, a.st_ino) == (b.st_size, b.st_mtime_ns, b.st_ino)


def hash_file(path: PathLike, *, cache: StatCache | None = None) -> str:
    """xxh3-128 of the bytes of the file at ``path``.

    With a ``cache``, a file whose size, mtime and inode match the cached entry is not read.
    A file that changes while it is read is hashed but not cached.

    Raises :class:`~blase.errors.HashError` for a missing, unreadable or non-regular path.
    """
    p = os.fspath(path)
    st = _stat_file(p)
    if cache is not None:
        cached = cache.get(p, st)
        if cached is not None:
            return cached
    digest = _read_and_hash(p)
    if cache is not None:
        try:
            after = os.stat(p)
        except OSError:
            after = None
        if after is not None and _same_stat(st, after):
            cache.put(p, st, digest)
        else:
            logger.warning("%s changed while it was hashed; its digest is not cached", p)
    return digest


# --------------------------------------------------------------------------- stat cache


class StatCache:
    """Digests of files keyed by resolved path and ``(size, mtime_ns, inode)``.

    One JSON file per path under ``directory`` (named by xxh3-64 of the path, fanned out
    over 256 subfolders), replaced atomically, so any number of processes may share it. A
    missing, stale or corrupt entry is a miss, never an error; failing to write one is
    logged and ignored. ``hits`` and ``misses`` count :meth:`get` calls on this object.
    """

    def __init__(self, directory: PathLike) -> None:
        self.directory = Path(directory)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    @classmethod
    def for_project(cls, project: Any) -> StatCache:
        """The stat cache of a :class:`blase.project.Project`: ``.blase/cache/stat``."""
        return cls(Path(project.cache_dir) / "stat")

    def __repr__(self) -> str:
        return f"StatCache({str(self.directory)!r}, hits={self.hits}, misses={self.misses})"

    @staticmethod
    def _key(path: PathLike) -> str:
        return os.path.realpath(os.path.abspath(os.fspath(path)))

    def _entry(self, key: str) -> Path:
        name = xxhash.xxh3_64_hexdigest(key.encode("utf-8", "surrogateescape"))
        return self.directory / name[:2] / f"{name[2:]}.json"

    def _count(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def get(self, path: PathLike, st: os.stat_result) -> str | None:
        """The cached digest of ``path`` if ``st`` still matches the entry, else ``None``."""
        key = self._key(path)
        try:
            entry = json.loads(self._entry(key).read_bytes())
            ok = (
                entry["v"] == _CACHE_FORMAT
                and entry["path"] == key
                and entry["size"] == st.st_size
                and entry["mtime_ns"] == st.st_mtime_ns
                and entry["inode"] == st.st_ino
            )
            digest = entry["hash"] if ok else None
            if digest is not None and not (isinstance(digest, str) and len(digest) == 32):
                digest = None
        except FileNotFoundError:
            digest = None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            logger.debug("ignoring unreadable stat-cache entry for %s: %s", key, exc)
            digest = None
        self._count(digest is not None)
        return digest

    def put(self, path: PathLike, st: os.stat_result, digest: str) -> bool:
        """Remember ``digest`` for ``path`` as of ``st``; ``False`` if it was not stored.

        Not stored when the file's mtime is within :data:`RACY_WINDOW_NS` of now (or in the
        future): a write in the same timestamp tick could go unnoticed.
        """
        if time.time_ns() - st.st_mtime_ns < RACY_WINDOW_NS:
            return False
        key = self._key(path)
        entry = self._entry(key)
        record = {
            "v": _CACHE_FORMAT,
            "path": key,
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "inode": st.st_ino,
            "hash": digest,
        }
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            # a rebuildable cache entry: renamed into place whole, not worth an fsync
            with atomic_path(entry, fsync=False) as tmp:
                tmp.write_text(json.dumps(record, separators=(",", ":")), encoding="utf-8")
        except OSError as exc:
            logger.debug("could not write stat-cache entry for %s: %s", key, exc)
            return False
        return True

    def clear(self) -> None:
        """Forget every entry."""
        shutil.rmtree(self.directory, ignore_errors=True)


# --------------------------------------------------------------------------- sets and folders


def _workers(workers: int | None, jobs: int) -> int:
    if workers is None:
        workers = min(16, 2 * (os.cpu_count() or 1))
    if workers < 1:
        raise HashError(
            f"workers must be at least 1, got {workers}.", hint="Pass workers=1 or more."
        )
    return max(1, min(workers, jobs))


def _combine(pairs: Iterable[tuple[str, str]]) -> str:
    h = xxhash.xxh3_128(_FILES_TAG)
    for rel, digest in sorted(pairs):
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0" + digest.encode("ascii") + b"\0")
    return h.hexdigest()


def hash_files(
    paths: Iterable[PathLike],
    *,
    root: PathLike | None = None,
    cache: StatCache | None = None,
    workers: int | None = None,
    digests: Mapping[str, str] | None = None,
) -> str:
    """One digest for a set of files: their relative paths and contents, in no given order.

    The digest is xxh3-128 over ``"blase-files-v1\\0"`` followed by ``rel\\0hash\\0`` for
    each ``(relative posix path, hash_file digest)`` pair, sorted by path. Paths are taken
    relative to ``root``, or to the deepest folder holding all of them when ``root`` is
    ``None``, so moving the whole set elsewhere keeps its digest. The same path given twice
    counts once. Files are hashed in a pool of ``workers`` threads (default twice the CPUs,
    at most 16). ``digests`` holds :func:`hash_file` digests already known, by absolute path
    (a source plugin's index of the files it just read): those files are not read again.
    """
    files = [os.path.abspath(os.fspath(p)) for p in paths]
    if not files:
        return _combine(())
    if root is None:
        base = os.path.commonpath([os.path.dirname(f) for f in files])
    else:
        base = os.path.abspath(os.fspath(root))
    by_rel: dict[str, str] = {}
    for f in files:
        try:
            rel = os.path.relpath(f, base)
        except ValueError:  # another drive on Windows
            rel = os.pardir
        if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
            raise HashError(
                f"Cannot hash {f}: it is outside the root folder {base}.",
                hint="Pass a root that holds every file, or leave root unset.",
            )
        by_rel[PurePath(rel).as_posix()] = f
    known = {r: digests[f] for r, f in by_rel.items() if digests.get(f)} if digests else {}
    by_rel = {r: f for r, f in by_rel.items() if r not in known}
    rels = list(by_rel)
    if not rels:
        return _combine(known.items())
    n = _workers(workers, len(rels))
    hash_one = functools.partial(hash_file, cache=cache)
    if n == 1:
        found = [hash_one(by_rel[r]) for r in rels]
    else:
        with ThreadPoolExecutor(n, thread_name_prefix="blase-hash") as pool:
            found = list(pool.map(hash_one, (by_rel[r] for r in rels)))
    return _combine([*zip(rels, found, strict=True), *known.items()])


def _walk(root: str, include: tuple[str, ...] | None) -> Iterator[str]:
    def fail(exc: OSError) -> None:
        raise _os_error(exc.filename or root, exc) from exc

    seen: set[str] = set()
    for folder, dirs, names in os.walk(root, onerror=fail, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a symlink loop, or the same folder linked twice
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith(_EXCLUDED_PREFIX))
        for name in sorted(names):
            if name.startswith(_EXCLUDED_PREFIX):
                continue
            path = os.path.join(folder, name)
            if include is not None:
                rel = PurePath(os.path.relpath(path, root)).as_posix()
                if not any(fnmatch.fnmatchcase(rel, pat) for pat in include):
                    continue
            if os.path.exists(path) and not os.path.isfile(path):
                logger.warning("skipping %s: not a regular file", path)
                continue
            yield path


def hash_folder(
    path: PathLike,
    *,
    cache: StatCache | None = None,
    include: str | Iterable[str] | None = None,
    workers: int | None = None,
) -> str:
    """One digest for every file under a folder, recursively.

    Equal to ``hash_files(files, root=path)`` over those files, so it depends only on their
    relative paths and contents. Files and folders whose name starts with ``.blase`` are left
    out, as are empty folders and special files (pipes, sockets). Symbolic links are
    followed (each real folder once). ``include`` keeps only files whose relative posix
    path matches one of the glob patterns (``fnmatch``: ``*`` also crosses ``/``, so
    ``"*.csv"`` keeps CSV files at any depth).
    """
    root = os.path.abspath(os.fspath(path))
    if not os.path.isdir(root):
        if os.path.exists(root):
            raise HashError(
                f"Cannot hash folder {root}: it is a file.",
                hint="Use hash_file() for a single file.",
            )
        raise HashError(
            f"Cannot hash folder {root}: no such folder.",
            hint=f"Check the path (relative paths start at {os.getcwd()}).",
        )
    patterns = (
        (include,) if isinstance(include, str) else None if include is None else tuple(include)
    )
    return hash_files(_walk(root, patterns), root=root, cache=cache, workers=workers)


