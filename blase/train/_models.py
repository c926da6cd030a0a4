"""Models: the built-in tabular ones, user factory scripts, and the spec that rebuilds them.

A model reaches :class:`~blase.train.Train` in one of three ways:

``"linear"`` / ``"mlp"``
    built in (:func:`build_builtin_model`), shaped by ``hidden``, ``dropout`` and
    ``batch_norm`` under ``train:`` in ``blase.yaml``;
``"scripts/model.py:build_model"``
    a factory in a project script, called with keyword arguments as
    ``build_model(n_features=..., n_outputs=..., task=...)`` (plus ``config=`` the
    :class:`~blase.config.TrainConfig` when it takes a ``config`` parameter), returning an
    ``nn.Module`` that maps a float32 batch ``[b, n_features]`` to ``[b, n_outputs]`` logits
    (``[b]`` is accepted when ``n_outputs`` is 1);
an ``nn.Module``
    any module you built; :func:`load_model` rebuilds it by importing its class (with no
    arguments, or the ``init_kwargs`` given to ``set_model``), so prefer a factory script
    for modules whose constructor needs arguments.

``model.json`` (:class:`ModelSpec`) records which, with the shapes and the label mapping, so
:func:`load_model` rebuilds the same network and loads ``model.safetensors`` into it.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from blase._pyfile import exec_file, functions_of
from blase.model import MODEL_WEIGHTS, ModelSpec, read_spec
from blase.train._errors import TrainError

__all__ = [
    "BUILTIN_MODELS",
    "ModelSpec",
    "TabularMLP",
    "build_builtin_model",
    "check_model_fits",
    "load_model",
    "load_script_factory",
    "n_outputs_for",
]

logger = logging.getLogger(__name__)

BUILTIN_MODELS = ("linear", "mlp")


class TabularMLP(nn.Module):
    """Linear layers with ReLU (and optional batch norm and dropout), then a linear head.

    With no hidden layers it is a linear model (logistic/softmax/linear regression).

    ``linear_skip`` (wide and deep) adds a linear map of the inputs (``skip``, no bias: the
    head has one) to the head's output. The network then holds the linear model as a special
    case, so on data where a linear model is the right one (few rows, features that add up)
    it has that to fall back on instead of having to approximate it with ReLUs. (A head that
    starts at zero, so training starts from the linear model, did worse on bench/quality.py:
    the deep part learnt too slowly in the template's 50 epochs.)

    For regression, ``target_mean`` and ``target_std`` (the training labels' mean and standard
    deviation) map the head's output to the label's units, so the network learns a standardised
    target: a label in the hundreds (a price, a count) trains as fast as one near zero, and the
    saved model still predicts in the label's units. They are plain numbers, rebuilt from
    ``model.json``, not weights.
    """

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        hidden: list[int] | tuple[int, ...] = (),
        dropout: float = 0.0,
        batch_norm: bool = False,
        *,
        linear_skip: bool = False,
        target_mean: float = 0.0,
        target_std: float = 1.0,
    ) -> None:
        super().__init__()
        self.n_features = n_features
        self.n_outputs = n_outputs
        self.target_mean = float(target_mean)
        self.target_std = float(target_std)
        layers: list[nn.Module] = []
        width = n_features
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_outputs)
        # only with hidden layers: without them the head already is the linear model
        self.skip = nn.Linear(n_features, n_outputs, bias=False) if linear_skip and hidden else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.body(x))
        if self.skip is not None:
            out = out + self.skip(x)
        if self.target_std != 1.0 or self.target_mean != 0.0:
            out = out * self.target_std + self.target_mean
        return out


def n_outputs_for(task: str, n_classes: int) -> int:
    """Outputs the last layer needs: 1 logit (binary), one per class (multiclass), 1 (regression)."""
    return n_classes if task == "multiclass" else 1


def build_builtin_model(
    name: str,
    n_features: int,
    n_outputs: int,
    *,
    hidden: list[int] | tuple[int, ...] = (64, 32),
    dropout: float = 0.0,
    batch_norm: bool = False,
    linear_skip: bool = False,
    target_mean: float = 0.0,
    target_std: float = 1.0,
) -> nn.Module:
    """Build ``"linear"`` or ``"mlp"`` for ``n_features`` inputs and ``n_outputs`` outputs.

    ``linear_skip`` adds the linear path to an ``"mlp"`` and ``target_mean``/``target_std``
    put a regression's output in the label's units (see :class:`TabularMLP`).

    Raises
    ------
    TrainError
        For an unknown name.
    """
    target = {"target_mean": target_mean, "target_std": target_std}
    if name == "linear":
        return TabularMLP(n_features, n_outputs, **target)
    if name == "mlp":
        return TabularMLP(
            n_features,
            n_outputs,
            list(hidden),
            dropout=dropout,
            batch_norm=batch_norm,
            linear_skip=linear_skip,
            **target,
        )
    close = difflib.get_close_matches(name, BUILTIN_MODELS, n=1)
    maybe = f" (did you mean '{close[0]}'?)" if close else ""
    raise TrainError(
        f"unknown model '{name}'{maybe}",
        hint="train.model in blase.yaml is 'linear', 'mlp', or a factory like "
        "'scripts/model.py:build_model'",
    )


# -- user scripts ---------------------------------------------------------------------------


def _split_ref(ref: str) -> tuple[str, str]:
    path, sep, func = ref.rpartition(":")
    if not sep or not path or not func or not func.isidentifier():
        raise TrainError(
            f"model {ref!r} is not 'path/to/file.py:function'",
            hint="e.g. model: scripts/model.py:build_model (blase.yaml train:)",
        )
    return path, func


def _project_root(project_root: str | os.PathLike[str] | None, near: Path | None = None) -> Path:
    if project_root is not None:
        return Path(project_root)
    from blase.errors import ProjectError
    from blase.project import find_project

    for start in (near, None):
        try:
            return find_project(start).root
        except ProjectError:
            continue
    return Path.cwd()


def load_script_factory(
    ref: str, project_root: str | os.PathLike[str] | None = None, *, fallback: str | None = None
) -> tuple[Callable[..., Any], Path]:
    """Import ``func`` from ``path.py`` in ``'path.py:func'`` (relative to the project root).

    Raises
    ------
    TrainError
        When the file does not exist, raises on import, or lacks the function.
    """
    rel, func_name = _split_ref(ref)
    path = Path(rel)
    if not path.is_absolute():
        path = _project_root(project_root) / path
    if not path.is_file() and fallback and Path(fallback).is_file():
        path = Path(fallback)
    if not path.is_file():
        raise TrainError(
            f"model script {rel} does not exist (looked for {path})",
            hint=f"create it with a function `def {func_name}(n_features, n_outputs, task): ...` "
            "that returns a torch nn.Module, or fix train.model in blase.yaml",
        )
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    module_name = f"blase_user_model_{digest}"
    try:
        module = exec_file(path, module_name)
    except Exception as exc:
        raise TrainError(
            f"model script {rel} raised {type(exc).__name__} while being imported: {exc}",
            hint=f"fix {path} (run `python {path}` to see the full traceback)",
        ) from exc
    func = getattr(module, func_name, None)
    if not callable(func):
        found = functions_of(module)
        raise TrainError(
            f"model script {rel} has no function '{func_name}'"
            + (f" (it defines: {', '.join(found)})" if found else ""),
            hint=f"define `def {func_name}(n_features, n_outputs, task): ...` in {rel}, "
            "or point train.model at the right function",
        )
    return func, path


def call_factory(
    func: Callable[..., Any],
    ref: str,
    *,
    n_features: int,
    n_outputs: int,
    task: str,
    config: Any = None,
) -> nn.Module:
    """Call a model factory with keyword arguments; wrap its failures in :class:`TrainError`."""
    kwargs: dict[str, Any] = {"n_features": n_features, "n_outputs": n_outputs, "task": task}
    try:
        params = inspect.signature(func).parameters
        if "config" in params and config is not None:
            kwargs["config"] = config
    except (TypeError, ValueError):
        pass
    try:
        model = func(**kwargs)
    except Exception as exc:
        raise TrainError(
            f"model factory {ref} raised {type(exc).__name__}: {exc}",
            hint="it is called as build_model(n_features=..., n_outputs=..., task=...); "
            "fix the function (run it alone to see the traceback)",
        ) from exc
    if not isinstance(model, nn.Module):
        raise TrainError(
            f"model factory {ref} returned {type(model).__name__}, not a torch nn.Module",
            hint="return the network, e.g. `return torch.nn.Sequential(...)`",
        )
    return model


# -- checks ---------------------------------------------------------------------------------


def _first_linear(model: nn.Module) -> nn.Linear | None:
    for m in model.modules():
        if isinstance(m, nn.Linear) and not isinstance(m, nn.modules.lazy.LazyModuleMixin):
            return m
    return None


def check_model_fits(
    model: nn.Module,
    *,
    n_features: int,
    n_outputs: int,
    task: str,
    device: torch.device,
    where: str,
    describe: str = "model",
) -> None:
    """Run a 2-row batch of zeros through ``model`` (eval mode) and check both shapes.

    Raises
    ------
    TrainError
        When the model's input size differs from the shards' features, or its output does not
        fit the task.
    """
    first = _first_linear(model)
    mismatch = first is not None and first.in_features != n_features
    probe = torch.zeros(2, n_features, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(probe)
    except Exception as exc:
        if mismatch:
            raise TrainError(
                f"{describe} expects {first.in_features} inputs but the shards have {n_features} "
                f"features ({where})",
                hint=f"build the model with n_features={n_features} (a factory script gets it as "
                "an argument), or prepare the shards with the features the model was made for",
            ) from None
        raise TrainError(
            f"{describe} fails on a batch of shape [2, {n_features}] from the shards ({where}): "
            f"{type(exc).__name__}: {exc}",
            hint="the model must take float32 [batch, n_features] and return [batch, n_outputs]",
        ) from exc
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise TrainError(
            f"{describe} returns {type(out).__name__}, not a tensor",
            hint="forward() must return one tensor of logits (or predictions for regression)",
        )
    ok = tuple(out.shape) == (2, n_outputs) or (n_outputs == 1 and tuple(out.shape) == (2,))
    if not ok:
        need = {
            "binary": "1 output per row (one logit)",
            "multiclass": f"{n_outputs} outputs per row (one logit per class)",
            "regression": "1 output per row",
        }[task]
        raise TrainError(
            f"{describe} returns shape {list(out.shape)} for a batch of 2 rows, but the "
            f"{task} task needs {need} ({where})",
            hint=f"make the last layer output {n_outputs} value(s), e.g. nn.Linear(..., {n_outputs})",
        )


# -- rebuilding -----------------------------------------------------------------------------


def class_path_of(model: nn.Module) -> str:
    cls = type(model)
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_class(class_path: str) -> type:
    module_name, _, qualname = class_path.partition(":")
    if "<locals>" in qualname:
        raise ImportError(f"{qualname} is defined inside a function")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def rebuild(
    spec: ModelSpec, *, project_root: str | os.PathLike[str] | None = None, near: Path | None = None
) -> nn.Module:
    """Build the untrained network that ``spec`` describes."""
    if spec.kind == "builtin":
        return build_builtin_model(
            spec.name,
            spec.n_features,
            spec.n_outputs,
            hidden=spec.hidden,
            dropout=spec.dropout,
            batch_norm=spec.batch_norm,
            linear_skip=spec.linear_skip,
            target_mean=spec.target_mean,
            target_std=spec.target_std,
        )
    if spec.kind == "script":
        assert spec.ref is not None
        root = project_root if project_root is not None else _project_root(None, near)
        func, _ = load_script_factory(spec.ref, root, fallback=spec.script_path)
        return call_factory(
            func, spec.ref, n_features=spec.n_features, n_outputs=spec.n_outputs, task=spec.task
        )
    assert spec.class_path is not None
    how = (
        "load_model(out_dir, model=YourModule(...)) to load the weights into your own instance, "
        "or train with a factory script (train.model: scripts/model.py:build_model)"
    )
    try:
        cls = _import_class(spec.class_path)
    except (ImportError, AttributeError) as exc:
        raise TrainError(
            f"cannot import the model class {spec.class_path} to rebuild the model ({exc})",
            hint=f"use {how}",
        ) from None
    try:
        return cls(**(spec.init_kwargs or {}))
    except Exception as exc:
        raise TrainError(
            f"cannot rebuild {spec.class_path} with "
            f"{'arguments ' + json.dumps(spec.init_kwargs) if spec.init_kwargs else 'no arguments'}: "
            f"{type(exc).__name__}: {exc}",
            hint=f"pass init_kwargs= to set_model, or use {how}",
        ) from None


def load_model(
    out_dir: str | os.PathLike[str],
    *,
    model: nn.Module | None = None,
    project_root: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """Rebuild a trained model from ``out_dir`` (``model.json`` + ``model.safetensors``).

    Parameters
    ----------
    out_dir:
        The train step's output folder.
    model:
        An instance to load the weights into instead of rebuilding one (for modules whose
        class cannot be imported or needs arguments).
    project_root:
        Where ``scripts/`` lives for script models (default: the project around ``out_dir``,
        then the current folder).
    device:
        Where to put the model.

    Returns
    -------
    torch.nn.Module
        The model in eval mode; for a model plugin's kind (``xgboost``), the fitted
        :class:`~blase.model.ModelKind`, which is callable on a float32 batch like a module.

    Raises
    ------
    TrainError
        When the files are missing or bad, the model cannot be rebuilt, or the weights do not
        fit it.
    """
    from blase.train._checkpoint import load_tensors

    out = Path(out_dir)
    spec = read_spec(out)
    if spec.kind == "plugin":
        from blase.model import load_trained

        return load_trained(out)  # a model plugin's kind, found by name
    weights_path = out / MODEL_WEIGHTS
    if not weights_path.is_file():
        raise TrainError(
            f"no {MODEL_WEIGHTS} in {out}",
            hint="training has not finished an epoch there yet; train (or resume) first",
        )
    net = model if model is not None else rebuild(spec, project_root=project_root, near=out)
    try:
        state = load_tensors(weights_path)
    except OSError as exc:
        raise TrainError(f"cannot read {weights_path}: {exc}", hint="check the file") from None
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise TrainError(
            f"the weights in {weights_path} do not fit the rebuilt {spec.kind} model '{spec.name}': "
            f"{str(exc).splitlines()[0]}",
            hint="the model's code changed since training; restore it or train again",
        ) from None
    return net.to(device).eval()
