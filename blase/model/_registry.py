"""The model registry: ``train.model: NAME`` to a :class:`~blase.model.ModelKind` class.

Names resolve in this order: the built-in kinds (``linear``, ``mlp``, declared below as
:class:`~blase.plugins.Plugin` manifests exactly as a plugin declares itself), then the
``model`` plugins of installed packages (the ``blase.plugins`` entry points, Blase's own
``xgboost`` and ``lightgbm`` among them) and of the project's ``plugins:`` files. A
``"scripts/model.py:build_model"`` reference is a torch factory script. Only the kind a
project uses is imported (:meth:`Plugin.load`), so ``blase --help`` never imports xgboost.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from blase._version import __version__
from blase.errors import ConfigError, ConfigProblem
from blase.model._contract import ModelKind
from blase.model._errors import TrainError
from blase.model._spec import ModelSpec, read_spec
from blase.plugins import Plugin, plugin_set

__all__ = ["BUILTIN_MODEL_PLUGINS", "kind_class", "load_trained", "model_kind", "model_plugin", "options_for"]

#: The built-in kinds, registered as a plugin registers its own.
BUILTIN_MODEL_PLUGINS: tuple[Plugin, ...] = (
    Plugin(name="linear", kind="model", target="blase.train:LinearModel", version=__version__,
           description="a linear model in torch (logistic, softmax or linear regression)", origin="blase"),
    Plugin(name="mlp", kind="model", target="blase.train:MLPModel", version=__version__,
           description="a tabular MLP in torch (train.hidden, dropout, batch_norm, linear_skip)", origin="blase"),
    Plugin(name="glm", kind="model", target="blase.model._glm:GLMModel", version=__version__,
           description="ridge, logistic or softmax regression fitted exactly, its L2 penalty chosen by "
           "cross-validation (scikit-learn's RidgeCV / LogisticRegression)", origin="blase"),
    Plugin(name="kernel", kind="model", target="blase.model._kernel:KernelModel", version=__version__,
           description="an RBF kernel machine for small data: Nystroem features of the training rows and glm "
           "on them (kernel logistic or ridge regression, scikit-learn's SVC territory)", origin="blase"),
    Plugin(name="ensemble", kind="model", target="blase.model._ensemble:EnsembleModel", version=__version__,
           description="a weighted average of a few kinds' predictions (train.options.members)", origin="blase"),
    Plugin(name="auto", kind="model", target="blase.model._auto:AutoModel", version=__version__,
           description="fits glm, kernel (small data), mlp and lightgbm by cross-validation and keeps the best, or their weighted "
           "average when it scores better", origin="blase"),
)
#: Torch networks from a factory script (``scripts/model.py:build_model``) or a class.
_TORCH = Plugin(name="torch", kind="model", target="blase.train:TorchModel", version=__version__,
                description="a torch network from a factory script or an nn.Module", origin="blase")

_HINT = ("train.model in blase.yaml is 'linear', 'mlp', a model plugin ({plugins}; see `blase plugins`), "
         "or a factory like 'scripts/model.py:build_model'")


def model_plugin(name: str, *, root: str | Path | None = None, entries: Sequence[Any] = ()) -> Plugin:
    """The manifest of the model kind ``name`` (no import of the kind's code).

    ``root`` and ``entries`` are the project folder and its ``plugins:`` (project files
    define model plugins too).

    Raises
    ------
    TrainError
        For an unknown name, with the closest known one.
    """
    if ":" in name:
        return _TORCH
    for plugin in BUILTIN_MODEL_PLUGINS:
        if plugin.name == name:
            return plugin
    plugins = plugin_set(root, entries)
    found = plugins.get("model", name)
    if found is not None:
        return found
    known = [p.name for p in BUILTIN_MODEL_PLUGINS] + plugins.names("model")
    close = difflib.get_close_matches(name, known, n=1)
    maybe = f" (did you mean '{close[0]}'?)" if close else ""
    listed = ", ".join(plugins.names("model")) or "none installed"
    raise TrainError(f"unknown model '{name}'{maybe}", hint=_HINT.format(plugins=listed))


def _load_class(plugin: Plugin) -> type[ModelKind]:
    # the torch kind serves two names (linear, mlp); load() names a missing library and its extra
    return plugin.load_class(ModelKind, name_attr=None if plugin is _TORCH else "name")


def options_for(cls: type[ModelKind], options: dict[str, Any], *, file: str = "blase.yaml",
                key: str = "train.options") -> BaseModel | None:
    """``options`` validated by ``cls.config_model``.

    Raises
    ------
    ConfigError
        One problem per bad key, each naming ``train.options.<key>``, with a suggestion for
        a misspelt one and the kind's options in the hint.
    """
    model = cls.config_model
    name = cls.name or "this model"
    if model is None:
        if not options:
            return None
        problems = [ConfigProblem(file, None, f"{key}.{k}", f"{key}.{k}: model {name!r} takes no options")
                    for k in sorted(options)]
        raise ConfigError(problems, hint=f"remove {key} (the {name} model is shaped by train.hidden, "
                          "dropout, batch_norm, epochs, lr...)")
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        known = list(model.model_fields)
        problems = []
        for err in exc.errors():
            path = ".".join(str(p) for p in err["loc"])
            close = difflib.get_close_matches(str(err["loc"][0]), known, n=1) if err["type"] == "extra_forbidden" else []
            maybe = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(ConfigProblem(file, None, f"{key}.{path}", f"{key}.{path}: {err['msg']}{maybe}"))
        raise ConfigError(problems, hint=f"the options of model {name!r}: {', '.join(known)}") from None


def model_kind(name: str, options: dict[str, Any] | None = None, *, root: str | Path | None = None,
               entries: Sequence[Any] = ()) -> ModelKind:
    """An unfitted model of kind ``name`` with its validated ``options`` (``train.options``)."""
    cls = _load_class(model_plugin(name, root=root, entries=entries))
    return cls(options_for(cls, dict(options or {})))


def kind_class(spec: ModelSpec, *, root: str | Path | None = None, entries: Sequence[Any] = ()) -> type[ModelKind]:
    """The class that loads a model described by ``spec`` (found by name, never by a path in it)."""
    if spec.kind in ("script", "module"):
        return _load_class(_TORCH)
    return _load_class(model_plugin(spec.name, root=root, entries=entries))


def load_trained(folder: str | Path, *, root: str | Path | None = None,
                 entries: Sequence[Any] | None = None) -> ModelKind:
    """The fitted model saved in ``folder`` (a train step's output or a package), loaded by
    the kind its ``model.json`` names. ``root`` and ``entries`` say where project model
    plugins come from; by default, the ``plugins:`` of the project around ``folder``."""
    spec = read_spec(folder)
    if entries is None:
        root, entries = _project_around(Path(folder))
    return kind_class(spec, root=root, entries=entries).load(Path(folder), spec)


def _project_around(folder: Path) -> tuple[Path | None, list[Any]]:
    """The project holding ``folder`` and its ``plugins:``; none outside a project."""
    from blase.errors import BlaseError
    from blase.project import find_project

    try:
        project = find_project(folder)
        return project.root, list(project.config().plugins)
    except BlaseError:
        return None, []
