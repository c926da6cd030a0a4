"""``train.model: keras``: a Keras 3 network trained from the shards, saved as ``model.keras``.

The network is the built-in MLP (``train.options.hidden``, ``dropout``) or the keras.Model a
project script builds (``train.options.build: scripts/keras_model.py:build_model``, called as
``build_model(n_features, n_outputs, task)``; its code is part of the train step's cache key
and of the run's code snapshot). It learns from the train split a batch at a time
(:class:`~blase.contrib._keras_data.ShardBatches`, a ``keras.utils.PyDataset`` over the
memory-mapped shards) with Adam, stops early on the val loss and keeps its best epoch.

Keras runs on the backend ``train.options.backend`` names (``torch``, ``tensorflow`` or
``jax``; default ``$KERAS_BACKEND``, else ``torch``, which Blase already has). Seeded by the
project's seed (``keras.utils.set_random_seed``, deterministic TensorFlow kernels), the same
seed gives the same ``model.keras`` bytes on CPU. Loading never runs code from the file
(``safe_mode=True``, and a check that the config names only Keras objects). A ``.keras``
file runs on any backend, so a package trained on TensorFlow predicts where only torch is.
A package also gets ``model.onnx`` (Keras's export: torch.onnx, or tf2onnx on TensorFlow).

Scores are what the built-in models give: one logit per row for binary, one per class for
multiclass, the prediction in the label's units for regression (the network learns the
standardised label; ``model.json`` keeps the mean and scale).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from blase.contrib._keras_setup import (
    KerasOptions,
    import_keras,
    load_build_function,
    loading_backend,
    resolve_backend,
    seed_keras,
)
from blase.model import ExportUnsupported, FitContext, FitReport, ModelKind, ModelSpec, TrainingData

__all__ = ["KerasModel"]

MODEL_FILE = "model.keras"
#: Rows per forward pass in predict (the caller's batch is cut into these).
PREDICT_ROWS = 8192


class KerasModel(ModelKind):
    """A Keras network on the shards; options: :class:`~blase.contrib._keras_setup.KerasOptions`."""

    name = "keras"
    config_model = KerasOptions
    files = (MODEL_FILE,)
    can_continue = True  # blase update --mode finetune: more epochs from the deployed weights
    epochs_option = "epochs"

    def __init__(self, options: KerasOptions | None = None) -> None:
        super().__init__(options if options is not None else KerasOptions())

    @property
    def _options(self) -> KerasOptions:
        return self.options  # type: ignore[return-value]

    # -- what the train step's cache key covers -------------------------------------------------

    def code(self, root: Path | None) -> dict[str, Any]:
        build = self._options.build
        if not build:
            return {}
        return {build: load_build_function(build, root, resolve_backend(self._options.backend))}

    def cache_inputs(self) -> dict[str, str]:
        return {"keras_backend": resolve_backend(self._options.backend)}

    # -- fit --------------------------------------------------------------------------------------

    def fit(self, data: TrainingData, ctx: FitContext) -> KerasModel:
        o = self._options
        self.backend_ = resolve_backend(o.backend)
        keras = import_keras(self.backend_)  # before _keras_data, which imports keras
        from blase.contrib._keras_data import ShardBatches

        seed = o.seed if o.seed is not None else ctx.seed
        seed_keras(keras, seed)
        init = ctx.init if isinstance(ctx.init, KerasModel) else None
        if init is not None:  # finetune: the deployed network, its label scale and optimiser state
            self.scale_, network = init.scale_, init.network_
        else:  # a build script's network comes uncompiled too: Blase picks the loss for the task
            self.scale_ = data.label_scale("train") if data.task == "regression" else (0.0, 1.0)
            network = self._network(keras, data, ctx)
            network.compile(optimizer=keras.optimizers.Adam(learning_rate=o.lr, name="adam"),
                            loss=_loss(keras, data.task), jit_compile=False)
        train = ShardBatches(data, "train", o.batch_size, seed=seed, shuffle=True, scale=self.scale_)
        has_val = data.rows("val") > 0
        val = ShardBatches(data, "val", o.batch_size, seed=seed, shuffle=False, scale=self.scale_) if has_val else None
        stop = None
        if has_val and o.early_stopping:
            stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=o.early_stopping,
                                                 restore_best_weights=True)
        history = network.fit(train, validation_data=val, epochs=o.epochs, verbose=0,
                              callbacks=[stop] if stop is not None else [])
        self.network_ = network
        self.report_ = _report(history.history, stop, o.epochs, self.backend_, continued=init is not None)
        return self

    def _network(self, keras: Any, data: TrainingData, ctx: FitContext) -> Any:
        from blase.contrib._keras_data import build_network, call_build

        o = self._options
        if o.build:
            func = load_build_function(o.build, ctx.project_root, self.backend_)
            return call_build(func, o.build, n_features=data.n_features, n_outputs=data.n_outputs, task=data.task)
        return build_network(o.hidden, o.dropout, data.n_features, data.n_outputs)

    # -- files ------------------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        from blase.contrib._keras_file import save_keras

        save_keras(self.network_, Path(folder) / MODEL_FILE)

    @classmethod
    def load(cls, folder: Path, spec: ModelSpec) -> KerasModel:
        from blase.contrib._keras_file import load_keras

        options = KerasOptions.model_validate(spec.options)
        model = cls(options)
        model.backend_ = loading_backend(options.backend)
        keras = import_keras(model.backend_, strict=False)
        model.backend_ = keras.backend.backend()
        model.network_ = load_keras(keras, Path(folder) / MODEL_FILE)
        model.scale_ = (spec.target_mean, spec.target_std)
        return model

    def describe(self, data: TrainingData) -> ModelSpec:
        spec = super().describe(data)
        spec.options["backend"] = self.backend_  # the one it was trained on, whatever chose it
        spec.target_mean, spec.target_std = self.scale_
        return spec

    def versions(self) -> dict[str, str]:
        import sys

        keras = sys.modules["keras"]
        library = sys.modules.get({"tensorflow": "tensorflow", "jax": "jax"}.get(self.backend_, "torch"))
        return {"keras": keras.__version__, "keras_backend": self.backend_,
                self.backend_: str(getattr(library, "__version__", "unknown"))}

    def export_onnx(self, path: Path, n_features: int) -> None:
        """Keras's own ONNX export (``model.export(format="onnx")``): torch.onnx on the torch
        backend, tf2onnx on TensorFlow (the ``tensorflow`` extra has it); then the label scale,
        as :meth:`predict` applies it."""
        from blase.contrib._onnx import require_converter, scale_output

        if self.backend_ == "tensorflow":
            require_converter("tf2onnx", what="a Keras model on the TensorFlow backend", extra="tensorflow")
        keras = import_keras(self.backend_, strict=False)
        spec = keras.InputSpec(shape=(None, n_features), dtype="float32", name="features")
        try:
            with warnings.catch_warnings():  # torch's tracer on Keras's shape code: harmless here
                warnings.simplefilter("ignore")
                self.network_.export(str(path), format="onnx", verbose=False, input_signature=[spec])
        except ImportError as exc:  # jax needs jax2onnx-style converters Blase does not ship
            raise ExportUnsupported(f"ONNX export of a Keras model on {self.backend_} needs {exc.name or exc}",
                                    hint=f"pip install {exc.name}, or train on the torch backend") from exc
        mean, std = self.scale_
        if (mean, std) != (0.0, 1.0):
            scale_output(path, mean, std)

    # -- predict ----------------------------------------------------------------------------------

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        n_outputs = int(self.network_.outputs[0].shape[-1]) if getattr(self.network_, "outputs", None) else 1
        parts = [np.asarray(self.network_.predict_on_batch(x[i : i + PREDICT_ROWS]), dtype=np.float32)
                 for i in range(0, len(x), PREDICT_ROWS)]
        scores = np.concatenate(parts) if parts else np.empty((0, n_outputs), dtype=np.float32)
        if scores.ndim == 2 and scores.shape[1] == 1:
            scores = scores[:, 0]
        mean, std = self.scale_
        return scores * np.float32(std) + np.float32(mean) if (mean, std) != (0.0, 1.0) else scores


def _loss(keras: Any, task: str) -> Any:
    if task == "binary":
        return keras.losses.BinaryCrossentropy(from_logits=True)
    if task == "multiclass":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return keras.losses.MeanSquaredError()


def _report(history: dict[str, list[float]], stop: Any, epochs: int, backend: str, *, continued: bool) -> FitReport:
    """Details and per-epoch history of a fit (``best_epoch`` counts from 1)."""
    losses, val = history.get("loss", []), history.get("val_loss", [])
    rows = [{"epoch": i + 1, "loss": float(v), **({"val_loss": float(val[i])} if i < len(val) else {})}
            for i, v in enumerate(losses)]
    # with early stopping the network keeps its best val epoch (the first lowest), else its last
    kept = int(np.argmin(val)) if val and stop is not None else len(losses) - 1
    details: dict[str, Any] = {
        "epochs": len(losses), "best_epoch": kept + 1,
        "best_metric": float(val[kept]) if kept < len(val) else None,
        "monitor": "val_loss" if val else None, "backend": backend,
        "stopped_early": bool(stop is not None and stop.stopped_epoch > 0 and len(losses) < epochs),
        "continued": continued,
    }
    warnings = [] if val else ["no val split: no early stopping, the model keeps its last epoch"]
    return FitReport(details=details, history=rows, warnings=warnings)
