"""A deployed model as a function from a float32 feature matrix to its raw scores.

Importing torch costs about a second of CPU (1.2 s on the 2-core dev box), more than
scoring a monitor's sample or a small ``blase predict`` file. The built-in tabular models
(``linear`` and ``mlp``: linear layers, ReLU, optional batch norm and dropout, the
optional linear skip path) are small
enough to run in numpy straight from the package's ``model.json`` and
``model.safetensors``, so :func:`model_runner` does that for them and only imports torch
for script and module models (or uses ONNX Runtime when asked). Tests check that both paths
give the same scores.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["model_runner", "numpy_runner"]

#: ``torch.nn.BatchNorm1d``'s default epsilon (what :class:`blase.train.TabularMLP` uses).
_BN_EPS = 1e-5

Runner = Callable[[np.ndarray], np.ndarray]


def model_runner(package: Any, *, use_onnx: bool = False) -> Runner:
    """``scores = run(X)`` for ``package`` (a :class:`~blase.deploy.ModelPackage`).

    ONNX Runtime when ``use_onnx`` and the package has ``model.onnx``; numpy for a built-in
    model (no torch import); a model plugin's ``predict`` (its library, no torch import);
    else the torch module in eval mode under ``inference_mode``.
    """
    if use_onnx and package.has_onnx:
        import onnxruntime as ort

        session = ort.InferenceSession(
            str(package.path / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        return lambda x: session.run(None, {"features": x})[0]
    run = numpy_runner(package.path)
    if run is not None:
        return run
    if _model_kind(package.path) == "plugin":
        return package.load_trained().predict  # a model plugin's kind, found by name
    import torch

    model = package.load_model()
    model.eval()

    def run_torch(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    return run_torch


#: The model's embeddings of a seeded sample of its training rows, written by deploy for a
#: model kind that has embeddings (Monitor's embedding drift), and how many rows at most.
EMBEDDINGS_FILE = "reference_embeddings.npy"
EMBEDDING_ROWS = 500


def embedding_model(package: Any) -> Any | None:
    """The trained model of ``package`` when its kind defines ``embeddings(x) -> [n, k]``
    (what Monitor compares for embedding drift: ``image_cnn``'s penultimate layer), else
    None; only model plugins can."""
    if _model_kind(package.path) != "plugin":
        return None
    model = package.load_trained()
    return model if callable(getattr(model, "embeddings", None)) else None


def _model_kind(folder: Path) -> str:
    try:
        spec = json.loads((folder / "model.json").read_text())
    except (OSError, ValueError):
        return ""
    return str(spec.get("kind") or "") if isinstance(spec, dict) else ""


def numpy_runner(folder: str | Path) -> Runner | None:
    """The numpy forward pass of the built-in model saved in ``folder``, or None when the
    model is not a built-in one (or its weights are not laid out as one's)."""
    from safetensors.numpy import load_file

    folder = Path(folder)
    try:
        spec = json.loads((folder / "model.json").read_text())
    except (OSError, ValueError):
        return None
    if spec.get("kind") != "builtin" or spec.get("name") not in ("linear", "mlp"):
        return None
    try:
        weights = load_file(str(folder / "model.safetensors"))
    except Exception:  # a bad file, or a dtype numpy lacks (bfloat16)
        return None  # the torch path loads it, or reports what is wrong with the file
    layers: list[Callable[[np.ndarray], np.ndarray]] = []
    used = set()
    hidden = (spec.get("hidden") or []) if spec["name"] == "mlp" else []  # linear: head only
    i = 0
    for _ in hidden:
        w, b = f"body.{i}.weight", f"body.{i}.bias"
        if w not in weights or b not in weights:
            return None
        layers.append(_linear(weights[w], weights[b]))
        used |= {w, b}
        i += 1
        if spec.get("batch_norm"):
            names = [f"body.{i}.{k}" for k in ("weight", "bias", "running_mean", "running_var")]
            if not all(n in weights for n in names):
                return None
            layers.append(_batch_norm(*(weights[n] for n in names)))
            used |= {*names, f"body.{i}.num_batches_tracked"}
            i += 1
        layers.append(_relu)
        i += 1
        if (spec.get("dropout") or 0) > 0:
            i += 1  # identity in eval mode
    if "head.weight" not in weights or "head.bias" not in weights:
        return None
    layers.append(_linear(weights["head.weight"], weights["head.bias"]))
    used |= {"head.weight", "head.bias"}
    skip = None
    if spec.get("linear_skip") and hidden:
        if "skip.weight" not in weights:
            return None
        skip = np.ascontiguousarray(weights["skip.weight"].T, dtype=np.float32)
        used.add("skip.weight")
    if set(weights) - used:
        return None  # more than a built-in model holds: let torch load it
    # a regression model learns the standardised label; TabularMLP.forward maps it back
    mean = float(spec.get("target_mean") or 0.0)
    std = float(spec.get("target_std", 1.0) or 1.0)

    def run(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        out = x  # the first layer makes a new array, so _relu never writes into x
        for layer in layers:
            out = layer(out)
        if skip is not None:
            out = out + x @ skip
        if std != 1.0 or mean != 0.0:
            out = out * np.float32(std) + np.float32(mean)
        return out

    return run


def _linear(weight: np.ndarray, bias: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    wt = np.ascontiguousarray(weight.T, dtype=np.float32)
    b = bias.astype(np.float32)
    return lambda x: x @ wt + b


def _batch_norm(weight: np.ndarray, bias: np.ndarray, mean: np.ndarray, var: np.ndarray):
    scale = (weight / np.sqrt(var + _BN_EPS)).astype(np.float32)
    shift = (bias - mean * scale).astype(np.float32)
    return lambda x: x * scale + shift


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0, out=x)
