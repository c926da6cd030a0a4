"""Train: fit a model on prepared shards, with checkpoints, resume, early stopping and seeds.

::

    from blase.train import Train, load_model

    tr = Train({"model": "mlp", "hidden": [64, 32], "epochs": 20, "early_stopping": 3})
    result = tr.fit("outputs/shards", "models/mlp")      # a blase.steps.StepResult
    model = load_model("models/mlp")                      # nn.Module in eval mode

The model is a built-in (``"linear"``, ``"mlp"``), an ``nn.Module``, or a factory in a
project script (``"scripts/model.py:build_model"``, called as
``build_model(n_features=..., n_outputs=..., task=...)``); see :mod:`blase.train._models`.
The task comes from the shards' manifest: binary (one logit, ``BCEWithLogits``), multiclass
(one logit per class, cross-entropy) or regression (one output, MSE).

Files in the output folder: ``model.safetensors`` (best weights), ``model.json``
(:class:`ModelSpec`), ``history.json`` and ``checkpoint/`` (weights, optimizer and generator
state, all safetensors and JSON: no pickle is ever written or read).

The torch models are model kinds like any plugin's (:class:`LinearModel`, :class:`MLPModel`,
:class:`TorchModel` for scripts, registered in :mod:`blase.model`); ``train.model: xgboost``
and other model plugins go through the same registry and :func:`blase.model.fit_model`.

This package imports torch; import it where it is used.
"""

from blase.model import ModelKind
from blase.train._device import resolve_device
from blase.train._errors import TrainError
from blase.train._kinds import LinearModel, MLPModel, TorchModel
from blase.train._loop import EpochHook
from blase.train._models import (
    ModelSpec,
    TabularMLP,
    build_builtin_model,
    load_model,
    load_script_factory,
)
from blase.train._train import Train

__all__ = [
    "EpochHook",
    "LinearModel",
    "MLPModel",
    "ModelKind",
    "ModelSpec",
    "TabularMLP",
    "TorchModel",
    "Train",
    "TrainError",
    "build_builtin_model",
    "load_model",
    "load_script_factory",
    "resolve_device",
]
