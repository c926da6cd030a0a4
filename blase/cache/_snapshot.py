"""Code snapshots: the user scripts a run used, kept in the content store.

Each run records a ``code_snapshot`` event ``{"files": {relative path: hash}}``; the files
themselves are objects of the project's :class:`~blase.track.ContentStore`, stored once
however many runs use them. Editing or deleting a script later never breaks ``reproduce``,
``diff`` or ``restore`` of an earlier run.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from blase.errors import BlaseError
from blase.project import Project

__all__ = ["SnapshotError", "materialise", "read_snapshot_file", "snapshot_code"]

logger = logging.getLogger(__name__)

_SKIP_DIRS = {".blase", ".git", ".venv", "venv", "runs", "models", "outputs", "data", "__pycache__",
              "node_modules", "site-packages"}


class SnapshotError(BlaseError):
    """A code snapshot cannot be read back (its objects were garbage-collected)."""


def _project_files(code_root: Path, extra: Iterable[Path]) -> list[Path]:
    root = code_root.resolve()
    files: set[Path] = set()
    scripts = root / "scripts"
    if scripts.is_dir():
        for folder, dirs, names in os.walk(scripts):
            dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.startswith(".")]
            files.update(Path(folder, n).resolve() for n in names if n.endswith(".py"))
    for path in extra:
        if path.is_file():
            files.add(path.resolve())
    # Project-local modules the user code imported (helpers outside scripts/).
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if not isinstance(name, str) or not name.endswith(".py") or not os.path.isabs(name):
            continue
        path = Path(name).resolve()
        if not path.is_file():
            continue
        try:
            rel = path.relative_to(root)
        except ValueError:
            continue
        if not any(part in _SKIP_DIRS or part.startswith(".") for part in rel.parts[:-1]):
            files.add(path)
    config = root / "blase.yaml"
    if config.is_file():
        files.add(config.resolve())
    return sorted(files)


def snapshot_code(project: Project, code_root: Path | None = None, extra: Iterable[Path] = ()) -> dict[str, str]:
    """Store the project's scripts (``scripts/**.py``, other project modules in use,
    ``blase.yaml`` and ``extra``) and return ``{relative path: hash}``."""
    from blase.track import ContentStore

    root = (code_root or project.root).resolve()
    store = ContentStore(project.store_dir)
    snapshot: dict[str, str] = {}
    for path in _project_files(root, extra):
        snapshot[path.relative_to(root).as_posix()] = store.put_file(path).hash
    return snapshot


def read_snapshot_file(project: Project, digest: str, rel: str, run_id: str) -> bytes:
    """The bytes of one snapshot file, or :class:`SnapshotError` naming it."""
    from blase.track import ContentStore

    path = ContentStore(project.store_dir).path_for(digest)
    try:
        return path.read_bytes()
    except OSError:
        raise SnapshotError(
            f"the snapshot of {rel} used by run {run_id} is no longer in the store ({path})",
            hint=f"it was garbage-collected; `blase pin {run_id}` protects a run's code from `blase gc`",
        ) from None


def materialise(project: Project, snapshot: Mapping[str, str], dest: Path, run_id: str) -> Path:
    """Write the files of ``snapshot`` under ``dest`` (created) and return ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for rel, digest in snapshot.items():
        data = read_snapshot_file(project, digest, rel, run_id)
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return dest


def same_as_project(project: Project, snapshot: Mapping[str, str]) -> list[str]:
    """The snapshot files that differ from (or are missing in) the project as it is now."""
    from blase.hashing import hash_file

    changed = []
    for rel, digest in snapshot.items():
        path = project.root / rel
        try:
            if hash_file(path) != digest:
                changed.append(rel)
        except BlaseError:
            changed.append(rel)
    return changed


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
