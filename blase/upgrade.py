"""``blase upgrade``: bring a project's files to the current on-disk formats, in place.

Every versioned file (see :mod:`blase._formats`) in an older format is rewritten in the current
one: ``blase.yaml`` gets its ``version:`` line (comments and layout kept), run records their
``format``, model packages and their reference profiles their version keys (then the package is
sealed again, so its recorded hashes match). ``dry_run`` only plans: each change comes with its
unified diff. Step-store entries are a cache: one of an older format is recomputed by the next
run, so they are reported, not rewritten. A file of a *newer* format stops the upgrade before
anything is written.

Each file is replaced atomically (a temporary name, then a rename): an interrupted upgrade leaves
every file either as it was or upgraded, and running it again finishes the job.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from blase._formats import FORMATS, check_format
from blase._fs import write_text_atomic
from blase.project import Project

__all__ = ["FileChange", "UpgradePlan", "plan_upgrade", "upgrade"]


@dataclass
class FileChange:
    """One file to rewrite: why, its text before and after, and the package to seal again."""

    path: Path
    what: str
    before: str
    after: str
    reseal: Path | None = None

    def diff(self, root: Path) -> str:
        rel = self.path.relative_to(root).as_posix()
        return "".join(difflib.unified_diff(self.before.splitlines(keepends=True),
                                            self.after.splitlines(keepends=True), f"a/{rel}", f"b/{rel}"))


@dataclass
class UpgradePlan:
    root: Path
    changes: list[FileChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    applied: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "project": str(self.root),
            "applied": self.applied,
            "changes": [{"path": c.path.relative_to(self.root).as_posix(), "what": c.what,
                         "diff": c.diff(self.root)} for c in self.changes],
            "notes": self.notes,
            "formats": {name: fmt.current for name, fmt in FORMATS.items()},
        }


def plan_upgrade(project: Project) -> UpgradePlan:
    """What :func:`upgrade` would change; raises FormatError on a file of a newer format."""
    plan = UpgradePlan(project.root)
    config = _config_change(project.config_path)
    if config is not None:
        plan.changes.append(config)
    for meta in sorted(project.runs_dir.glob("*/meta.json")):
        change = _json_change(meta, "run", "run record")
        if change is not None:
            plan.changes.append(change)
    for package in sorted(project.models_dir.glob("*/v*/package.json")):
        for path, kind in ((package, "package"), (package.parent / "reference_profile.json", "profile")):
            change = _json_change(path, kind, f"model {kind}", reseal=package.parent) if path.is_file() else None
            if change is not None:
                plan.changes.append(change)
    stale = _stale_store_entries(project.store_dir / "steps")
    if stale:
        plan.notes.append(f"{stale} step-store entr{'y' if stale == 1 else 'ies'} of an older format: "
                          "the next run recomputes them (a cache); `blase gc` frees their space")
    return plan


def upgrade(project: Project, *, dry_run: bool = False) -> UpgradePlan:
    """Rewrite every file of an older format in the current one (nothing when ``dry_run``)."""
    from blase.deploy import seal_package

    plan = plan_upgrade(project)
    if dry_run or not plan.changes:
        return plan
    for change in plan.changes:
        write_text_atomic(change.path, change.after)
    for folder in sorted({c.reseal for c in plan.changes if c.reseal is not None}):
        seal_package(folder)
    plan.applied = True
    return plan


def _config_change(path: Path) -> FileChange | None:
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    found = check_format("config", data.get("version") if isinstance(data, dict) else None, str(path))
    current = FORMATS["config"].current
    if found == current:
        return None
    line = f"version: {current}             # the format of this file (`blase upgrade` migrates older ones)\n"
    if re.search(r"^version:", text, re.M):
        after = re.sub(r"^version:[^\n#]*", f"version: {current}", text, count=1, flags=re.M)
    else:  # before the first top-level key, below the file's opening comments
        first = re.search(r"^[A-Za-z_]", text, re.M)
        at = first.start() if first else len(text)
        after = text[:at] + line + text[at:]
    return FileChange(path, f"blase.yaml: format {found} -> {current}", text, after)


def _json_change(path: Path, kind: str, what: str, *, reseal: Path | None = None) -> FileChange | None:
    fmt = FORMATS[kind]
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    found = check_format(kind, data.get(fmt.key), str(path))
    if found == fmt.current:
        return None
    upgraded = {fmt.key: fmt.current, **{k: v for k, v in data.items() if k != fmt.key}}
    spaces = re.search(r"^\{\n( +)\"", text)  # keep the file's layout, so the diff is one line
    indent = len(spaces.group(1)) if spaces else None
    after = json.dumps(upgraded, indent=indent, default=str) + ("\n" if text.endswith("\n") else "")
    return FileChange(path, f"{what}: format {found} -> {fmt.current}", text, after, reseal)


def _stale_store_entries(steps: Path) -> int:
    current = FORMATS["store_entry"].current
    stale = 0
    for entry in steps.glob("*/entry.json"):
        try:
            stale += json.loads(entry.read_text(encoding="utf-8")).get("format") != current
        except (OSError, ValueError, AttributeError):
            continue  # a damaged entry is the store's to report (a miss), not the upgrade's
    return stale
