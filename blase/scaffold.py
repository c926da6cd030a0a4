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
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from blase._fs import replace_dir
from blase.errors import ProjectError
from blase.project import CONFIG_NAME, Project

__all__ = [
    "PLUGIN_KINDS",
    "PROJECT_TEMPLATES",
    "TEMPLATES",
    "PluginPackage",
    "ProjectTemplate",
    "create_plugin",
    "create_project",
    "register_template",
]

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class ProjectTemplate:
    """A kind of project ``blase create NAME --template NAME`` makes: the files under
    ``blase/templates/<name>/`` (``blase.yaml``, ``README.md``, ``gitignore.txt`` and the
    ``scripts``, each ``scripts/<file>.tmpl``) and the example data it writes.

    Every template passes the same compatibility suite (``tests/test_templates.py``): create,
    check, run, inspect, reproduce --verify, diff, deploy, predict on :attr:`new_data`,
    monitor, update. Register one with :func:`register_template`.
    """

    name: str
    #: One line for ``blase create --help`` and ``blase demo``: what the example data is.
    description: str
    #: The scripts copied into ``scripts/`` (from ``scripts/<name>.tmpl``).
    scripts: tuple[str, ...]
    #: Writes the example data under the project folder; returns the ``{{source}}`` (and any
    #: other) values of ``blase.yaml``.
    write_example: Callable[[Path], dict[str, str]]
    #: ``blase.yaml``'s values without the example data (``--no-example``).
    empty: dict[str, str]
    #: Raw data (relative to the project) that ``blase predict``, ``monitor`` and ``update``
    #: take in the examples and the compatibility suite: inputs the model never saw if possible.
    new_data: str


def _bundled(dataset: str, file: str, label: str) -> Callable[[Path], dict[str, str]]:
    """A ``write_example`` that copies a bundled data set (``blase.datasets``) into ``data/``."""

    def write(root: Path) -> dict[str, str]:
        from blase.datasets import dataset_path

        shutil.copyfile(dataset_path(dataset), root / "data" / file)
        return {"source": f"data/{file}", "label": label}

    return write


def _digits(root: Path) -> dict[str, str]:
    from blase.datasets import write_digit_images

    write_digit_images(root / "data" / "images", range(500))
    write_digit_images(root / "data" / "new", range(500, 600))
    return {"source": "data/images"}


def _tones(root: Path) -> dict[str, str]:
    from blase.datasets import write_tone_clips

    write_tone_clips(root / "data" / "clips", per_class=40, seed=0)
    write_tone_clips(root / "data" / "new", per_class=10, seed=1)
    return {"source": "data/clips"}


#: The project templates by name, in the order ``blase create --help`` lists them.
PROJECT_TEMPLATES: dict[str, ProjectTemplate] = {}


def register_template(template: ProjectTemplate) -> None:
    """Add a project template (its files live in ``blase/templates/<name>/``)."""
    if template.name in PROJECT_TEMPLATES or template.name == "plugin":
        raise ProjectError(f"template {template.name!r} is registered twice", hint="choose another name")
    PROJECT_TEMPLATES[template.name] = template


register_template(ProjectTemplate(
    name="tabular", description="data/penguins.csv (344 Palmer penguins, 3 species, with NAs)",
    scripts=("train.py", "transforms.py"), write_example=_bundled("penguins", "penguins.csv", "species"),
    empty={"source": "data/train.csv", "label": "target"}, new_data="data/penguins.csv"))
register_template(ProjectTemplate(
    name="images", description="data/images/ (500 handwritten digits, 8x8 PNG, a folder per class; "
                               "100 more in data/new/)",
    scripts=("cnn.py",), write_example=_digits, empty={"source": "data/images"}, new_data="data/new"))
register_template(ProjectTemplate(
    name="audio", description="data/clips/ (160 generated one-second WAV clips: hum, whistle, chirp, noise; "
                              "40 more in data/new/)",
    scripts=("cnn.py",), write_example=_tones, empty={"source": "data/clips"}, new_data="data/new"))
register_template(ProjectTemplate(
    name="json", description="data/orders.ndjson (3,000 generated e-commerce orders: nested customer, items, "
                             "payment; label `returned`)",
    scripts=("items.py",), write_example=_bundled("orders", "orders.ndjson", "returned"),
    empty={"source": "data/records.ndjson", "label": "target"}, new_data="data/orders.ndjson"))
register_template(ProjectTemplate(
    name="rl", description="data/cartpole.csv (4,500 CartPole-v1 observations and a balancing controller's "
                           "actions; the policy trains in the environment)",
    scripts=("env.py",), write_example=_bundled("cartpole", "cartpole.csv", "action"),
    empty={"source": "data/observations.csv", "label": "action"}, new_data="data/cartpole.csv"))

#: The names of the project templates (``plugin`` makes a plugin package instead).
TEMPLATES = tuple(PROJECT_TEMPLATES)
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
        One of :data:`TEMPLATES` (``tabular``, ``images``...).
    example:
        Write the template's bundled data into ``data/`` (the Palmer penguins, the digits)
        and point ``blase.yaml`` at it, so the pipeline runs at once. Without it ``data/`` is
        empty.

    Raises
    ------
    ProjectError
        When the folder is not empty, is inside another project, or the name is unusable.
    """
    if template not in PROJECT_TEMPLATES:
        raise ProjectError(
            f"unknown template {template!r}",
            hint=f"choose one of: {', '.join(PROJECT_TEMPLATES)} (or plugin, for a plugin package)",
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
    made = PROJECT_TEMPLATES[template]
    tpl = resources.files("blase.templates").joinpath(template)
    values = {"name": name, **(made.write_example(root) if example else made.empty)}

    def render(text: str) -> str:
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        return text

    (root / CONFIG_NAME).write_text(render(tpl.joinpath("blase.yaml").read_text()))
    (root / "README.md").write_text(render(tpl.joinpath("README.md").read_text()))
    (root / ".gitignore").write_text(tpl.joinpath("gitignore.txt").read_text())
    for script in made.scripts:
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
