"""``train.model: keras``: its options, and the Keras backend it runs on.

Keras 3 runs on a backend chosen once per process, before ``import keras``: this module picks
it (``train.options.backend``, else the ``KERAS_BACKEND`` the user set, else ``torch``, which
Blase already depends on), checks that its library is installed (naming the pip extra when it
is not), imports Keras on it, and seeds it. Nothing here imports Keras or a backend at module
level, so the manifest (:mod:`blase.contrib.plugins`) reads :class:`KerasOptions` for free.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from blase._pyfile import exec_file, functions_of
from blase.model import TrainError

__all__ = ["BACKENDS", "KerasOptions", "import_keras", "load_build_function", "loading_backend", "resolve_backend", "seed_keras"]

Backend = Literal["torch", "tensorflow", "jax"]
BACKENDS: tuple[str, ...] = ("torch", "tensorflow", "jax")
#: What installs each backend's library.
_INSTALL = {"torch": "pip install torch", "tensorflow": "pip install 'blase[tensorflow]'",
            "jax": "pip install jax"}
#: The options that shape the built-in network, which a `build` script replaces.
_SHAPE = ("hidden", "dropout")


class KerasOptions(BaseModel):
    """``train.options`` of ``train.model: keras``."""

    model_config = ConfigDict(extra="forbid")

    backend: Backend | None = Field(
        default=None, description="Keras backend: torch, tensorflow or jax; default: $KERAS_BACKEND, else torch")
    build: str | None = Field(
        default=None, pattern=r"^[^:]+\.py:[A-Za-z_][A-Za-z0-9_]*$",
        description="a network factory in the project, 'scripts/keras_model.py:build_model', called as "
        "build_model(n_features, n_outputs, task) and returning an uncompiled keras.Model that outputs logits")
    hidden: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [64, 32], description="built-in MLP: units of each hidden Dense layer (ReLU)")
    dropout: float = Field(default=0.0, ge=0, lt=1, description="built-in MLP: dropout after each hidden layer")
    epochs: int = Field(default=20, ge=1, description="epochs at most")
    batch_size: int = Field(default=256, ge=1, description="rows per batch")
    lr: float = Field(default=1e-3, gt=0, description="Adam's learning rate")
    early_stopping: int | None = Field(
        default=5, ge=1, description="patience in epochs on the val loss (keeps the best epoch); null: off")
    seed: int | None = Field(default=None, description="default: the project's seed")

    @model_validator(mode="after")
    def _shape_or_build(self) -> KerasOptions:
        defaults = KerasOptions.model_fields
        both = [k for k in _SHAPE if getattr(self, k) != defaults[k].get_default(call_default_factory=True)]
        both = both if self.build else []
        if both:
            raise ValueError(f"{' and '.join(both)} shape the built-in MLP; with build, "
                             f"{self.build} makes the network: remove {', '.join(both)}")
        return self


def resolve_backend(asked: str | None) -> str:
    """The backend to use: ``asked`` (train.options.backend), else ``$KERAS_BACKEND``, else torch.

    Raises
    ------
    TrainError
        For a ``KERAS_BACKEND`` that names no backend Blase supports.
    """
    backend = asked or os.environ.get("KERAS_BACKEND") or "torch"
    if backend not in BACKENDS:
        raise TrainError(f"KERAS_BACKEND={backend!r} is not a Keras backend Blase supports",
                         hint=f"set KERAS_BACKEND to one of {', '.join(BACKENDS)}, or train.options.backend")
    return backend


def loading_backend(recorded: str | None) -> str:
    """The backend to load a saved model on: ``$KERAS_BACKEND`` when the user set it, else the
    one it was trained on when that is installed, else torch (a ``.keras`` file runs on any)."""
    if os.environ.get("KERAS_BACKEND"):
        return resolve_backend(None)
    return recorded if recorded in BACKENDS and _installed(recorded) else "torch"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def import_keras(backend: str, *, strict: bool = True) -> Any:
    """``keras``, imported on ``backend`` (set as ``KERAS_BACKEND`` first).

    Keras keeps the backend it was first imported with: when it is already loaded on another
    one, a fit (``strict``) refuses, while a load (not ``strict``) uses it, since a ``.keras``
    file runs on every backend.

    Raises
    ------
    TrainError
        When Keras or the backend's library is not installed (naming what installs it), or,
        when ``strict``, Keras is already loaded on another backend in this process.
    """
    if not _installed("keras"):
        raise TrainError("train.model keras needs Keras 3, which is not installed",
                         hint="install it: pip install 'blase[keras]' (or 'blase[tensorflow]' for TensorFlow)")
    loaded = sys.modules.get("keras")
    if (loaded is None or strict) and not _installed(backend):
        raise TrainError(f"the Keras backend {backend!r} needs {backend}, which is not installed",
                         hint=f"install it: {_INSTALL[backend]}, or choose another train.options.backend "
                         f"({', '.join(BACKENDS)})")
    if loaded is not None:
        current = loaded.backend.backend()
        if current != backend and strict:
            raise TrainError(f"train.options.backend is {backend!r}, but Keras is already loaded on {current!r} "
                             "in this process (Keras picks its backend once, at import)",
                             hint=f"run it in a new process, e.g. `KERAS_BACKEND={backend} blase run`")
        return loaded
    _set_backend(backend)
    import keras

    if keras.backend.backend() != backend:  # pragma: no cover - a keras.json that wins over the env
        raise TrainError(f"Keras started on {keras.backend.backend()!r}, not {backend!r}",
                         hint="remove the backend from ~/.keras/keras.json or set KERAS_BACKEND")
    return keras


def _set_backend(backend: str) -> None:
    """Make ``backend`` the one the next ``import keras`` picks (no effect once it is loaded)."""
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = backend
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up banners


def seed_keras(keras: Any, seed: int) -> None:
    """Seed Python, NumPy, the backend and Keras's own generator (``keras.utils.set_random_seed``),
    and ask TensorFlow for deterministic kernels: the same seed gives the same weights on CPU.
    Keras's session is cleared first, which resets its global seed generator and its automatic
    layer names (``dense_1``, recorded in the file), as in a new process."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(int(seed))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def load_build_function(ref: str, root: Path | None, backend: str) -> Callable[..., Any]:
    """``build_model`` from ``'scripts/keras_model.py:build_model'``, a file inside the project
    ``root`` (imported under a location-free name, so a moved project hashes the same), with
    ``backend`` chosen first, since the script imports Keras.

    Raises
    ------
    TrainError
        Naming ``train.options.build`` for a path outside the project, a missing file, a
        script that raises on import, or a missing function.
    """
    rel, _, name = ref.rpartition(":")
    base = Path(root or Path.cwd()).resolve()
    path = (base / rel).resolve()
    if Path(rel).is_absolute() or not path.is_relative_to(base):
        raise TrainError(f"train.options.build {ref!r} points outside the project ({base})",
                         hint="put the script in the project's scripts/ folder and give its relative path")
    if not path.is_file():
        raise TrainError(f"train.options.build names {rel}, which does not exist (looked for {path})",
                         hint=f"create it with `def {name}(n_features, n_outputs, task):` returning a keras.Model")
    _set_backend(backend)
    module_name = f"blase_keras_build_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"
    try:
        module = exec_file(path, module_name, __blase_code_name__=rel)
    except Exception as exc:
        raise TrainError(f"train.options.build: {rel} raised {type(exc).__name__} on import: {exc}",
                         hint=f"fix {path} (`python {path}` shows the traceback)") from exc
    func = getattr(module, name, None)
    if not callable(func):
        found = functions_of(module)
        raise TrainError(f"train.options.build: {rel} has no function {name!r}"
                         + (f" (it defines {', '.join(found)})" if found else ""),
                         hint=f"define `def {name}(n_features, n_outputs, task):` in {rel}, or fix train.options.build")
    return func
