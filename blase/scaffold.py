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
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from blase._fs import replace_dir
from blase.errors import ProjectError
from blase.project import CONFIG_NAME, Project

__all__ = ["PLUGIN_KINDS", "TEMPLATES", "PluginPackage", "create_plugin", "create_project"]

logger = logging.getLogger(__name__)

TEMPLATES = ("tabular", "json", "rl")


@dataclass(frozen=True)
class _Example:
    """A template's bundled data (``blase.datasets``) and what its blase.yaml starts with."""

    dataset: str
    file: str
    label: str
    scripts: tuple[str, ...]
    #: data.source and data.label written without the example (``--no-example``).
    empty: tuple[str, str] = ("data/train.csv", "target")


_EXAMPLES = {
    "tabular": _Example("penguins", "penguins.csv", "species", ("train.py", "transforms.py")),
    "json": _Example("orders", "orders.ndjson", "returned", ("items.py",), ("data/records.ndjson", "target")),
    "rl": _Example("cartpole", "cartpole.csv", "action", ("env.py",), ("data/observations.csv", "action")),
}
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
    spec = _EXAMPLES[template]
    if example:
        from blase.datasets import dataset_path

        shutil.copyfile(dataset_path(spec.dataset), root / "data" / spec.file)
        values = {"name": name, "source": f"data/{spec.file}", "label": spec.label}
    else:
        values = {"name": name, "source": spec.empty[0], "label": spec.empty[1]}

    def render(text: str) -> str:
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        return text

    (root / CONFIG_NAME).write_text(render(tpl.joinpath("blase.yaml").read_text()))
    (root / "README.md").write_text(render(tpl.joinpath("README.md").read_text()))
    (root / ".gitignore").write_text(tpl.joinpath("gitignore.txt").read_text())
    for script in spec.scripts:
        (root / "scripts" / script).write_text(tpl.joinpath("scripts", script + ".tmpl").read_text())


# -- plugin packages --------------------------------------------------------------------------------

#: The kinds ``blase create --template plugin --kind KIND`` can make (a template each).
PLUGIN_KINDS = ("operation", "source", "drift_test", "step", "model")
_USAGE = {
    "operation": "```yaml\ntransform:\n  - op: {{name}}\n    k: 3.0\n```",
    "source": "```yaml\ndata:\n  source: data/export{{suffix}}   # or data.format: {{name}}\n```",
    "drift_test": "```yaml\nmonitor:\n  tests: {numeric: {{name}}, categorical: {{name}}}\n```",
    "step": "```yaml\nplugins:\n  - name: {{name}}\n    options: {min_accuracy: 0.8}\n```",
    "model": "```yaml\ntrain:\n  model: {{name}}\n  options: {alpha: 1.0}\n```",
}


def _plugin_names(target: Path) -> dict[str, str]:
    """The names a plugin package uses, from its folder's name (``blase-zclip``)."""
    from blase.plugins import BUILTIN_NAMES

    package = target.name
    name = re.sub(r"[^a-z0-9_]", "_", package.lower())
    name = re.sub(r"^blase_", "", name).strip("_")
    if not re.match(r"^[a-z][a-z0-9_]{0,63}$", name):
        raise ProjectError(f"{package!r} gives no usable plugin name ({name!r})",
                           hint="name the folder with letters first, e.g. blase-zclip (the plugin is 'zclip')")
    taken = [k for k, names in BUILTIN_NAMES.items() if name in names]
    if taken:
        raise ProjectError(f"the plugin name {name!r} is a built-in {taken[0]}'s",
                           hint="a plugin cannot replace a built-in; choose another folder name")
    return {"package": package, "name": name, "module": f"blase_{name}",
            "class": "".join(part.capitalize() for part in name.split("_")), "suffix": f".{name[:15]}"}


@dataclass(frozen=True)
class PluginPackage:
    """A plugin package made by :func:`create_plugin`."""

    folder: Path
    name: str
    kind: str
    module: str


def create_plugin(path: str | os.PathLike[str], *, kind: str = "operation") -> PluginPackage:
    """Create a plugin package at ``path``: ``pyproject.toml`` with the ``blase.plugins`` entry
    point, a light manifest module, the implementation, a README and ``tests/`` running
    Blase's conformance suite. The folder's name (``blase-zclip``) gives the plugin's
    (``zclip``) and the module's (``blase_zclip``)."""
    tpl = resources.files("blase.templates").joinpath("plugin")
    if kind not in PLUGIN_KINDS:
        raise ProjectError(f"unknown plugin kind {kind!r}", hint=f"choose one of: {', '.join(PLUGIN_KINDS)}")
    if not tpl.joinpath(f"{kind}.py.tmpl").is_file():
        raise ProjectError(f"the {kind} plugin kind is not available in this version of Blase yet",
                           hint="make one of: " + ", ".join(k for k in PLUGIN_KINDS
                                                            if tpl.joinpath(f"{k}.py.tmpl").is_file()))
    target = Path(path).expanduser().absolute()
    values = _plugin_names(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ProjectError(f"{target} exists and is not an empty folder", hint="choose a new name")
    values |= {"kind": kind, "description": f"a Blase {kind.replace('_', ' ')} plugin",
               "manifest_extra": f'\n    suffixes=("{values["suffix"]}",),' if kind == "source" else ""}

    def render(text: str) -> str:
        for key, value in {"usage": _USAGE.get(kind, ""), **values}.items():
            text = text.replace("{{" + key + "}}", value)
        return text

    files = {"pyproject.toml": "pyproject.toml.tmpl", "README.md": "README.md.tmpl",
             f"{values['module']}/__init__.py": "manifest.py.tmpl", f"{values['module']}/_impl.py": f"{kind}.py.tmpl",
             "tests/test_plugin.py": "test_plugin.py.tmpl"}
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.creating-", dir=target.parent))
    try:
        for rel, source in files.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).write_text(render(tpl.joinpath(source).read_text()))
        replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("created %s plugin %s at %s", kind, values["name"], target)
    return PluginPackage(target, values["name"], kind, values["module"])
