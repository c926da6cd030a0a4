"""A PyTorch dataset over prepared shards that reads whole batches, not rows.

Each epoch the shard order is permuted, and so are the rows inside each shard, both from a
generator seeded with ``(seed, epoch)``. A batch is one fancy-index read of a memory-mapped
shard (indices sorted for locality), so the cost is per batch, not per row. Batches never
cross shards: the set of batches is fixed by the shards, so ``DataLoader`` workers, which
each take a disjoint subset of the (permuted) shards, yield exactly the batches a single
process would, and ``len()`` is exact for any number of workers. The last batch of a shard
may be short (dropped with ``drop_last=True``).

Use it with ``DataLoader(dataset, batch_size=None, num_workers=k)`` (the dataset batches),
and call :meth:`ShardDataset.set_epoch` before each epoch. With ``persistent_workers=True``
the workers keep the epoch they were started with, so leave that off when calling
``set_epoch``.

For distributed training (DDP) each process passes its ``rank`` and the ``world_size``: it
then reads a disjoint share of every shard's rows, ``perm[rank::world_size]`` of the epoch's
seeded permutation. With ``even=True`` (training) the rows past the last multiple of
``world_size`` in each shard are left out that epoch, so every process takes the same number
of batches (DDP steps together); with ``even=False`` (evaluation) every row is read by exactly
one process. With ``world_size=1`` nothing changes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from blase.errors import PrepareError
from blase.prepare._manifest import Manifest, read_manifest
from blase.prepare._rows import ShardRows

__all__ = ["ImageView", "ShardDataset"]


@dataclass(frozen=True)
class ImageView:
    """How :class:`ShardDataset` shapes rows into images: the ``prefix`` features (``px_`` of
    the ``images`` source, ``mel_`` of ``audio``; 0-255, row-major, channels last) become
    float32 ``[b, channels, size, size]`` in [0, 1] (read as uint8 from a tensor column's
    block, scaled in torch). With ``flip`` half the images of a
    batch are mirrored left-right, with ``crop`` each is shifted by up to ``crop`` pixels
    (edge pixels repeated), both drawn from the dataset's seed, epoch, shard and batch."""

    channels: int
    size: int
    flip: bool = False
    crop: int = 0
    prefix: str = "px_"

    def apply(self, x: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """Rows (0-255, any dtype) as float32 images in [0, 1], augmented when ``rng`` is given."""
        return self.images(x, rng).numpy()

    def images(self, x: np.ndarray, rng: np.random.Generator | None) -> torch.Tensor:
        """Rows as a float32 tensor ``[b, channels, size, size]`` in [0, 1]: the augmentation
        moves the stored values (uint8 from a tensor column: a quarter of the bytes), then
        they are scaled once."""
        images = x.reshape(len(x), self.size, self.size, self.channels)
        if rng is not None and self.flip:
            mirrored = rng.random(len(images)) < 0.5
            images = images.copy()
            images[mirrored] = images[mirrored, :, ::-1]
        if rng is not None and self.crop:
            c, n = self.crop, self.size
            padded = np.pad(images, ((0, 0), (c, c), (c, c), (0, 0)), mode="edge")
            shifts = rng.integers(0, 2 * c + 1, size=(len(images), 2))
            rows = shifts[:, :1] + np.arange(n)  # [b, n]: each image's window, one gather for all
            cols = shifts[:, 1:] + np.arange(n)
            images = padded[np.arange(len(images))[:, None, None], rows[:, :, None], cols[:, None, :]]
        # channels first and scaled in numpy, on this thread: torch's intra-op threads, on a
        # machine whose cores are busy, wait for one (measured: 0.3 ms a batch here, median
        # 90 ms through torch with 2 threads under load)
        out = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).astype(np.float32)
        out /= np.float32(255)
        return torch.from_numpy(out)


