"""The Keras model's data and network: shard batches as a ``keras.utils.PyDataset``, the
built-in MLP, and a project's own ``build_model``.

:class:`ShardBatches` reads one split of the prepared shards a batch at a time through
:class:`~blase.model.TrainingData` (memory-mapped rows), the way Blase's torch
``ShardDataset`` does: each epoch the shard order and the rows inside each shard are permuted
from ``(seed, epoch)``, a batch never crosses a shard, and only the current shard's
permutation is held, so the split is never in memory whole.

This module imports Keras: load it only after :func:`~blase.contrib._keras_setup.import_keras`
chose the backend.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from blase.model import TrainError, TrainingData

__all__ = ["ShardBatches", "build_network", "call_build"]


class ShardBatches(keras.utils.PyDataset):
    """Batches ``(x, y)`` of one split; ``y`` is standardised by ``scale`` for regression."""

    def __init__(self, data: TrainingData, split: str, batch_size: int, *, seed: int, shuffle: bool,
                 scale: tuple[float, float] = (0.0, 1.0)) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        self._data, self._batch, self._seed, self._shuffle = data, batch_size, seed, shuffle
        self._shards = data.shards(split)
        self._scale = scale
        self._epoch = 0
        self._order: list[int] = []
        self._starts: list[int] = [0]
        self._current: tuple[int, np.ndarray | None, Any, np.ndarray] | None = None
        self._plan()

    def _rng(self, *extra: int) -> np.random.Generator:
        return np.random.default_rng([self._seed, self._epoch, *extra])

    def _plan(self) -> None:
        n = len(self._shards)
        self._order = self._rng().permutation(n).tolist() if self._shuffle else list(range(n))
        counts = [-(-self._shards[i].rows // self._batch) for i in self._order]
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(int).tolist()  # first batch of each
        self._current = None

    def __len__(self) -> int:
        return self._starts[-1]

    def _shard(self, shard_index: int) -> tuple[np.ndarray | None, Any, np.ndarray]:
        if self._current is None or self._current[0] != shard_index:
            shard = self._shards[shard_index]
            perm = self._rng(shard_index).permutation(shard.rows) if self._shuffle else None
            labels = self._data.shard_labels(shard)
            self._current = (shard_index, perm, self._data.shard_rows(shard), labels)
        return self._current[1:]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        position = bisect_right(self._starts, index) - 1
        shard_index = self._order[position]
        perm, rows, labels = self._shard(shard_index)
        start = (index - self._starts[position]) * self._batch
        end = min(start + self._batch, self._shards[shard_index].rows)
        if perm is None:
            x, y = rows[start:end], np.asarray(labels[start:end])
        else:
            at = np.sort(perm[start:end])
            x, y = rows[at], labels[at]
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self._data.task == "regression":
            return x, ((y - self._scale[0]) / self._scale[1]).astype(np.float32)
        return x, (y.astype(np.float32) if self._data.task == "binary" else y.astype(np.int64))

    def on_epoch_end(self) -> None:
        self._epoch += 1
        self._plan()


def build_network(hidden: list[int], dropout: float, n_features: int, n_outputs: int) -> Any:
    """The built-in MLP: Dense+ReLU layers (with dropout), then ``n_outputs`` logits."""
    layers: list[Any] = [keras.Input(shape=(n_features,), name="features")]
    for i, units in enumerate(hidden):
        layers.append(keras.layers.Dense(units, activation="relu", name=f"hidden_{i}"))
        if dropout:
            layers.append(keras.layers.Dropout(dropout, name=f"dropout_{i}"))
    layers.append(keras.layers.Dense(n_outputs, name="logits"))
    return keras.Sequential(layers, name="blase_mlp")


def call_build(func: Callable[..., Any], ref: str, *, n_features: int, n_outputs: int, task: str) -> Any:
    """The network ``func`` builds, checked: a ``keras.Model`` taking ``[batch, n_features]`` to
    ``[batch, n_outputs]`` logits (no softmax or sigmoid: Blase applies them when it predicts)."""
    try:
        network = func(n_features=n_features, n_outputs=n_outputs, task=task)
    except Exception as exc:
        raise TrainError(f"train.options.build: {ref} raised {type(exc).__name__}: {exc}",
                         hint=f"{ref} is called as build_model(n_features={n_features}, n_outputs={n_outputs}, "
                         f"task={task!r})") from exc
    if not isinstance(network, keras.Model):
        raise TrainError(f"train.options.build: {ref} returned {type(network).__name__}, not a keras.Model",
                         hint="return keras.Sequential([...]) or a functional keras.Model")
    shape = tuple(network.compute_output_shape((None, n_features)))
    if shape[1:] != (n_outputs,):
        raise TrainError(f"train.options.build: {ref} outputs shape {list(shape)}; the {task} task needs "
                         f"[batch, {n_outputs}]", hint=f"end the network with keras.layers.Dense({n_outputs})")
    last = getattr(network.layers[-1], "activation", None) if network.layers else None
    if getattr(last, "__name__", "") in ("softmax", "sigmoid"):
        raise TrainError(f"train.options.build: {ref} ends in a {last.__name__}; Blase trains on logits",
                         hint=f"end the network with keras.layers.Dense({n_outputs}) and no activation")
    return network
