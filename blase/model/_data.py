"""What a model learns from: the prepared shards, read through :mod:`blase.prepare`.

:class:`TrainingData` wraps a Prepare output folder (``manifest.json`` and the ``.npy``
shards) and hands a model kind its rows the ways learning libraries take them: one shard at
a time (an out-of-core iterator), in row chunks, or a whole split in memory (a small
validation split). Rows come from :class:`~blase.prepare.ShardRows`, so compact one-hot
shards expand exactly as the torch models see them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from blase.model._errors import TrainError
from blase.prepare import Manifest, ShardInfo, ShardRows, read_manifest

__all__ = ["TrainingData"]

SPLITS = ("train", "val", "test")


class TrainingData:
    """The splits of a folder of prepared shards.

    Parameters
    ----------
    shards_dir:
        A folder written by :class:`~blase.prepare.Prepare`.

    Attributes
    ----------
    root, manifest:
        The folder and its :class:`~blase.prepare.Manifest`.
    task:
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    n_features, n_outputs, n_classes:
        Columns of a feature row; scores a model returns per row (1 for binary and
        regression, one per class for multiclass); classes (0 for regression).
    """

    def __init__(self, shards_dir: str | os.PathLike[str]) -> None:
        self.root = Path(shards_dir)
        self.manifest: Manifest = read_manifest(self.root)
        self.task = self.manifest.task
        self.n_features = self.manifest.n_features
        self.n_classes = self.manifest.n_classes or len(self.manifest.label_mapping)
        self.n_outputs = self.n_classes if self.task == "multiclass" else 1
        if self.task == "multiclass" and self.n_classes < 2:
            raise TrainError(
                f"the multiclass task in {self.manifest_file} lists {self.n_classes} class(es)",
                hint="prepare the data again; a classifier needs at least 2 classes",
            )

    @property
    def manifest_file(self) -> Path:
        return self.root / "manifest.json"

    @property
    def features(self) -> list[str]:
        return list(self.manifest.features)

    def rows(self, split: str) -> int:
        """Rows in ``split`` (0 when the split is absent)."""
        return int(self.manifest.counts.get(split, 0))

    def shards(self, split: str) -> list[ShardInfo]:
        """The shards of ``split`` in order."""
        return list(self.manifest.shards.get(split, []))

    def shard_rows(self, shard: ShardInfo) -> ShardRows:
        """One shard's rows, memory-mapped: ``rows[i:j]`` is a float32 ``[j - i, n_features]``."""
        return ShardRows.of(self.root, self.manifest, shard)

    def shard_labels(self, shard: ShardInfo) -> np.ndarray:
        """One shard's labels (int64 class codes, or float32 targets)."""
        return self._labels(shard)

    def read(self, shard: ShardInfo) -> tuple[np.ndarray, np.ndarray]:
        """One shard's rows (float32 ``[n, n_features]``) and labels, in memory."""
        x = self.shard_rows(shard)
        return x[0 : len(x)], self._labels(shard)

    def chunks(self, split: str, rows: int = 65_536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(x, y)`` of at most ``rows`` rows each, over ``split`` in order (a chunk never
        spans two shards)."""
        for shard in self.shards(split):
            x = ShardRows.of(self.root, self.manifest, shard)
            y = np.load(self.root / shard.labels_file, mmap_mode="r")
            for start in range(0, len(x), rows):
                end = min(start + rows, len(x))
                yield x[start:end], self._as_labels(y[start:end])

    def batches(self, split: str, rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(x, y)`` of ``rows`` rows each (the last may be shorter), across shard bounds:
        for a library whose speed depends on few, large batches."""
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        held = 0
        for x, y in self.chunks(split, rows):
            while len(x):
                take = min(rows - held, len(x))
                xs.append(x[:take])
                ys.append(y[:take])
                held += take
                x, y = x[take:], y[take:]
                if held == rows:
                    yield _joined(xs), _joined(ys)
                    xs, ys, held = [], [], 0
        if held:
            yield _joined(xs), _joined(ys)

    def matrix(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The whole of ``split`` in memory (for a validation split, or small data)."""
        n = self.rows(split)
        x = np.empty((n, self.n_features), dtype=np.float32)
        y = np.empty(n, dtype=self._label_dtype())
        at = 0
        for xb, yb in self.chunks(split):
            x[at : at + len(xb)], y[at : at + len(yb)] = xb, yb
            at += len(xb)
        return x, y

    def labels(self, split: str) -> np.ndarray:
        """Every label of ``split`` (one number per row: small beside the features)."""
        parts = [self._labels(s) for s in self.shards(split)]
        return np.concatenate(parts) if parts else np.empty(0, dtype=self._label_dtype())

    def label_scale(self, split: str = "train") -> tuple[float, float]:
        """Mean and standard deviation of a regression label (1 for a constant label)."""
        total, total_sq, n = 0.0, 0.0, 0
        for shard in self.shards(split):
            y = np.asarray(self._labels(shard), dtype=np.float64)
            total, total_sq, n = total + float(y.sum()), total_sq + float(np.square(y).sum()), n + len(y)
        if not n:
            return 0.0, 1.0
        mean = total / n
        std = math.sqrt(max(total_sq / n - mean * mean, 0.0))
        return mean, (std if std > 1e-12 and math.isfinite(std) else 1.0)

    def _label_dtype(self) -> type:
        return np.float32 if self.task == "regression" else np.int64

    def _as_labels(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=self._label_dtype())

    def _labels(self, shard: ShardInfo) -> np.ndarray:
        y = np.load(self.root / shard.labels_file, mmap_mode="r")
        if len(y) != shard.rows:
            raise TrainError(
                f"{self.root / shard.labels_file} holds {len(y)} labels; the manifest says {shard.rows} rows",
                hint="the shards were changed after prepare; run prepare again",
            )
        return self._as_labels(y)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """The parts as one array: a single part as it is (a batch within one shard is already a
    fresh array: copying it again costs a pass over its bytes)."""
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
