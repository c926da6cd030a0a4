"""The model registry is a folder: ``models/NAME/vN/`` plus ``models/NAME/current``.

``current`` is a one-line text file naming the promoted version (portable, and replaced
atomically). Every promotion and rollback is appended to ``models/NAME/promotions.jsonl``, so
``blase rollback`` knows what came before.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blase._fs import write_text_atomic
from blase.config import check_model_name
from blase.deploy._package import DeployError, ModelPackage, load_package
from blase.project import Project

__all__ = [
    "ModelInfo",
    "current_version",
    "list_models",
    "model_folder",
    "promote",
    "resolve_model",
    "rollback",
]


def model_folder(project: Project, name: str) -> Path:
    """``models/NAME``, after checking that ``name`` is a model name (never a path)."""
    try:
        check_model_name(name)
    except ValueError as exc:
        raise DeployError(str(exc), hint="list models with `blase models`") from None
    return project.models_dir / name


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


@dataclass
class ModelInfo:
    name: str
    versions: list[str]
    current: str | None
    path: Path

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "versions": self.versions, "current": self.current, "path": str(self.path)}


def _versions(folder: Path) -> list[str]:
    found = [p.name for p in folder.glob("v*") if p.is_dir() and p.name[1:].isdigit()]
    return sorted(found, key=lambda v: int(v[1:]))


def current_version(project: Project, name: str) -> str | None:
    return _current(model_folder(project, name))


def _current(folder: Path) -> str | None:
    marker = folder / "current"
    if not marker.is_file():
        return None
    return marker.read_text().strip() or None


def list_models(project: Project) -> list[ModelInfo]:
    """Every model of the project with its versions and the current one."""
    out = []
    if not project.models_dir.is_dir():
        return out
    for folder in sorted(p for p in project.models_dir.iterdir() if p.is_dir()):
        versions = _versions(folder)
        if versions:
            out.append(ModelInfo(folder.name, versions, _current(folder), folder))
    return out


def resolve_model(project: Project, ref: str, *, trust_package: bool = False) -> ModelPackage:
    """``NAME`` (its current version, else its latest), ``NAME@vN``, or a package folder.

    A package folder must lie inside the project's ``models/`` (symlinks resolved) unless
    ``trust_package`` is set: a package from elsewhere is someone else's data.
    """
    as_path = Path(ref)
    if (as_path / "package.json").is_file():
        if not trust_package and not _inside(as_path, project.models_dir):
            raise DeployError(
                f"model package {ref} is outside this project's {project.models_dir}",
                hint="name a deployed model (see `blase models`), or pass --trust-package "
                "if you trust where this package came from",
            )
        package = load_package(as_path)
        return dataclasses.replace(package, trusted=True) if trust_package else package
    name, _, version = ref.partition("@")
    folder = model_folder(project, name)
    if not folder.is_dir():
        known = ", ".join(m.name for m in list_models(project)) or "none yet"
        raise DeployError(f"no model named {name!r} in {project.models_dir}",
                          hint=f"deployed models: {known}; deploy one with `blase deploy RUN`")
    versions = _versions(folder)
    if not version:
        version = current_version(project, name) or (versions[-1] if versions else "")
    if version not in versions:
        raise DeployError(f"model {name!r} has no version {version!r}",
                          hint=f"versions: {', '.join(versions) or 'none'}")
    return load_package(folder / version)


def _write_current(folder: Path, version: str) -> None:
    write_text_atomic(folder / "current", version + "\n")


def _log(folder: Path, record: dict[str, Any]) -> None:
    with open(folder / "promotions.jsonl", "a") as f:
        f.write(json.dumps({"t": time.time(), **record}) + "\n")


def promote(project: Project, name: str, version: str, *, reason: str = "") -> str | None:
    """Make ``version`` current; returns the version it replaced."""
    folder = model_folder(project, name)
    package = resolve_model(project, f"{name}@{version}")
    previous = current_version(project, name)
    _write_current(folder, package.version)
    _log(folder, {"action": "promote", "from": previous, "to": package.version, "reason": reason})
    return previous


def rollback(project: Project, name: str, *, to: str | None = None) -> tuple[str | None, str]:
    """Move ``current`` back: to ``to``, else to the version current before the last promotion.

    Returns ``(from_version, to_version)``.
    """
    folder = model_folder(project, name)
    if not folder.is_dir():
        raise DeployError(f"no model named {name!r}", hint="list models with `blase models`")
    now = current_version(project, name)
    if to is None:
        history = []
        log = folder / "promotions.jsonl"
        if log.is_file():
            for line in log.read_text().splitlines():
                try:
                    history.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        # walk back to the promotion that made `now` current and take what it replaced
        target = None
        for record in reversed(history):
            if record.get("to") == now and record.get("action") == "promote":
                target = record.get("from")
                break
        if not target:
            raise DeployError(f"model {name!r} has no earlier promoted version to roll back to",
                              hint="name one with --to VERSION")
        to = target
    resolve_model(project, f"{name}@{to}")  # must exist
    _write_current(folder, to)
    _log(folder, {"action": "rollback", "from": now, "to": to, "reason": "rollback"})
    return now, to
