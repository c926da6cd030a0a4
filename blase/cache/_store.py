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
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase.errors import BlaseError
from blase.hashing import StatCache, hash_bytes, hash_config, hash_file
from blase.project import Project
from blase.steps import StepResult

__all__ = ["CacheError", "StepEntry", "StepStore", "content_hash"]

logger = logging.getLogger(__name__)

ENTRY_FORMAT = 1
ENTRY_JSON = "entry.json"
OUT = "out"
USED = "used"
#: Placeholder for the entry's output folder inside a stored StepResult.
OUT_TOKEN = "{out}"
#: Keys of JSON outputs that record when or where a step ran, not what it made; they are
#: left out of the *content* hash that chains steps and that ``reproduce --verify`` compares.
VOLATILE_KEYS = frozenset({
    "created_at", "source", "out_dir", "script_path", "samples_per_s", "train_seconds",
    "data_wait_share", "seconds", "time", "timestamp", "path",
})
_JSON_CONTENT_LIMIT = 16 << 20


class CacheError(BlaseError):
    """The step store cannot be read or written."""


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


def _swap(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new) if old in value else value
    if isinstance(value, dict):
        return {_swap(k, old, new): _swap(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap(v, old, new) for v in value]
    return value


def rebase_result(result: StepResult, old: str, new: str) -> StepResult:
    """A copy of ``result`` with every path under ``old`` moved under ``new``."""
    data = result.to_json()
    for name in ("inputs", "outputs", "details", "warnings"):
        data[name] = _swap(data[name], old, new)
    return StepResult(**data)


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


def _pid_alive(pid: int) -> bool:
    try:
        import psutil

        return psutil.pid_exists(pid)
    except ImportError:  # pragma: no cover - psutil is a dependency
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True


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
        """A fresh temporary entry folder; the step writes its outputs into ``<it>/out``."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f".tmp-{step}-{os.getpid()}-{secrets.token_hex(4)}"
        (path / OUT).mkdir(parents=True)
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
        out_dir: Path | None = None,
    ) -> StepEntry:
        """Hash the files of ``staging/out``, write ``entry.json`` and rename it to ``key``.

        ``result``'s paths under ``out_dir`` (default ``staging/out``) are stored relative
        to the entry. An existing entry with the same key is replaced.
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
        source = str(out_dir or out)
        stored = rebase_result(result, source, OUT_TOKEN)
        relative = self.project.relative(source)
        stored = rebase_result(stored, relative, OUT_TOKEN)
        record = {
            "format": ENTRY_FORMAT,
            "key": key,
            "step": step,
            "components": components,
            "result": stored.to_json(),
            "files": files,
            "output": output,
            "run_id": run_id,
            "created": time.time(),
        }
        (staging / ENTRY_JSON).write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
        final = self.root / key
        existing = self.read(key)
        if existing is not None and existing.output == output and self.damage(existing) is None:
            # The same bytes are already stored (a --no-cache run or a reproduce): keep them,
            # so the runs that recorded them still find exactly what they recorded.
            shutil.rmtree(staging, ignore_errors=True)
            return existing
        for _ in range(3):
            try:
                os.rename(staging, final)
                break
            except OSError:
                if not final.exists():
                    raise
                _remove_tree(final)  # same key: replace it with what was just computed
        else:
            raise CacheError(f"cannot publish step entry {final}",
                             hint=f"check that {self.root} is writable; then run the step again")
        self._prime(final / OUT, files, stats)
        logger.debug("stored %s as %s", step, key)
        return self._entry(final, record)

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
        result = rebase_result(StepResult(**record["result"]), OUT_TOKEN, str(path / OUT))
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
        except (OSError, ValueError, KeyError, TypeError):
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
        """``(entry, None)`` for an intact entry; ``(None, why)`` when missing or damaged.

        A damaged entry is removed, so the step is computed again.
        """
        entry = self.read(key)
        if entry is None:
            if (self.root / key).exists():
                _remove_tree(self.root / key)
                return None, "its cached result was incomplete"
            return None, None
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
                if pid is None or (pid != os.getpid() and not _pid_alive(pid)):
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
                    logger.info("removed %s, left by a run that stopped during a step", path)
        return removed


def digest_of(files: dict[str, str]) -> str:
    """The output digest of ``{relative path: content hash}`` (as stored entries record it)."""
    return hash_config(dict(files))


def text_digest(text: str) -> str:
    return hash_bytes(text.encode("utf-8"))
