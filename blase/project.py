"""Finding and describing a Blase project folder.

A project is a folder holding ``blase.yaml``; every command finds it from any subfolder by
walking up, or from an explicit ``--project DIR``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from blase.errors import ProjectError

__all__ = ["CONFIG_NAME", "Project", "find_project"]

CONFIG_NAME = "blase.yaml"
# Set by the CLI's global --project option, read by find_project().
PROJECT_ENV = "BLASE_PROJECT"


@dataclass(frozen=True)
class Project:
    """The folders of one project. Cheap to build; touches the disk only when asked."""

    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def outputs_dir(self) -> Path:
        return self.root / "outputs"

    @property
    def scripts_dir(self) -> Path:
        return self.root / "scripts"

    @property
    def state_dir(self) -> Path:
        """Hidden state: caches, the content store, temporary files."""
        return self.root / ".blase"

    @property
    def store_dir(self) -> Path:
        """Content-addressed store of artifacts and step outputs."""
        return self.state_dir / "store"

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"

    @property
    def tmp_dir(self) -> Path:
        return self.state_dir / "tmp"

    def config(self):  # -> blase.config.ProjectConfig, imported lazily
        """Load and validate ``blase.yaml``."""
        from blase.config import load_config

        return load_config(self.config_path)

    def plugins(self):  # -> blase.plugins.PluginSet, imported lazily
        """The plugins this project can use: every installed one, plus the project files
        ``plugins:`` in ``blase.yaml`` lists (only their light manifests are imported)."""
        from blase.plugins import plugin_set

        return plugin_set(self.root, self.config().plugins)

    def relative(self, path: str | os.PathLike[str]) -> str:
        """``path`` relative to the project root when it lies inside, else absolute."""
        p = Path(path).resolve()
        try:
            return p.relative_to(self.root).as_posix()
        except ValueError:
            return str(p)


def find_project(start: str | os.PathLike[str] | None = None) -> Project:
    """Return the project that holds ``start`` (default: ``$BLASE_PROJECT`` or the cwd).

    Walks up from ``start`` to the first folder with a ``blase.yaml``.

    Raises
    ------
    ProjectError
        When no folder on the way up is a project.
    """
    explicit = start is not None or PROJECT_ENV in os.environ
    origin = Path(start if start is not None else os.environ.get(PROJECT_ENV, os.getcwd()))
    origin = origin.expanduser()
    if not origin.exists():
        raise ProjectError(
            f"project folder {origin} does not exist",
            hint="check the path, or create a project with `blase create NAME`",
        )
    here = origin.resolve()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return Project(folder)
    where = f"{origin}" if explicit else f"the current folder ({origin})"
    raise ProjectError(
        f"{where} is not inside a Blase project: no {CONFIG_NAME} there or in any parent folder",
        hint="run `blase create NAME` to make one, or pass --project DIR",
    )
