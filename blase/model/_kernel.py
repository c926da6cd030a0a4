"""``train.model: kernel``: a Gaussian (RBF) kernel model, the small-data classic.

On a few hundred rows of numeric measurements (a clinical cohort, a lab's samples) the
classes are often separated by curved boundaries that a linear model misses and that trees
and networks have too few rows to learn: there, an RBF kernel machine (scikit-learn's
``SVC``, kernel ridge) is the model to beat. This kind fits one the way scikit-learn's
``Nystroem`` + linear model pipeline does, exactly when the data is small:

1. ``landmarks`` training rows (all of them when there are fewer; else a seeded sample) and
   the kernel ``k(x, l) = exp(-gamma |x - l|^2)``, ``gamma`` by default scikit-learn's
   ``"scale"``: ``1 / (n_features * variance of the features)``;
2. the Nystroem feature map ``phi(x) = k(x, L) K_LL^{-1/2}``, whose inner products are the
   kernel's (exactly, when every training row is a landmark);
3. :class:`~blase.model.GLMModel` on ``phi``: L2 logistic / softmax regression (kernel
   logistic regression) or ridge (kernel ridge regression), its penalty chosen as ``glm``
   chooses it, by the val split (``cv_folds``: by cross-validation).

The fitted model is ``scores = k(x, L) @ coef + bias``: the landmarks, ``gamma`` and the
coefficients are saved as ``model.safetensors`` (float64) and export to ONNX as a few matrix
operations. Rows stream through the map in chunks, so memory is ``rows_per_chunk x landmarks``
whatever the data's size, but time grows with rows x landmarks: ``auto`` tries this kind only
on small data (``train.options.small_rows``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from blase.model._contract import FitContext, FitReport, ModelKind
from blase.model._data import TrainingData
from blase.model._errors import TrainError
from blase.model._glm import GLMModel, GLMOptions, export_net, read_weights
from blase.model._spec import ModelSpec

__all__ = ["KernelModel", "KernelOptions"]

WEIGHTS_FILE = "model.safetensors"
_CHUNK = 4096  # rows mapped at once: 4096 x landmarks float64


class KernelOptions(BaseModel):
    """``train.options`` of ``train.model: kernel``."""

    model_config = ConfigDict(extra="forbid")

    landmarks: int = Field(
        default=1000, ge=1, description="the training rows the kernel compares each row with (Nystroem); "
        "every training row when there are fewer, else a seeded sample")
    gamma: float | None = Field(
        default=None, gt=0, description="the RBF kernel's width, exp(-gamma |x - l|^2); default: "
        "1 / (n_features * variance of the features), scikit-learn's 'scale'")
    gamma_factors: list[float] = Field(
        default_factory=lambda: [1.0], min_length=1,
        description="without `gamma`: try the default gamma times each of these (e.g. [0.5, 1, 2]) and keep "
        "the one whose fit scores best on the val split, each with its own penalty (time: one fit each)")
    alpha: float | None = Field(
        default=None, gt=0, description="the L2 penalty of the linear model on the kernel features; "
        "default: chosen from `alphas`")
    alphas: list[float] = Field(
        default_factory=lambda: [1e-3, 1e-2, 1e-1, 1.0, 10.0], min_length=1,
        description="the penalties to choose from")
    cv_folds: int = Field(
        default=0, ge=0, description="choose the penalty by this many folds of cross-validation on "
        "train + val (0: by the val split, as `auto`'s own folds already cross-validate)")
    max_iter: int = Field(default=500, ge=1, description="classification: L-BFGS iterations per fit")
    tol: float = Field(
        default=1e-4, gt=0, description="classification: L-BFGS stops when the gradient of the mean row loss "
        "is below this (scikit-learn's tol)")


class KernelModel(ModelKind):
    """An RBF kernel machine (Nystroem features + glm); options: :class:`KernelOptions`."""

    name = "kernel"
    config_model = KernelOptions
    files = (WEIGHTS_FILE,)

    def __init__(self, options: KernelOptions | None = None) -> None:
        super().__init__(options if options is not None else KernelOptions())

    def fit(self, data: TrainingData, ctx: FitContext) -> KernelModel:
        o: KernelOptions = self.options  # type: ignore[assignment]
        if not data.rows("train"):
            raise TrainError(f"{data.manifest_file} has no training rows", hint="prepare the data again")
        landmarks, variance = _landmarks(data, o.landmarks, ctx.seed)
        scale = 1.0 / (data.n_features * (variance if variance > 1e-12 else 1.0))
        gammas = [o.gamma] if o.gamma is not None else [scale * f for f in sorted(set(o.gamma_factors))]
        tried: dict[str, float] = {}
        if len(gammas) > 1 and data.rows("val"):  # each width with its own penalty, on the val split
            quiet = dataclasses.replace(ctx, train=_no_refit(ctx.train), track=False)
            fits = {}
            for g in gammas:
                mapping = _nystroem(landmarks, g)
                glm = self._glm(o, o.alpha, data).fit(_Mapped(data, landmarks, g, mapping), quiet)
                fits[g] = (mapping, glm)
                tried[f"{g:.6g}"] = float(glm.report_.details["best_metric"])
            gamma = min(gammas, key=lambda g: (tried[f"{g:.6g}"], g))  # a tie keeps the smoother kernel
            mapping, glm = fits[gamma]
            if ctx.refits(data):  # then on train + val, with the penalty this width chose
                glm = self._glm(o, glm.report_.details["alpha"], data).fit(_Mapped(data, landmarks, gamma, mapping), ctx)
        else:
            gamma = min(gammas, key=lambda g: abs(g - scale))  # no val split to choose by: the nearest the default
            mapping = _nystroem(landmarks, gamma)
            glm = self._glm(o, o.alpha, data).fit(_Mapped(data, landmarks, gamma, mapping), ctx)
        self.landmarks_, self.gamma_ = landmarks, float(gamma)
        self.coef_ = mapping @ glm.weight_  # k(x, L) @ M @ W = k(x, L) @ coef
        self.bias_ = glm.bias_
        details = {**glm.report_.details, "gamma": self.gamma_, "landmarks": len(landmarks),
                   "components": int(mapping.shape[1]), "gamma_variance": variance,
                   "gamma_scores": tried, "gamma_from": "train.options.gamma" if o.gamma is not None else
                   "the val split's score of 1 / (n_features * variance) times each of gamma_factors"}
        self.report_ = FitReport(details=details, history=glm.report_.history)
        return self

    @staticmethod
    def _glm(o: KernelOptions, alpha: float | None, data: TrainingData) -> GLMModel:
        tol = o.tol * max(data.rows("train"), 1)  # glm's tol is on the summed loss
        return GLMModel(GLMOptions(alpha=alpha, alphas=o.alphas, max_iter=o.max_iter, cv_folds=o.cv_folds, tol=tol))

    def save(self, folder: Path) -> None:
        from safetensors.numpy import save_file

        save_file({"landmarks": np.ascontiguousarray(self.landmarks_), "gamma": np.array([self.gamma_]),
                   "coef": np.ascontiguousarray(self.coef_), "bias": self.bias_}, str(Path(folder) / WEIGHTS_FILE))

    @classmethod
    def load(cls, folder: Path, spec: ModelSpec) -> KernelModel:
        path = Path(folder) / WEIGHTS_FILE
        t = read_weights(path, ("landmarks", "gamma", "coef", "bias"))
        model = cls(KernelOptions.model_validate(spec.options))
        model.landmarks_, model.gamma_ = t["landmarks"], float(t["gamma"][0])
        model.coef_, model.bias_ = t["coef"], t["bias"]
        if model.landmarks_.shape[1] != spec.n_features or model.coef_.shape[0] != model.landmarks_.shape[0]:
            raise TrainError(f"{path} holds landmarks of {model.landmarks_.shape[1]} features; model.json says "
                             f"{spec.n_features}", hint="the package was changed: deploy it again")
        return model

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        out = np.empty((len(x), self.coef_.shape[1]))
        for start in range(0, len(x), _CHUNK):
            part = x[start : start + _CHUNK]
            out[start : start + len(part)] = _rbf(part, self.landmarks_, self.gamma_) @ self.coef_ + self.bias_
        return (out[:, 0] if out.shape[1] == 1 else out).astype(np.float32)

    def export_onnx(self, path: Path, n_features: int) -> None:
        export_net(_kernel_net(self.landmarks_, self.gamma_, self.coef_, self.bias_), path, n_features)

    def versions(self) -> dict[str, str]:
        import scipy

        return {"numpy": np.__version__, "scipy": scipy.__version__}


def _no_refit(train: Any) -> Any:
    """``train:`` with ``refit: false`` (its class weights kept)."""
    if train is None:
        from types import SimpleNamespace

        return SimpleNamespace(refit=False, class_weights="none")
    return train.model_copy(update={"refit": False})


def _rbf(x: np.ndarray, landmarks: np.ndarray, gamma: float) -> np.ndarray:
    """``exp(-gamma |x_i - l_j|^2)`` for every row and landmark."""
    d2 = (x * x).sum(axis=1)[:, None] - 2.0 * (x @ landmarks.T) + (landmarks * landmarks).sum(axis=1)[None, :]
    return np.exp(-gamma * np.maximum(d2, 0.0))


def _landmarks(data: TrainingData, m: int, seed: int) -> tuple[np.ndarray, float]:
    """Up to ``m`` training rows (all, or a seeded sample, in row order) and the variance of
    every feature value of the training rows, in one pass."""
    n = data.rows("train")
    take = np.arange(n) if n <= m else np.sort(np.random.default_rng(seed).choice(n, m, replace=False))
    picked, at, total, total_sq, count = [], 0, 0.0, 0.0, 0
    for x, _ in data.chunks("train"):
        x64 = np.asarray(x, dtype=np.float64)
        if not np.isfinite(x64).all():
            raise TrainError("the prepared rows hold NaN or infinite values",
                             hint="add an impute operation under transform: in blase.yaml")
        lo, hi = np.searchsorted(take, [at, at + len(x64)])
        picked.append(x64[take[lo:hi] - at])
        total, total_sq, count = total + float(x64.sum()), total_sq + float((x64 * x64).sum()), count + x64.size
        at += len(x64)
    mean = total / max(count, 1)
    return np.concatenate(picked), max(total_sq / max(count, 1) - mean * mean, 0.0)


def _nystroem(landmarks: np.ndarray, gamma: float) -> np.ndarray:
    """``K_LL^{-1/2}`` over the kernel matrix's well-conditioned directions (``m x r``)."""
    k = _rbf(landmarks, landmarks, gamma)
    lam, vecs = np.linalg.eigh((k + k.T) / 2)
    keep = lam > max(lam.max(), 0.0) * 1e-10
    return vecs[:, keep] / np.sqrt(lam[keep])


