"""The torch model kinds: ``linear``, ``mlp``, and networks from a factory script or a class.

They keep the :class:`~blase.model.ModelKind` contract the way a plugin does (the registry
finds ``linear`` and ``mlp`` through their manifests in :mod:`blase.model`), and hand the
epochs to :class:`~blase.train.Train`, which checkpoints, resumes and stops early; the
model files are ``model.safetensors`` and the ``model.json`` Train writes.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from blase.model import (
    MODEL_WEIGHTS,
    FitContext,
    FitReport,
    ModelKind,
    ModelSpec,
    TrainingData,
    read_spec,
)
from blase.train._models import load_model
from blase.train._train import Train

__all__ = ["LinearModel", "MLPModel", "TorchModel"]


class TorchModel(ModelKind):
    """A torch network trained by :class:`~blase.train.Train` from ``train:`` of blase.yaml.

    The network is this kind's name for the built-ins, else ``train.model`` (a factory
    script ``scripts/model.py:build_model``); ``ctx.init`` continues from a fitted one's
    weights (``blase update --mode finetune``).
    """

    name = "torch"
    files = (MODEL_WEIGHTS,)
    can_continue = True

    def fit(self, data: TrainingData, ctx: FitContext) -> TorchModel:
        trainer = Train(ctx.train, seed=ctx.seed, project_root=ctx.project_root)
        init = ctx.init if isinstance(ctx.init, TorchModel) else None
        network = self.build_network(data, ctx)
        trainer.set_model(network if network is not None else trainer.config.model)
        result = trainer.fit(data.root, ctx.out_dir, resume=ctx.resume, track=ctx.track,
                             on_epoch_end=ctx.on_epoch_end)
        self.folder_ = Path(ctx.out_dir)
        # a fine-tuned model is its parent's network: its model.json stays the parent's
        self.spec_ = init.spec_ if init is not None else read_spec(self.folder_)
        details = {k: v for k, v in result.details.items() if k not in ("out_dir", "model")}
        self.report_ = FitReport(details=details, history=None, warnings=list(result.warnings),
                                 inputs=dict(result.inputs))
        self.module_: nn.Module | None = None
        return self

    def build_network(self, data: TrainingData, ctx: FitContext) -> nn.Module | str | None:
        """What :meth:`fit` trains: the fitted model's network to continue from
        (``ctx.init``), else the built-in's name, or None for ``train.model`` (a factory script). A
        torch model plugin overrides it to return its own ``nn.Module`` (and :meth:`load`
        to rebuild it from its ``model.json`` options)."""
        if isinstance(ctx.init, TorchModel):
            return ctx.init.network()
        return self.name if self.name != "torch" else None

    def save(self, folder: Path) -> None:
        if Path(folder).resolve() != self.folder_.resolve():
            shutil.copyfile(self.folder_ / MODEL_WEIGHTS, Path(folder) / MODEL_WEIGHTS)

    @classmethod
    def load(cls, folder: Path, spec: ModelSpec) -> TorchModel:
        # a package carries its factory script: rebuild from that copy, not from the project
        root = folder if (folder / "package.json").is_file() else None
        model = cls()
        model.folder_, model.spec_ = Path(folder), spec
        model.module_ = load_model(folder, project_root=root)
        return model

    def network(self) -> nn.Module:
        """The trained ``nn.Module`` (eval mode)."""
        if self.module_ is None:
            self.module_ = load_model(self.folder_)
        return self.module_

    def predict(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.network()(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()

    def export_onnx(self, path: Path, n_features: int) -> None:
        x = torch.zeros(2, n_features)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                self.network(), (x,), str(path), input_names=["features"], output_names=["logits"],
                dynamic_axes={"features": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False,
            )

    def describe(self, data: TrainingData) -> ModelSpec:
        return self.spec_

    def versions(self) -> dict[str, Any]:
        return {"torch": torch.__version__}


class LinearModel(TorchModel):
    """``train.model: linear``: logistic, softmax or linear regression."""

    name = "linear"


class MLPModel(TorchModel):
    """``train.model: mlp``: linear layers with ReLU (``train.hidden``, ``dropout``...)."""

    name = "mlp"
