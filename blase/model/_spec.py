"""``model.json``: what a trained model is, what it predicts, and which kind loads it.

Every model folder (a train step's output, a deployed package) holds ``model.json`` beside
the model's own files. ``kind`` says how the model is found again, always by name, never by
a code path recorded in the file: ``builtin`` (``linear``, ``mlp``) and ``plugin`` (a
``model`` plugin such as ``xgboost``) are looked up by ``name`` in the model registry
(:func:`blase.model.model_plugin`); ``script`` rebuilds a torch network from a factory
script that the package carries; ``module`` imports a torch class (trusted packages only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from blase._fs import write_json_atomic
from blase.model._errors import TrainError

__all__ = ["MODEL_JSON", "MODEL_WEIGHTS", "ModelSpec", "Task", "read_spec", "write_spec"]

MODEL_JSON = "model.json"
#: The weights file of the torch kinds (``linear``, ``mlp``, scripts, modules).
MODEL_WEIGHTS = "model.safetensors"

Task = Literal["binary", "multiclass", "regression"]

#: Fields added with model plugins; left out of ``model.json`` at their defaults, so a torch
#: model's file is what it was before them.
_NEWER = {"options": {}, "files": [MODEL_WEIGHTS], "versions": {}}


class ModelSpec(BaseModel):
    """The contents of ``model.json``: how to rebuild a trained model, and what it predicts."""

    model_config = ConfigDict(extra="ignore")

    version: int = 1
    kind: Literal["builtin", "script", "module", "plugin"]
    name: str = Field(description="built-in or plugin name, factory function name, or class name")
    task: Task
    n_features: int
    n_outputs: int
    hidden: list[int] = Field(default_factory=list)
    dropout: float = 0.0
    batch_norm: bool = False
    linear_skip: bool = Field(
        default=False, description="mlp: a linear path from the inputs added to the output"
    )
    ref: str | None = Field(default=None, description="'scripts/model.py:build_model' for scripts")
    script_path: str | None = Field(
        default=None, description="the script's absolute path when trained"
    )
    class_path: str | None = Field(default=None, description="'package.module:Class' for modules")
    init_kwargs: dict[str, Any] | None = None
    label: str | None = None
    label_mapping: dict[str, int] = Field(default_factory=dict)
    classes: list[Any] = Field(default_factory=list)
    features: list[str] = Field(default_factory=list)
    target_mean: float = Field(
        default=0.0, description="regression: the built-in model predicts target_mean + target_std * z"
    )
    target_std: float = 1.0
    options: dict[str, Any] = Field(
        default_factory=dict, description="a plugin kind's options (train.options), as validated"
    )
    files: list[str] = Field(
        default_factory=lambda: [MODEL_WEIGHTS],
        description="the model's own files beside model.json (what a package copies and hashes)",
    )
    versions: dict[str, str] = Field(
        default_factory=dict, description="library versions the model was trained with"
    )

    def to_json(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        for key, default in _NEWER.items():
            if data.get(key) == default:
                data.pop(key)
        return data


def read_spec(folder: str | Path) -> ModelSpec:
    """The :class:`ModelSpec` in ``folder/model.json``.

    Raises
    ------
    TrainError
        When the file is missing or not a model spec.
    """
    out = Path(folder)
    path = out / MODEL_JSON
    try:
        return ModelSpec.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise TrainError(
            f"no {MODEL_JSON} in {out}",
            hint="point at the output folder of the train step (it holds model.json and the model's files)",
        ) from None
    except (OSError, ValueError, ValidationError) as exc:
        raise TrainError(f"cannot read {path}: {exc}", hint="train again to rewrite it") from None


def write_spec(folder: str | Path, spec: ModelSpec) -> Path:
    """Write ``folder/model.json`` atomically; returns its path."""
    path = Path(folder) / MODEL_JSON
    write_json_atomic(path, spec.to_json(), sort_keys=True)  # the bytes the torch trainer writes
    return path
