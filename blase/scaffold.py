"""``blase create``: make a new project folder from a template.

The project is assembled in a hidden sibling folder and renamed into place at the end, so an
error half-way never leaves a half-made project behind.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from blase._fs import replace_dir
from blase.errors import ProjectError
from blase.project import CONFIG_NAME, Project

__all__ = ["TEMPLATES", "create_project"]

logger = logging.getLogger(__name__)

TEMPLATES = ("tabular",)
_FOLDERS = ("scripts", "data", "models", "outputs", "runs", ".blase")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def create_project(
    path: str | os.PathLike[str],
    *,
    template: str = "tabular",
    example: bool = True,
) -> Project:
    """Create a project at ``path`` and return it.

    Parameters
    ----------
    path:
        The new folder. Its name becomes the project's name. It must not exist, or be empty.
    template:
        One of :data:`TEMPLATES`.
    example:
        Copy the bundled Palmer penguins data into ``data/`` and point ``blase.yaml`` at it,
        so the example script and pipeline run at once. Without it ``data/`` is empty.

    Raises
    ------
    ProjectError
        When the folder is not empty, is inside another project, or the name is unusable.
    """
    if template not in TEMPLATES:
        raise ProjectError(
            f"unknown template {template!r}", hint=f"choose one of: {', '.join(TEMPLATES)}"
        )
    target = Path(path).expanduser().absolute()
    name = target.name
    if not _NAME.match(name):
        raise ProjectError(
            f"{name!r} is not a usable project name",
            hint="use letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    if target.exists():
        if not target.is_dir():
            raise ProjectError(f"{target} exists and is a file", hint="choose another name")
        entries = sorted(os.listdir(target))
        if entries:
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise ProjectError(
                f"{target} is not empty ({len(entries)} entries: {shown}); "
                "blase create never writes into a folder that holds files",
                hint="choose a new name, or empty the folder first",
            )
    for parent in target.parents:
        if (parent / CONFIG_NAME).is_file():
            raise ProjectError(
                f"{target} would be inside the project at {parent}",
                hint="create the new project outside it",
            )
    target.parent.mkdir(parents=True, exist_ok=True)

    staging = Path(tempfile.mkdtemp(prefix=f".{name}.creating-", dir=target.parent))
    try:
        _fill(staging, name=name, template=template, example=example)
        replace_dir(staging, target)  # `target` is absent or empty, checked above
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("created project %s at %s", name, target)
    return Project(target)


def _fill(root: Path, *, name: str, template: str, example: bool) -> None:
    for folder in _FOLDERS:
        (root / folder).mkdir()
    tpl = resources.files("blase.templates").joinpath(template)
    if example:
        from blase.datasets import dataset_path

        shutil.copyfile(dataset_path("penguins"), root / "data" / "penguins.csv")
        values = {"name": name, "source": "data/penguins.csv", "label": "species"}
    else:
        values = {"name": name, "source": "data/train.csv", "label": "target"}

    def render(text: str) -> str:
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        return text

    (root / CONFIG_NAME).write_text(render(tpl.joinpath("blase.yaml").read_text()))
    (root / "README.md").write_text(render(tpl.joinpath("README.md").read_text()))
    (root / ".gitignore").write_text(tpl.joinpath("gitignore.txt").read_text())
    for script in ("train.py", "transforms.py"):
        (root / "scripts" / script).write_text(tpl.joinpath("scripts", script + ".tmpl").read_text())
