"""``manifest.json``: what a folder of shards holds, and how it was made."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from blase.errors import PrepareError

__all__ = ["MANIFEST_NAME", "MANIFEST_VERSION", "Layout", "Manifest", "OneHotGroup", "ShardInfo", "TensorGroup",
           "read_manifest"]

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1

Task = Literal["binary", "multiclass", "regression"]


class ShardInfo(BaseModel):
    """One shard: a features file and its labels file, relative to the output folder."""

    model_config = ConfigDict(extra="ignore")

    file: str
    labels_file: str
    rows: int
    hash: str = Field(description="xxh3-128 of the features file")
    labels_hash: str = Field(description="xxh3-128 of the labels file")
    ids_file: str | None = Field(
        default=None, description="int64 global row index (source order) of each row"
    )
    tfrecord: str | None = None
    tfrecord_hash: str | None = None
    codes_file: str | None = Field(
        default=None, description="one-hot codes [rows, groups] (compact layout only)"
    )
    codes_hash: str | None = None
    tensor_file: str | None = Field(
        default=None, description="uint8 values of the tensor features [rows, width] (tensor layout)"
    )
    tensor_hash: str | None = None


class OneHotGroup(BaseModel):
    """One one-hot encoded column stored as codes: ``features`` are the positions (in the
    manifest's ``features``) its categories set."""

    model_config = ConfigDict(extra="ignore")

    column: str
    features: list[int]


class TensorGroup(BaseModel):
    """One tensor column (:mod:`blase.prepare._tensor`) stored as uint8: ``features`` are the
    positions (in the manifest's ``features``) of its values, in byte order; they are
    ``width`` consecutive columns of the shard's ``.tensor.npy`` file from ``offset``."""

    model_config = ConfigDict(extra="ignore")

    column: str
    features: list[int]
    offset: int = 0


class Layout(BaseModel):
    """How a compact shard stores its rows: the features at positions ``dense`` as float32
    columns of the ``.npy`` file, each one-hot group as one integer column of the
    ``.codes.npy`` file holding the position of the feature that is 1 in that row (-1:
    none), and each tensor column as uint8 columns of the ``.tensor.npy`` file.
    :class:`~blase.prepare.ShardRows` expands them to the float32 rows."""

    model_config = ConfigDict(extra="ignore")

    dense: list[int]
    onehot: list[OneHotGroup] = Field(default_factory=list)
    tensors: list[TensorGroup] = Field(default_factory=list)

    @property
    def tensor_width(self) -> int:
        return sum(len(t.features) for t in self.tensors)


class Manifest(BaseModel):
    """The contents of ``manifest.json`` written by :class:`~blase.prepare.Prepare`.

    ``label_mapping`` maps each class value (as text; ``true``/``false`` for booleans) to its
    integer code; ``classes`` lists the original values in code order. Codes follow the
    sorted order of the class values, so they do not depend on the data's row order.
    """

    model_config = ConfigDict(extra="ignore")

    version: int = MANIFEST_VERSION
    task: Task
    label: str
    label_dtype: str
    label_mapping: dict[str, int] = Field(default_factory=dict)
    classes: list[Any] = Field(default_factory=list)
    features: list[str]
    dtypes: dict[str, str] = Field(description="source dtype of each feature (DuckDB type names)")
    n_features: int
    x_dtype: str = "float32"
    y_dtype: str
    counts: dict[str, int]
    class_counts: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="per split, class code (as text) -> rows"
    )
    shards: dict[str, list[ShardInfo]]
    layout: Layout | None = Field(
        default=None, description="compact storage of one-hot features; None: plain [n, d] float32"
    )
    seed: int
    split: dict[str, float]
    stratify: bool
    key: str | None
    shard_rows: int
    rows_rejected: int = 0
    source: str
    source_hash: str
    created_at: str

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read the manifest of a prepared folder (or of the ``manifest.json`` path itself).

    Raises
    ------
    PrepareError
        When the file is missing or is not a valid manifest.
    """
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST_NAME
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PrepareError(
            f"no {MANIFEST_NAME} at {p}",
            hint="run the prepare step first (`blase run --to prepare`, or Prepare(...).run(...) in Python)",
        ) from None
    except (OSError, ValueError) as exc:
        raise PrepareError(
            f"cannot read {p}: {exc}", hint="run the prepare step again to rewrite it"
        ) from None
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise PrepareError(
            f"{p} is not a valid manifest: {where}: {first['msg']}",
            hint="run the prepare step again to rewrite it",
        ) from None
