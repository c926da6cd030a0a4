"""The step store: each step result kept once, under its key, whole or not at all.

``.blase/store/steps/<key>/`` holds ``out/`` (the step's output folder) and ``entry.json``
(the key's components, the step's :class:`~blase.steps.StepResult`, and the size and hash of
every output file). A step writes into ``.tmp-<step>-<pid>-<random>/out``; once it has
finished, its files are hashed, ``entry.json`` is written and the folder is renamed to its
key. A run killed half-way leaves only a ``.tmp-`` folder, which no lookup reads and the
next run removes once its writer is gone.

A lookup verifies the entry before trusting it: every recorded file must exist with its
size and hash. Hashes go through the project's :class:`~blase.hashing.StatCache`, so an
untouched entry costs one ``stat`` per file; a file whose stat changed is read again, and
an entry whose bytes no longer match is removed and reported as damaged.

Storing can fail (a full disk, a quota, a read-only folder). Then nothing is left under the
key: ``entry.json`` is removed, the outputs are moved out of the store (or stay in their
``.tmp-`` folder), :meth:`StepStore.publish` raises :class:`StoreWriteError`, which carries
the step's (correct, unstored) result and the warning to show, and a small
``.unstored-<key>.json`` marker records why, so the next lookup of that key can say so.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase._formats import FORMATS
from blase.errors import BlaseError
from blase.hashing import StatCache, hash_bytes, hash_config, hash_file
from blase.project import Project
from blase.resources import pid_alive
from blase.steps import StepResult

__all__ = ["CacheError", "StepEntry", "StepStore", "StoreWriteError", "content_hash"]

logger = logging.getLogger(__name__)

#: 2: results hold typed outputs relative to the entry (1 held rewritten absolute paths).
ENTRY_FORMAT = FORMATS["store_entry"].current
ENTRY_JSON = "entry.json"
OUT = "out"
USED = "used"
#: ``.unstored-<key>.json``: why the latest attempt to store ``key`` failed.
UNSTORED = ".unstored-{key}.json"
#: Keys of JSON outputs that record when or where a step ran, not what it made; they are
#: left out of the *content* hash that chains steps and that ``reproduce --verify`` compares.
VOLATILE_KEYS = frozenset({
    "created_at", "source", "out_dir", "script_path", "samples_per_s", "train_seconds",
    "data_wait_share", "seconds", "time", "timestamp", "path",
})
_JSON_CONTENT_LIMIT = 16 << 20


class CacheError(BlaseError):
    """The step store cannot be read or written."""


class StoreWriteError(CacheError):
    """A step's result could not be written into the step store (full disk, read-only folder).

    The result itself is intact: :attr:`entry` describes it (output files, hashes, output
    digest, ``stored=False``) where its outputs now are, outside the store; None when the
    store could not even make a folder for the step. The message is the warning to show and
    record: it names the step, the store folder and the cause.
    """

    def __init__(self, message: str, *, hint: str, step: str, key: str | None, store: Path, cause: str,
                 errno: int | None, entry: StepEntry | None = None) -> None:
        super().__init__(message, hint=hint)
        self.step = step
        self.key = key
        self.store = store
        self.cause = cause
        self.errno = errno
        self.entry = entry


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def content_hash(path: Path, raw: str) -> str:
    """The hash of what a file *says*: ``raw`` for data, and for a JSON file its canonical
    form without :data:`VOLATILE_KEYS` (timestamps, paths, speeds)."""
    if path.suffix != ".json":
        return raw
    try:
        if path.stat().st_size > _JSON_CONTENT_LIMIT:
            return raw
        return "j" + hash_config(_strip(json.loads(path.read_text(encoding="utf-8"))))[1:]
    except (OSError, ValueError, BlaseError):
        return raw


@dataclass
class StepEntry:
    """One verified entry of the step store."""

    key: str
    step: str
    path: Path
    components: dict[str, Any]
    result: StepResult
    files: dict[str, list[Any]]
    output: str
    run_id: str | None = None
    created: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    #: False for the result a failed :meth:`StepStore.publish` carries (not in the store).
    stored: bool = True

    @property
    def out_dir(self) -> Path:
        return self.path / OUT

    @property
    def size(self) -> int:
        return sum(int(f[0]) for f in self.files.values())

    def file_hashes(self) -> dict[str, str]:
        """``{relative path: content hash}`` of the output files."""
        return {rel: f[2] for rel, f in self.files.items()}


def _remove_tree(path: Path) -> None:
    """Rename ``path`` out of the way first, so it disappears from lookups at once."""
    if not path.exists():
        return
    trash = path.with_name(f".trash-{path.name[:16]}-{secrets.token_hex(4)}")
    try:
        os.rename(path, trash)
    except OSError:
        trash = path
    shutil.rmtree(trash, ignore_errors=True)


def _write_verified(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and read it back: a short write, a full disk or a quota
    raises here (``OSError``), before anything is renamed where a lookup would trust it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)  # raises too where the file system reports errors at close (NFS)
    if path.read_bytes() != data:
        raise OSError(errno.EIO, f"{path.name} reads back other bytes than were written")


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def _hint(code: int | None, store: str) -> str:
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"free disk space (`blase gc --max-size SIZE` trims {store}), or move .blase to a larger disk"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"make {store} writable by this user"
    return f"check that {store} is writable and has space"


class StepStore:
    """The content-addressed store of step results of a project (see the module docstring).

    Parameters
    ----------
    project:
        The project whose ``.blase/store/steps`` holds the entries.
    stat_cache:
        Used to verify entries cheaply; default: the project's.
    """

    def __init__(self, project: Project, stat_cache: StatCache | None = None) -> None:
        self.project = project
        self.root = project.store_dir / "steps"
        self.stat_cache = stat_cache or StatCache.for_project(project)

    # -- writing ------------------------------------------------------------------------

    def staging(self, step: str) -> Path:
        """A fresh temporary entry folder; the step writes its outputs into ``<it>/out``.

        Raises :class:`StoreWriteError` (``entry`` None) when the store cannot make it.
        """
        path = self.root / f".tmp-{step}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            (path / OUT).mkdir(parents=True)
        except OSError as exc:
            store = self.project.relative(self.root)
            cause = exc.strerror or str(exc)
            raise StoreWriteError(
                f"cache: could not make a folder for {step}'s output in {store} ({cause}); "
                "the step cannot be cached", hint=_hint(exc.errno, store), step=step, key=None,
                store=self.root, cause=cause, errno=exc.errno) from exc
        return path

    def publish(
        self,
        staging: Path,
        *,
        key: str,
        step: str,
        components: dict[str, Any],
        result: StepResult,
        run_id: str | None,
        fallback: Path | None = None,
    ) -> StepEntry:
        """Hash the files of ``staging/out``, write ``entry.json`` and rename it to ``key``.

        ``result`` is stored as it is, without where its output folder lies (its typed
        output names files relative to that folder); an existing entry with the same key is
        replaced.

        When the store cannot be written, nothing is stored under ``key`` and
        :class:`StoreWriteError` is raised; its ``entry`` is the unstored result, moved to
        ``fallback`` (as ``fallback/out``) when given and possible, else left in ``staging``
        (which the caller removes once the run is done with it).
        """
        out = staging / OUT
        files: dict[str, list[Any]] = {}
        stats: dict[str, os.stat_result] = {}
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            rel = path.relative_to(out).as_posix()
            stats[rel] = path.stat()
            raw = hash_file(path)
            files[rel] = [stats[rel].st_size, raw, content_hash(path, raw)]
        output = hash_config({rel: f[2] for rel, f in files.items()})
        record = {
            "format": ENTRY_FORMAT,
            "key": key,
            "step": step,
            "components": components,
            "result": result.to_json(with_root=False),
            "files": files,
            "output": output,
            "run_id": run_id,
            "created": time.time(),
        }
        final = self.root / key
        existing = self.read(key)
        if existing is not None and existing.output == output and self.damage(existing) is None:
            # The same bytes are already stored (a --no-cache run or a reproduce): keep them,
            # so the runs that recorded them still find exactly what they recorded.
            shutil.rmtree(staging, ignore_errors=True)
            _unlink(self.root / UNSTORED.format(key=key))
            return existing
        try:  # write, verify, then publish (one rename): a failure leaves nothing under the key
            _write_verified(staging / ENTRY_JSON, json.dumps(record, indent=1, default=str).encode("utf-8"))
            self._rename(staging, final)
        except OSError as exc:
            raise self._unstored(staging, record, exc, fallback) from exc
        _unlink(self.root / UNSTORED.format(key=key))
        self._prime(final / OUT, files, stats)
        logger.debug("stored %s as %s", step, key)
        return self._entry(final, record)

    def _rename(self, staging: Path, final: Path) -> None:
        for _ in range(3):
            try:
                os.rename(staging, final)
                return
            except OSError:
                if not final.exists():
                    raise
                _remove_tree(final)  # same key: replace it with what was just computed
        raise OSError(errno.EEXIST, f"the existing entry {final.name} could not be replaced")

    def _unstored(self, staging: Path, record: dict[str, Any], exc: OSError, fallback: Path | None) -> StoreWriteError:
        """Undo a failed publish: no ``entry.json``, the outputs moved out of the store, the
        cause recorded for the next lookup; the error to raise, with the unstored result."""
        step, key = record["step"], record["key"]
        _unlink(staging / ENTRY_JSON)
        home = staging
        if fallback is not None:
            try:
                fallback.parent.mkdir(parents=True, exist_ok=True)
                os.rename(staging, fallback)
                home = fallback
            except OSError as move:
                logger.debug("could not move %s to %s (%s); it stays there", staging, fallback, move)
        cause = exc.strerror or str(exc)
        self._remember_failure(key, {"step": step, "run_id": record.get("run_id"), "cause": cause,
                                     "errno": exc.errno, "time": time.time()})
        store = self.project.relative(self.root)
        message = f"cache: could not store {step}'s output in {store} ({cause}); the next run will recompute it"
        logger.warning("%s", message)
        entry = self._entry(home, record)
        entry.stored = False
        return StoreWriteError(message, hint=_hint(exc.errno, store), step=step, key=key, store=self.root,
                               cause=cause, errno=exc.errno, entry=entry)

    def _remember_failure(self, key: str, why: dict[str, Any]) -> None:
        """Best effort on a disk that may be full: the cause, else an empty marker, else nothing."""
        marker = self.root / UNSTORED.format(key=key)
        try:
            marker.write_text(json.dumps(why), encoding="utf-8")
        except OSError:
            try:
                marker.touch()
            except OSError as exc:
                logger.debug("could not record why %s was not stored: %s", key, exc)

    def _failure(self, key: str) -> str | None:
        """Why the latest attempt to store ``key`` failed, as a re-run reason; None if none did."""
        marker = self.root / UNSTORED.format(key=key)
        if not marker.exists():
            return None
        try:
            why = json.loads(marker.read_text(encoding="utf-8"))
            run, cause = why.get("run_id"), why["cause"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return "not stored: an earlier run could not write it"
        return f"not stored: the earlier run{f' {run}' if run else ''} could not write it ({cause})"

    def _prime(self, out: Path, files: dict[str, list[Any]], before: dict[str, os.stat_result]) -> None:
        """Tell the stat cache the hashes just computed (a rename keeps size, mtime and inode),
        so the next lookup does not read the outputs again. Files changed since, or written
        too recently to trust their mtime, are left to be hashed on lookup."""
        for rel, (_size, raw, _content) in files.items():
            path = out / rel
            try:
                st = path.stat()
            except OSError:
                continue
            old = before[rel]
            if (st.st_size, st.st_mtime_ns, st.st_ino) == (old.st_size, old.st_mtime_ns, old.st_ino):
                self.stat_cache.put(path, st, raw)

    # -- reading ------------------------------------------------------------------------

    def _entry(self, path: Path, record: dict[str, Any]) -> StepEntry:
        result = StepResult.from_json(record["result"], root=path / OUT)
        return StepEntry(
            key=record["key"], step=record["step"], path=path, components=record.get("components", {}),
            result=result, files=record.get("files", {}), output=record.get("output", ""),
            run_id=record.get("run_id"), created=float(record.get("created") or 0.0),
        )

    def read(self, key: str) -> StepEntry | None:
        """The entry for ``key`` without verifying its files, or None."""
        path = self.root / key
        try:
            record = json.loads((path / ENTRY_JSON).read_text(encoding="utf-8"))
            if record.get("format") != ENTRY_FORMAT or record.get("key") != key:
                return None
            return self._entry(path, record)
        except (OSError, ValueError, KeyError, TypeError, BlaseError):  # BlaseError: an unknown output type
            return None

    def damage(self, entry: StepEntry) -> str | None:
        """What is wrong with ``entry``'s files (first problem), or None when intact."""
        for rel, (size, raw, _content) in entry.files.items():
            path = entry.out_dir / rel
            try:
                if path.stat().st_size != size:
                    return f"{rel} has {path.stat().st_size} bytes, {size} recorded"
                if hash_file(path, cache=self.stat_cache) != raw:
                    return f"{rel} no longer matches its hash"
            except (OSError, BlaseError):
                return f"{rel} is missing"
        return None

    def lookup(self, key: str) -> tuple[StepEntry | None, str | None]:
        """``(entry, None)`` for an intact entry; ``(None, why)`` when damaged, or missing
        because the run that computed it could not store it; ``(None, None)`` when never stored.

        A damaged entry is removed, so the step is computed again.
        """
        entry = self.read(key)
        if entry is None:
            if (self.root / key).exists():
                _remove_tree(self.root / key)
                return None, "its cached result was incomplete"
            return None, self._failure(key)
        problem = self.damage(entry)
        if problem is not None:
            logger.warning("step store entry %s is damaged (%s); computing it again", key, problem)
            _remove_tree(entry.path)
            return None, f"cached result damaged: {problem}"
        try:
            (entry.path / USED).touch()
        except OSError:
            pass
        return entry, None

    def entries(self) -> list[StepEntry]:
        """Every readable entry (unverified)."""
        found = []
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        for name in names:
            if name.startswith("."):
                continue
            entry = self.read(name)
            if entry is not None:
                found.append(entry)
        return found

    def last_used(self, entry: StepEntry) -> float:
        try:
            return max(entry.created, (entry.path / USED).stat().st_mtime)
        except OSError:
            return entry.created

    def remove(self, key: str) -> None:
        _remove_tree(self.root / key)
        _unlink(self.root / UNSTORED.format(key=key))

    def clean_stale(self) -> list[Path]:
        """Remove temporary folders left by runs that died (their process is gone)."""
        removed: list[Path] = []
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return removed
        for name in names:
            path = self.root / name
            if name.startswith(".trash-"):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
            elif name.startswith(".tmp-"):
                parts = name.split("-")
                pid = int(parts[2]) if len(parts) > 3 and parts[2].isdigit() else None
                if pid is None or (pid != os.getpid() and not pid_alive(pid)):
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
                    logger.info("removed %s, left by a run that stopped during a step", path)
        return removed


def digest_of(files: dict[str, str]) -> str:
    """The output digest of ``{relative path: content hash}`` (as stored entries record it)."""
    return hash_config(dict(files))


def text_digest(text: str) -> str:
    return hash_bytes(text.encode("utf-8"))
