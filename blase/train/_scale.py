"""The scale check of training's inputs: a feature whose values are far larger (or smaller)
than the others' (an unscaled year next to standardised columns) stalls an MLP's training
while the loss looks normal, so training says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SCALE_RATIO", "feature_scale_warning"]

#: A feature whose root mean square is this many times above (or below) the median of the
#: features' is flagged.
SCALE_RATIO = 10.0
_CHUNK = 65_536


def _dense_rms(manifest: Any, shards: Path) -> dict[str, float]:
    """Root mean square of each stored (dense) feature over the train shards. Columns of
    only 0 and 1 are left out: one-hot features (codes in the compact layout, or stored dense)
    and flags, whose root mean square is the share of ones, not a scale; a hundred rare
    categories would otherwise make a tenth the typical size and flag every scaled column."""
    layout = manifest.layout
    positions = list(layout.dense) if layout is not None else list(range(manifest.n_features))
    total = np.zeros(len(positions))
    binary = np.ones(len(positions), dtype=bool)
    n = 0
    for shard in manifest.shards.get("train", []):
        x = np.load(shards / shard.file, mmap_mode="r")
        for start in range(0, len(x), _CHUNK):
            block = np.asarray(x[start : start + _CHUNK], dtype=np.float64)
            total += np.square(block).sum(axis=0)
            binary &= ((block == 0) | (block == 1)).all(axis=0)
            n += len(block)
    if n == 0:
        return {}
    names = [manifest.features[p] for p in positions]
    return {name: float(v) for name, v, flag in zip(names, np.sqrt(total / n), binary, strict=True) if not flag}


def feature_scale_warning(manifest: Any, shards: Path) -> str | None:
    """A warning naming the train inputs whose scale (root mean square: an offset counts,
    as a year's does) is more than :data:`SCALE_RATIO` times off the median feature's, or
    None when they are alike."""
    rms = {k: v for k, v in _dense_rms(manifest, shards).items() if np.isfinite(v) and v > 0}
    if len(rms) < 2:
        return None
    typical = float(np.median(list(rms.values())))
    off = {k: v for k, v in rms.items() if v > SCALE_RATIO * typical or v < typical / SCALE_RATIO}
    if not off:
        return None
    shown = ", ".join(f"'{k}' (~{v:.3g})" for k, v in sorted(off.items(), key=lambda kv: -kv[1])[:8])
    more = f" and {len(off) - 8} more" if len(off) > 8 else ""
    return (
        f"input features on a scale far from the others' (typical size ~{typical:.3g}): "
        f"{shown}{more}; a neural network learns poorly from them: add them to a `scale` "
        "step (op: scale, method: standard) in blase.yaml's transform, or see what "
        "`blase schema DATA --label LABEL` suggests"
    )
