"""Device choice, mixed precision and the seeds/determinism switches of a training run."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from blase.train._errors import TrainError

__all__ = [
    "deterministic_mode",
    "resolve_device",
    "rng_state",
    "seed_everything",
    "set_rng_state",
    "torch_threads",
]

logger = logging.getLogger(__name__)


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str) -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; an explicit choice must be available.

    Raises
    ------
    TrainError
        When ``cuda`` or ``mps`` is asked for but this machine or torch build lacks it.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainError(
            "train.device is 'cuda' but torch sees no CUDA GPU "
            f"(torch {torch.__version__}, built with CUDA {torch.version.cuda})",
            hint="set `device: auto` (or cpu) under train: in blase.yaml, or install a CUDA build of torch",
        )
    if name == "mps" and not _mps_available():
        raise TrainError(
            "train.device is 'mps' but Apple's Metal backend is not available here",
            hint="set `device: auto` (or cpu) under train: in blase.yaml",
        )
    if name not in ("cpu", "cuda", "mps"):
        raise TrainError(f"unknown device {name!r}", hint="use auto, cpu, cuda or mps")
    return torch.device(name)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous count."""
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def seed_everything(seed: int) -> None:
    """Seed torch (every device), numpy's and Python's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def deterministic_mode(enabled: bool, device: torch.device) -> Iterator[None]:
    """Turn on torch's deterministic algorithms for the block, then restore the old setting.

    ``warn_only=True``: an operation without a deterministic kernel warns instead of failing.
    On CUDA, cuBLAS also needs ``CUBLAS_WORKSPACE_CONFIG`` set before its first use, and
    cuDNN's autotuner is turned off.
    """
    if not enabled:
        yield
        return
    was_on = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    old_benchmark = torch.backends.cudnn.benchmark
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_on, warn_only=was_warn)
        torch.backends.cudnn.benchmark = old_benchmark


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every global generator's state: tensors (torch, CUDA) and JSON data (numpy, Python)."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    data = {
        "numpy": [kind, np.asarray(keys).tolist(), int(pos), int(has_gauss), float(cached)],
        "python": [version, list(internal), gauss_next],
    }
    return tensors, data


def set_rng_state(tensors: dict[str, torch.Tensor], data: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(tensors["rng.torch"].to(torch.uint8))
    cuda = sorted(
        (k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1])
    )
    if cuda and torch.cuda.is_available():
        n = min(len(cuda), torch.cuda.device_count())
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda[:n]])
    kind, keys, pos, has_gauss, cached = data["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = data["python"]
    random.setstate((version, tuple(internal), gauss_next))
