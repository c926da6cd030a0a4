"""Embedding drift: does the model see the new inputs as it saw the training inputs?

For a model kind that defines ``embeddings(x) -> [n, k]`` (``image_cnn``: its penultimate
layer, one value per channel of the last conv block), ``blase deploy`` keeps the embeddings
of a seeded sample of the training data (``reference_embeddings.npy`` in the package, at
most 500 rows), and ``blase monitor`` embeds its sample of the new data
the same way (``blase.deploy.EMBEDDINGS_FILE``). The two are compared with the maximum mean discrepancy (Gretton et al.,
2012) under a Gaussian kernel on the embeddings standardised by the reference (bandwidth:
the median pairwise distance of the pooled points); the p-value is the share of seeded
random relabellings whose MMD² is at least the observed one. The report also gives the mean
shift: the distance between the two mean embeddings in the reference's standard deviations.
Pixel values alone miss what matters to the model (a new camera, other objects at the
same brightness); its own embedding does not.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["MAX_ROWS", "describe", "embedding_drift", "permutation_mmd"]

#: New rows compared at most (a seeded sample; deploy keeps as many training rows).
MAX_ROWS = 500
ALPHA = 0.05
PERMUTATIONS = 200


def mmd_squared(kernel: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """MMD² for each column of ``weights`` (+1/n on one side, -1/m on the other): wᵀKw."""
    return np.einsum("ip,ip->p", weights, kernel @ weights)


def _weights(labels: np.ndarray, n: int) -> np.ndarray:
    """Columns of +1/n (label True) and -1/m (False), one per row of ``labels`` (P, total)."""
    m = labels.shape[-1] - n
    return np.where(labels, 1.0 / n, -1.0 / m).T


def permutation_mmd(kernel: np.ndarray, n: int, permutations: int,
                    rng: np.random.Generator) -> tuple[float, float]:
    """``(MMD², p-value)`` of the pooled ``kernel`` matrix whose first ``n`` rows are the
    reference, against ``permutations`` seeded relabellings."""
    total = kernel.shape[0]
    observed = float(mmd_squared(kernel, _weights((np.arange(total) < n)[None, :], n))[0])
    labels = np.zeros((permutations, total), dtype=bool)
    for row in labels:
        row[rng.permutation(total)[:n]] = True
    null = mmd_squared(kernel, _weights(labels, n))
    return max(observed, 0.0), float((1 + np.sum(null >= observed - 1e-12)) / (1 + permutations))


def embedding_drift(reference: np.ndarray, current: np.ndarray, *, seed: int = 0) -> dict[str, Any]:
    """MMD test and mean shift of ``current`` embeddings against ``reference`` ones."""
    rng = np.random.default_rng(seed)
    if len(current) > MAX_ROWS:
        current = current[np.sort(rng.choice(len(current), MAX_ROWS, replace=False))]
    ref, cur = np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)
    mean, std = ref.mean(axis=0), ref.std(axis=0)
    std[std == 0] = 1.0
    pooled = (np.concatenate([ref, cur]) - mean) / std
    sq = (pooled * pooled).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * pooled @ pooled.T, 0.0)
    upper = d2[np.triu_indices(len(pooled), k=1)]
    width = float(np.median(upper)) if upper.size else 1.0
    kernel = np.exp(-d2 / (width if width > 0 else 1.0))
    statistic, p_value = permutation_mmd(kernel, len(ref), PERMUTATIONS, rng)
    shift = float(np.linalg.norm(pooled[len(ref):].mean(axis=0)) / np.sqrt(pooled.shape[1]))
    return {"test": "mmd", "statistic": statistic, "p_value": p_value, "drifted": p_value < ALPHA,
            "threshold": ALPHA, "mean_shift": shift, "dimensions": int(pooled.shape[1]),
            "reference_rows": len(ref), "current_rows": len(cur)}


def describe(drift: dict[str, Any]) -> str:
    """One line for the report and the terminal."""
    verdict = "drifted" if drift["drifted"] else "no drift"
    sign = "<" if drift["drifted"] else ">="
    return (f"embedding drift ({drift['dimensions']} dimensions of the model's penultimate layer): {verdict}, "
            f"MMD² {drift['statistic']:.3g}, p={drift['p_value']:.3g} {sign} {drift['threshold']} on "
            f"{drift['reference_rows']:,} training and {drift['current_rows']:,} new rows; mean shift "
            f"{drift['mean_shift']:.2f} reference standard deviations")
