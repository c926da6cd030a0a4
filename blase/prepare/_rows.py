"""Reading the float32 rows of a shard, whatever its stored layout.

A plain shard is a float32 ``[n, d]`` ``.npy`` file. A compact one (``manifest.layout``,
written when prepare applies a transform ending in one-hot) stores the other features as
float32 ``[n, d_dense]`` and each one-hot column as an integer code per row, because the
expanded form is mostly zeros: on the flights benchmark, 129 float32 features of which 126
are one-hot, it is 10x smaller and 10x less to write and read. :class:`ShardRows` gives
the same float32 rows either way, so training, evaluation and TFRecord output never see
the difference. Tensor columns (decoded images, spectrograms) are stored as their uint8
values (``.tensor.npy``): a quarter of float32's bytes, and :class:`ShardDataset` hands them
to torch as they are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from blase.errors import PrepareError
from blase.prepare._manifest import Layout, Manifest, ShardInfo

__all__ = ["ShardRows"]


class ShardRows:
    """The rows of one shard, read through memory maps and expanded on demand.

    ``rows[i:j]`` or ``rows[sorted_indices]`` is a float32 ``[k, n_features]`` array.

    Raises
    ------
    PrepareError
        When the files do not have the shapes the manifest gives.
    """

    def __init__(self, root: str | Path, shard: ShardInfo, *, n_features: int,
                 layout: Layout | None = None) -> None:
        root = Path(root)
        self.n_features = n_features
        self.layout = layout
        self.x = np.load(root / shard.file, mmap_mode="r")
        self.codes = np.load(root / shard.codes_file, mmap_mode="r") if shard.codes_file else None
        self.tensor = np.load(root / shard.tensor_file, mmap_mode="r") if shard.tensor_file else None
        width = len(self.layout.dense) if self.layout else self.n_features
        groups = len(self.layout.onehot) if self.layout else 0
        tensor = self.layout.tensor_width if self.layout else 0
        ok = self.x.ndim == 2 and self.x.shape == (shard.rows, width)
        if groups:
            ok = ok and self.codes is not None and self.codes.shape == (shard.rows, groups)
        if tensor:
            ok = ok and self.tensor is not None and self.tensor.shape == (shard.rows, tensor)
        if not ok:
            codes = f" and codes {list(self.codes.shape)}" if self.codes is not None else ""
            codes += f" and tensor values {list(self.tensor.shape)}" if self.tensor is not None else ""
            raise PrepareError(
                f"shard {root / shard.file} has shape {list(self.x.shape)}{codes}; the manifest says "
                f"{shard.rows} rows x {self.n_features} features"
                + (f" ({width} stored as numbers, {groups} one-hot groups as codes, {tensor} tensor "
                   "values as bytes)" if self.layout else ""),
                hint="the shards were changed after prepare; run prepare again",
            )
        self._dense = np.asarray(self.layout.dense, dtype=np.int64) if self.layout else None
        self._dense_runs = _runs(self._dense) if self._dense is not None else []
        self._tensor_at = (np.asarray([p for t in self.layout.tensors for p in t.features], dtype=np.int64)
                           if self.layout and self.layout.tensors else None)

    @classmethod
    def of(cls, root: str | Path, manifest: Manifest, shard: ShardInfo) -> ShardRows:
        """The rows of ``shard``, a shard of ``manifest`` in the folder ``root``."""
        return cls(root, shard, n_features=manifest.n_features, layout=manifest.layout)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.x), self.n_features)

    def __getitem__(self, index: slice | np.ndarray) -> np.ndarray:
        if self.layout is None:
            return np.array(self.x[index], dtype=np.float32)
        if self._tensor_at is not None and len(self._dense) == 0 and not self.layout.onehot \
                and np.array_equal(self._tensor_at, np.arange(self.n_features)):
            return np.asarray(self.tensor[index], dtype=np.float32)  # type: ignore[index]
        dense = self.x[index]
        out = np.zeros((len(dense), self.n_features), dtype=np.float32)
        for at, stop, src in self._dense_runs:  # block copies: a column-indexed scatter is 10x slower
            out[:, at:stop] = dense[:, src:src + stop - at]
        if self._tensor_at is not None:
            out[:, self._tensor_at] = self.tensor[index]  # type: ignore[index]
        if not self.layout.onehot:
            return out
        codes = np.asarray(self.codes[index])  # type: ignore[index]
        rows = np.arange(len(out))
        for g in range(codes.shape[1]):
            target = codes[:, g]
            hit = target >= 0
            out[rows[hit], target[hit]] = 1.0
        return out

    def tensor_values(self, index: slice | np.ndarray, features: np.ndarray) -> np.ndarray | None:
        """The uint8 values of the features at positions ``features`` for rows ``index``, read
        from the tensor block without a float copy; None when they are not stored there."""
        if self._tensor_at is None:
            return None
        if np.array_equal(features, self._tensor_at):  # an image view of the whole tensor
            return np.asarray(self.tensor[index])  # type: ignore[index]
        where = {int(p): j for j, p in enumerate(self._tensor_at)}
        cols = [where.get(int(f), -1) for f in features]
        if min(cols, default=-1) < 0:
            return None
        block = np.asarray(self.tensor[index])  # type: ignore[index]
        if cols == list(range(cols[0], cols[0] + len(cols))):
            return block[:, cols[0]:cols[0] + len(cols)]
        return block[:, cols]


def _runs(positions: np.ndarray) -> list[tuple[int, int, int]]:
    """``positions`` (sorted output columns of the stored columns ``0..n-1``) as runs of
    consecutive columns: ``(first output column, end, first stored column)``."""
    if not len(positions):
        return []
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [len(positions)]])
    return [(int(positions[a]), int(positions[a]) + int(b - a), int(a)) for a, b in zip(starts, ends, strict=True)]
