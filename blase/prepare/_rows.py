"""Reading the float32 rows of a shard, whatever its stored layout.

A plain shard is a float32 ``[n, d]`` ``.npy`` file. A compact one (``manifest.layout``,
written when prepare applies a transform ending in one-hot) stores the other features as
float32 ``[n, d_dense]`` and each one-hot column as an integer code per row, because the
expanded form is mostly zeros: on the flights benchmark, 129 float32 features of which 126
are one-hot, it is 10x smaller and 10x less to write and read. :class:`ShardRows` gives
the same float32 rows either way, so training, evaluation and TFRecord output never see
the difference.
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
        width = len(self.layout.dense) if self.layout else self.n_features
        groups = len(self.layout.onehot) if self.layout else 0
        ok = self.x.ndim == 2 and self.x.shape == (shard.rows, width)
        if self.layout is not None:
            ok = ok and self.codes is not None and self.codes.shape == (shard.rows, groups)
        if not ok:
            codes = f" and codes {list(self.codes.shape)}" if self.codes is not None else ""
            raise PrepareError(
                f"shard {root / shard.file} has shape {list(self.x.shape)}{codes}; the manifest says "
                f"{shard.rows} rows x {self.n_features} features"
                + (f" ({width} stored as numbers, {groups} one-hot groups as codes)" if self.layout else ""),
                hint="the shards were changed after prepare; run prepare again",
            )
        self._dense = np.asarray(self.layout.dense, dtype=np.int64) if self.layout else None

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
        dense = self.x[index]
        out = np.zeros((len(dense), self.n_features), dtype=np.float32)
        out[:, self._dense] = dense
        codes = np.asarray(self.codes[index])  # type: ignore[index]
        rows = np.arange(len(out))
        for g in range(codes.shape[1]):
            target = codes[:, g]
            hit = target >= 0
            out[rows[hit], target[hit]] = 1.0
        return out
