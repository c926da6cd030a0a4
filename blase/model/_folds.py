"""Seeded k-fold assignment, shared by the kinds that cross-validate on small data."""

from __future__ import annotations

import numpy as np

__all__ = ["fold_ids"]


def fold_ids(y: np.ndarray, k: int, seed: int, *, stratify: bool) -> np.ndarray | None:
    """The fold (``0..k-1``) of each row: a seeded shuffle dealt round-robin, class by class
    when ``stratify`` (so every fold holds each class in about its share); None when some fold
    would be empty."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(len(y))]
    out = np.empty(len(y), dtype=np.int64)
    dealt = 0
    for members in groups:
        order = rng.permutation(members)
        out[order] = (np.arange(len(order)) + dealt) % k
        dealt += len(order)
    if len(y) < k or np.bincount(out, minlength=k).min() == 0:
        return None
    return out