class _Mapped:
    """A :class:`TrainingData` look-alike whose rows are the kernel features ``phi(x)``."""

    def __init__(self, data: TrainingData, landmarks: np.ndarray, gamma: float, mapping: np.ndarray) -> None:
        self.data, self.landmarks, self.gamma, self.mapping = data, landmarks, gamma, mapping
        self.task, self.n_outputs, self.n_classes = data.task, data.n_outputs, data.n_classes
        self.n_features = mapping.shape[1]
        self.manifest = data.manifest

    def rows(self, split: str) -> int:
        return self.data.rows(split)

    def labels(self, split: str) -> np.ndarray:
        return self.data.labels(split)

    def chunks(self, split: str, rows: int = _CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for x, y in self.data.chunks(split, rows):
            yield _rbf(np.asarray(x, dtype=np.float64), self.landmarks, self.gamma) @ self.mapping, y


def _kernel_net(landmarks: np.ndarray, gamma: float, coef: np.ndarray, bias: np.ndarray) -> Any:
    import torch

    class KernelNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("landmarks", torch.from_numpy(landmarks.astype(np.float32)))
            self.register_buffer("norms", torch.from_numpy((landmarks * landmarks).sum(axis=1).astype(np.float32)))
            self.register_buffer("coef", torch.from_numpy(coef.astype(np.float32)))
            self.register_buffer("bias", torch.from_numpy(bias.astype(np.float32)))
            self.gamma, self.single = float(gamma), coef.shape[1] == 1

        def forward(self, x: Any) -> Any:
            d2 = (x * x).sum(dim=1, keepdim=True) - 2.0 * x @ self.landmarks.T + self.norms
            z = torch.exp(-self.gamma * torch.clamp(d2, min=0.0)) @ self.coef + self.bias
            return z[:, 0] if self.single else z

    return KernelNet()

