"""Models: the contract every kind of model keeps, the registry that finds kinds by name,
and the driver that fits one on prepared shards.

::

    from blase.model import FitContext, fit_model, load_trained, model_kind

    kind = model_kind("xgboost", {"n_estimators": 300})       # train.model / train.options
    fit_model(kind, "outputs/shards", FitContext(out_dir=Path("models/run1"), seed=42))
    model = load_trained("models/run1")                        # found again by name
    scores = model.predict(x)                                  # float32 [n, d] -> logits

- :class:`ModelKind`: the contract (``fit``, ``save``, ``load``, ``predict``, optional
  ``export_onnx``), implemented by the built-in ``glm`` (:class:`GLMModel`), ``kernel`` (:class:`KernelModel`), ``ensemble``
  (:class:`EnsembleModel`) and ``auto`` (:class:`AutoModel`) here, the built-in torch kinds (:mod:`blase.train`) and by model
  plugins (:mod:`blase.contrib.xgboost`, :mod:`blase.contrib.lightgbm`, or a project's own).
- :class:`TrainingData`: the shards a kind learns from, read through :mod:`blase.prepare`.
- :class:`ModelSpec`: ``model.json``.

This package imports no learning library; each kind imports its own when it is used.
"""

from blase.model._auto import AutoModel, AutoOptions
from blase.model._contract import REFIT_AUTO_ROWS, FitContext, FitReport, ModelKind
from blase.model._data import TrainingData
from blase.model._ensemble import EnsembleMember, EnsembleModel, EnsembleOptions
from blase.model._errors import ExportUnsupported, TrainError
from blase.model._fit import HISTORY_JSON, fit_model
from blase.model._glm import GLMModel, GLMOptions
from blase.model._kernel import KernelModel, KernelOptions
from blase.model._registry import (
    BUILTIN_MODEL_PLUGINS,
    kind_class,
    load_trained,
    model_kind,
    model_plugin,
    options_for,
)
from blase.model._spec import MODEL_JSON, MODEL_WEIGHTS, ModelSpec, Task, read_spec, write_spec

__all__ = [
    "BUILTIN_MODEL_PLUGINS",
    "HISTORY_JSON",
    "MODEL_JSON",
    "MODEL_WEIGHTS",
    "REFIT_AUTO_ROWS",
    "AutoModel",
    "AutoOptions",
    "EnsembleMember",
    "EnsembleModel",
    "EnsembleOptions",
    "ExportUnsupported",
    "FitContext",
    "FitReport",
    "GLMModel",
    "GLMOptions",
    "KernelModel",
    "KernelOptions",
    "ModelKind",
    "ModelSpec",
    "Task",
    "TrainError",
    "TrainingData",
    "fit_model",
    "kind_class",
    "load_trained",
    "model_kind",
    "model_plugin",
    "options_for",
    "read_spec",
    "write_spec",
]
