"""What ``blase ui`` keeps per user, not per project: the projects it has seen, the saved views.

Both live in one small folder: ``$BLASE_HOME`` when set, else ``$XDG_CONFIG_HOME/blase``, else
``~/.config/blase``. ``projects.json`` lists the projects that ``blase create`` made and
``blase ui`` showed, so a later ``blase ui`` shows their runs side by side from anywhere;
``views.json`` holds named runs-table queries (filters, sort, columns) that a URL restores
(``/runs?view=NAME``). Each file is rewritten whole and atomically; a damaged one is a
:class:`~blase.ui.UIError` that names it and says how to start afresh.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

from blase import _fs
from blase.errors import BlaseError

__all__ = ["RegistryError", "UserRegistry", "remember_project", "user_dir"]

PROJECTS = "projects.json"
VIEWS = "views.json"
_VIEW_NAME = re.compile(r"^[\w .-]{1,64}$")


class RegistryError(BlaseError):
    """The user-level list of projects or views cannot be read or changed."""


def user_dir() -> Path:
    """``$BLASE_HOME``, else ``$XDG_CONFIG_HOME/blase``, else ``~/.config/blase``."""
    if os.environ.get("BLASE_HOME"):
        return Path(os.environ["BLASE_HOME"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "blase"


class UserRegistry:
    """The projects and saved views of this user (``folder``: default :func:`user_dir`)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or user_dir()

    # ------------------------------------------------------------------ files

    def _read(self, name: str) -> dict[str, Any]:
        path = self.folder / name
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise RegistryError(f"cannot read {path}: {exc}",
                                hint=f"move it aside (mv {path} {path}.bak); blase starts a new one") from None
        if not isinstance(data, dict):
            raise RegistryError(f"{path} is not a JSON object", hint=f"move it aside (mv {path} {path}.bak)")
        return data

    def _write(self, name: str, data: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        _fs.write_json_atomic(self.folder / name, data, indent=1)

    # ------------------------------------------------------------------ projects

    def projects(self) -> list[Path]:
        """Registered project folders that still hold a ``blase.yaml``, oldest first."""
        entries = self._read(PROJECTS).get("projects") or []
        paths = [Path(e["path"]) for e in entries if isinstance(e, dict) and isinstance(e.get("path"), str)]
        return [p for p in paths if (p / "blase.yaml").is_file()]

    def remember(self, root: Path) -> bool:
        """Add a project folder to the list; ``True`` when it was not there yet."""
        root = Path(root).resolve()
        data = self._read(PROJECTS)
        entries = [e for e in data.get("projects") or [] if isinstance(e, dict)]
        if any(e.get("path") == str(root) for e in entries):
            return False
        entries.append({"path": str(root), "name": root.name, "added": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        self._write(PROJECTS, {"projects": entries})
        return True

    # ------------------------------------------------------------------ views

    def views(self) -> dict[str, str]:
        """Saved views: name -> the runs page's query string."""
        views = self._read(VIEWS).get("views") or {}
        return {str(k): str(v) for k, v in views.items() if isinstance(v, str)}

    def view(self, name: str) -> str:
        views = self.views()
        if name not in views:
            shown = ", ".join(sorted(views)) or "none yet"
            raise RegistryError(f"no saved view {name!r}", hint=f"saved views: {shown}; save one from the runs page")
        return views[name]

    def save_view(self, name: str, query: str) -> None:
        """Save (or replace) view ``name`` as the runs page's query string ``query``."""
        if not _VIEW_NAME.match(name or ""):
            raise RegistryError(f"view name {name!r} is not usable",
                                hint="use 1-64 letters, digits, spaces, dots, dashes or underscores")
        if len(query) > 4000:
            raise RegistryError(f"the query of view {name!r} is {len(query)} characters long",
                                hint="a view holds at most 4000 characters of filters")
        data = self._read(VIEWS)
        views = dict(data.get("views") or {})
        views[name] = query.lstrip("?")
        self._write(VIEWS, {"views": views})

    def delete_view(self, name: str) -> None:
        data = self._read(VIEWS)
        views = dict(data.get("views") or {})
        if views.pop(name, None) is None:
            raise RegistryError(f"no saved view {name!r}", hint="the runs page lists the saved views")
        self._write(VIEWS, {"views": views})


def remember_project(root: Path) -> None:
    """Register a project for later ``blase ui`` runs; a registry that cannot be written is
    logged, never an error of the command that made the project."""
    try:
        UserRegistry().remember(root)
    except (OSError, BlaseError) as exc:
        logging.getLogger(__name__).warning("could not register %s for blase ui: %s", root, exc)