class ShardDataset(IterableDataset):
    """Batches ``(X, y)`` from one split of a prepared folder.

    Parameters
    ----------
    out_dir:
        A folder written by :class:`~blase.prepare.Prepare` (holding ``manifest.json``).
    split:
        ``"train"``, ``"val"`` or ``"test"``, or several of them (``("train", "val")``: their
        shards read as one split, as a refit on the train and val rows does).
    batch_size:
        Rows per batch.
    shuffle:
        Permute shards and rows each epoch (deterministically from ``seed`` and the epoch).
        Without it, batches come in file order.
    seed:
        Seed of the shuffle.
    drop_last:
        Drop the short last batch of each shard.
    image:
        An :class:`ImageView`: yield ``X`` as images ``[b, channels, size, size]`` (augmented,
        when it says so, on shuffled passes only).
    rank, world_size:
        This process's share of each shard's rows in distributed training (see above).
    even:
        With ``world_size > 1``: give every process the same number of rows per shard.

    Yields
    ------
    tuple of torch.Tensor
        ``X`` float32 ``[b, n_features]`` (or images) and ``y`` (int64 class codes, or float32
        targets).
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        split: str | Sequence[str] = "train",
        batch_size: int = 256,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        image: ImageView | None = None,
        *,
        rank: int = 0,
        world_size: int = 1,
        even: bool = True,
    ) -> None:
        super().__init__()
        self.root = Path(out_dir)
        self.manifest: Manifest = read_manifest(self.root)
        splits = (split,) if isinstance(split, str) else tuple(split)
        for name in splits:
            if name not in self.manifest.shards:
                raise PrepareError(
                    f"split '{name}' is not in {self.root / 'manifest.json'}",
                    hint=f"use one of: {', '.join(self.manifest.shards)}",
                )
        if batch_size < 1:
            raise PrepareError(
                f"batch_size={batch_size} must be at least 1", hint="e.g. batch_size=256"
            )
        self.split = "+".join(splits)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        if not 0 <= rank < world_size:
            raise PrepareError(
                f"rank {rank} is not in 0..{world_size - 1}", hint="pass 0 <= rank < world_size"
            )
        self.rank, self.world_size, self.even = int(rank), int(world_size), even
        self.epoch = 0
        self.shards = [shard for name in splits for shard in self.manifest.shards[name]]
        self.image = image
        self._columns: np.ndarray | None = None
        if image is not None:
            self._columns = np.asarray([i for i, f in enumerate(self.manifest.features) if f.startswith(image.prefix)])
            if len(self._columns) != image.channels * image.size * image.size:
                raise PrepareError(
                    f"{len(self._columns)} features of {self.root / 'manifest.json'} start with {image.prefix!r}; "
                    f"an image of {image.channels} x {image.size} x {image.size} needs "
                    f"{image.channels * image.size * image.size}",
                    hint="give ImageView the channels and size the source wrote (data.options)",
                )

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose permutation the next iteration uses (seed + epoch)."""
        self.epoch = int(epoch)

    @property
    def rows(self) -> int:
        """Rows this process reads per epoch."""
        return sum(self._my_rows(s.rows) for s in self.shards)

    def _my_rows(self, n: int) -> int:
        w = self.world_size
        if w == 1:
            return n
        return n // w if self.even else len(range(self.rank, n, w))

    def _batches_in(self, rows: int) -> int:
        return rows // self.batch_size if self.drop_last else math.ceil(rows / self.batch_size)

    def __len__(self) -> int:
        return sum(self._batches_in(self._my_rows(s.rows)) for s in self.shards)

    def _rng(self, *extra: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, *extra])

    def shard_order(self) -> list[int]:
        """Shard indices in this epoch's order."""
        n = len(self.shards)
        return self._rng().permutation(n).tolist() if self.shuffle else list(range(n))

    def _my_shards(self) -> list[int]:
        order = self.shard_order()
        info = get_worker_info()
        if info is None:
            return order
        return order[info.id :: info.num_workers]

    def _shard_batches(self, i: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        shard = self.shards[i]
        x = ShardRows.of(self.root, self.manifest, shard)
        y = np.load(self.root / shard.labels_file, mmap_mode="r")
        n = shard.rows
        b = self.batch_size
        stop = n - n % b if self.drop_last else n
        perm = self._rng(i).permutation(n) if self.shuffle else None
        if self.world_size > 1:
            yield from self._rank_batches(i, x, y, np.arange(n) if perm is None else perm)
            return
        for start in range(0, stop, b):
            end = min(start + b, n)
            if perm is None:
                xb, yb = self._rows(x, slice(start, end)), np.array(y[start:end])
            else:
                idx = np.sort(perm[start:end])
                xb, yb = self._rows(x, idx), y[idx]
            yield self._batch(i, start, xb, yb)

    def _batch(self, i: int, start: int, xb: Any, yb: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        if self.image is not None:
            rng = self._rng(i, start) if self.shuffle else None
            return self.image.images(np.asarray(xb), rng), torch.from_numpy(np.asarray(yb))
        return torch.from_numpy(xb), torch.from_numpy(np.asarray(yb))

    def _rows(self, x: ShardRows, index: slice | np.ndarray) -> np.ndarray:
        """Rows ``index`` of a shard: float32 features, or with an image view the image's
        values (uint8 straight from the tensor block when stored there)."""
        if self.image is None:
            return x[index]
        assert self._columns is not None
        stored = x.tensor_values(index, self._columns)
        return stored if stored is not None else x[index][:, self._columns]

    def _rank_batches(
        self, i: int, x: Any, y: np.ndarray, perm: np.ndarray
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        w = self.world_size
        if self.even:
            perm = perm[: len(perm) - len(perm) % w]
        mine = perm[self.rank :: w]
        n, b = len(mine), self.batch_size
        stop = n - n % b if self.drop_last else n
        for start in range(0, stop, b):
            idx = np.sort(mine[start : start + b])
            yield self._batch(i, start * w + self.rank, self._rows(x, idx), y[idx])  # augment per rank

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in self._my_shards():
            yield from self._shard_batches(i)

    def loader(self, num_workers: int = 0, **kwargs: Any) -> DataLoader:
        """A ``DataLoader`` over this dataset (``batch_size=None``: the dataset batches)."""
        return DataLoader(self, batch_size=None, num_workers=num_workers, **kwargs)
