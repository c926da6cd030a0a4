"""Prepare: deterministic train/val/test splits and ready-to-train shards.

:class:`Prepare` turns the transformed data (Parquet; every feature numeric or boolean) into
``out_dir/{train,val,test}/shard-NNNNN.npy`` (float32 ``[n, d]``) with
``shard-NNNNN.labels.npy`` (int64 class codes, or float32 targets) and a ``manifest.json``
(:class:`Manifest`). When prepare applies a transform that ends in one-hot, the shards are
compact: the one-hot columns are stored as one integer code each (``shard-NNNNN.codes.npy``,
``manifest.layout``) and :class:`ShardRows` expands them to the same float32 rows; so is a
tensor column (a binary column of fixed-size uint8 values: decoded images), stored as uint8
(``shard-NNNNN.tensor.npy``).
:class:`ShardDataset` reads them back for PyTorch as whole batches from memory-mapped
shards. :func:`write_tfrecord` writes ``.tfrecord`` files for TensorFlow.

``ShardDataset`` imports torch, so it is loaded on first use: ``from blase.prepare import
Prepare`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blase.prepare._manifest import (
    Layout,
    Manifest,
    OneHotGroup,
    ShardInfo,
    TensorGroup,
    read_manifest,
)
from blase.prepare._prepare import MAX_CLASSES_INTEGER, Prepare
from blase.prepare._rows import ShardRows
from blase.prepare._split import row_hash
from blase.prepare._tensor import is_tensor_type, tensor_block, tensor_feature_names
from blase.prepare._tfrecord import write_tfrecord

if TYPE_CHECKING:
    from blase.prepare._dataset import ImageView, ShardDataset

__all__ = [
    "MAX_CLASSES_INTEGER",
    "ImageView",
    "Layout",
    "Manifest",
    "OneHotGroup",
    "Prepare",
    "ShardDataset",
    "ShardInfo",
    "ShardRows",
    "TensorGroup",
    "is_tensor_type",
    "read_manifest",
    "row_hash",
    "tensor_block",
    "tensor_feature_names",
    "write_tfrecord",
]


def __getattr__(name: str) -> Any:
    if name in ("ShardDataset", "ImageView"):
        from blase.prepare import _dataset

        return getattr(_dataset, name)
    raise AttributeError(f"module 'blase.prepare' has no attribute {name!r}")
