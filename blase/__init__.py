"""Blase: local-first machine-learning pipelines.

Structured, memory-safe, reproducible training workflows on one workstation: every step
tracked (:class:`Track`) and content-hashed (:mod:`blase.hashing`), driven from Python, the
``blase`` CLI, or an assistant with the autonomy you choose.

The public names are imported lazily so that ``import blase`` (and ``blase --help``) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blase._version import __version__
from blase.errors import BlaseError

if TYPE_CHECKING:
    from blase._deprecation import deprecated
    from blase.config import ProjectConfig, load_config
    from blase.project import Project, find_project
    from blase.scaffold import create_project
    from blase.track import Track, list_runs, load_run

__all__ = [
    "BlaseError",
    "Project",
    "ProjectConfig",
    "Track",
    "__version__",
    "create_project",
    "deprecated",
    "find_project",
    "list_runs",
    "load_config",
    "load_run",
]

_LAZY = {
    "deprecated": "blase._deprecation",
    "Project": "blase.project",
    "find_project": "blase.project",
    "ProjectConfig": "blase.config",
    "load_config": "blase.config",
    "create_project": "blase.scaffold",
    "Track": "blase.track",
    "list_runs": "blase.track",
    "load_run": "blase.track",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'blase' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
