"""Drift statistics: the exact tests on values held in memory, and their binned forms.

The exact functions take raw values (or counts) and equal scipy's to floating-point
precision: :func:`ks_test` is ``scipy.stats.ks_2samp``, :func:`chi_square_test` is
``scipy.stats.chisquare`` with the reference counts scaled to the current total,
:func:`wasserstein_norm` is ``scipy.stats.wasserstein_distance`` divided by the reference's
standard deviation (as Evidently does), :func:`jensen_shannon` is
``scipy.spatial.distance.jensenshannon`` of the two frequency vectors, :func:`z_test` is
Evidently's two-proportion z-test and :func:`psi` the population stability index.

The binned form :func:`wasserstein_binned` works from counts on a shared grid, which is how
a reference of any size meets current data of any size.

Only the small-reference tests (KS, chi-square) and :func:`wasserstein_norm` import scipy;
the tests of large references are numpy and :mod:`math` (scipy's import alone takes longer
than the statistics of a whole check).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "PSI_EPS",
    "chi_square_test",
    "jensen_shannon",
    "ks_test",
    "psi",
    "psi_counts",
    "wasserstein_binned",
    "wasserstein_norm",
    "z_test",
]

#: Empty bins get this share in :func:`psi` (as Evidently's ``feel_zeroes``).
PSI_EPS = 1e-4


def ks_test(reference: Any, current: Any) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test: ``(statistic, p_value)`` (``scipy.stats.ks_2samp``)."""
    from scipy import stats

    res = stats.ks_2samp(np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64))
    return float(res.statistic), float(res.pvalue)


def _aligned(reference: Mapping[Any, float], current: Mapping[Any, float]) -> tuple[list[Any], np.ndarray, np.ndarray]:
    union = set(reference) | set(current)
    try:
        keys = sorted(union)  # one kind of key (bins, or text): a plain sort
    except TypeError:
        keys = sorted(union, key=lambda k: (str(type(k)), k))
    ref = np.array([float(reference.get(k, 0.0)) for k in keys])
    cur = np.array([float(current.get(k, 0.0)) for k in keys])
    return keys, ref, cur


def chi_square_test(reference: Mapping[Any, float], current: Mapping[Any, float]) -> tuple[float, float]:
    """Chi-square goodness of fit of current counts to the reference frequencies.

    ``scipy.stats.chisquare(f_obs=current, f_exp=reference * n_current / n_reference)`` over the
    union of categories. A category the reference never had (expected 0, observed > 0) gives
    an infinite statistic and p = 0: the data holds something the model never saw.
    """
    from scipy import stats

    _, ref, cur = _aligned(reference, current)
    if ref.sum() <= 0 or cur.sum() <= 0:
        return 0.0, 1.0
    expected = ref * cur.sum() / ref.sum()
    if np.any((expected == 0) & (cur > 0)):
        return math.inf, 0.0
    keep = expected > 0
    if keep.sum() < 2:
        return 0.0, 1.0
    res = stats.chisquare(cur[keep], expected[keep])
    return float(res.statistic), float(res.pvalue)


def z_test(reference: Mapping[Any, float], current: Mapping[Any, float]) -> tuple[float, float]:
    """Two-proportion z-test on a binary column (Evidently's ``z``): ``(z, p_value)``.

    The proportion tested is that of the first value (sorted) of the union of both columns.
    """
    keys, ref, cur = _aligned(reference, current)
    n1, n2 = ref.sum(), cur.sum()
    if n1 <= 0 or n2 <= 0:
        return 0.0, 1.0
    present = [k for k, a, b in zip(keys, ref, cur, strict=True) if a + b > 0]
    if len(present) == 1 and ref[keys.index(present[0])] > 0 and cur[keys.index(present[0])] > 0:
        return 0.0, 1.0  # one and the same value on both sides
    i = keys.index(present[0])
    p1, p2 = ref[i] / n1, cur[i] / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    denom = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if denom == 0:
        return 0.0, 1.0
    z = (p1 - p2) / denom
    return float(z), math.erfc(abs(z) / math.sqrt(2))  # 2 * (1 - Phi(|z|))


def wasserstein_norm(reference: Any, current: Any) -> float:
    """``scipy.stats.wasserstein_distance(reference, current) / max(std(reference), 0.001)``."""
    from scipy import stats

    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    return float(stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001))


def jensen_shannon(reference: Mapping[Any, float], current: Mapping[Any, float]) -> float:
    """Jensen-Shannon distance (natural log) of two count or frequency vectors over their union."""
    _, ref, cur = _aligned(reference, current)
    if ref.sum() <= 0 or cur.sum() <= 0:
        return 0.0
    p, q = ref / ref.sum(), cur / cur.sum()
    m = (p + q) / 2.0
    divergence = _relative_entropy(p, m) + _relative_entropy(q, m)
    return float(np.sqrt(max(divergence, 0.0) / 2.0))


def _relative_entropy(p: np.ndarray, m: np.ndarray) -> float:
    """``sum(scipy.special.rel_entr(p, m))`` where ``m > 0`` wherever ``p > 0``."""
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / m[nz])))


def psi(reference_share: Sequence[float], current_share: Sequence[float]) -> float:
    """Population stability index of two share vectors; empty bins count as :data:`PSI_EPS`."""
    ref = np.where(np.asarray(reference_share, dtype=np.float64) == 0, PSI_EPS, reference_share)
    cur = np.where(np.asarray(current_share, dtype=np.float64) == 0, PSI_EPS, current_share)
    return float(np.sum((ref - cur) * np.log(ref / cur)))


def psi_counts(reference: Mapping[Any, float], current: Mapping[Any, float], *, ordered: bool, groups: int = 10) -> float:
    """PSI from counts: categories as they are; ordered bins merged into ``groups`` reference
    quantile groups (deciles by default), the usual way PSI is read."""
    _, ref, cur = _aligned(reference, current)
    if ref.sum() <= 0 or cur.sum() <= 0:
        return 0.0
    if ordered:
        cum = np.cumsum(ref) / ref.sum()
        group = np.minimum((cum * groups - 1e-9).astype(int), groups - 1)
        group = np.maximum.accumulate(np.maximum(group, 0))
        ref = np.bincount(group, weights=ref, minlength=groups)
        cur = np.bincount(group, weights=cur, minlength=groups)
    return psi(ref / ref.sum(), cur / cur.sum())


def wasserstein_binned(reference: Mapping[int, float], current: Mapping[int, float], width: float) -> float:
    """Wasserstein-1 distance of two histograms on one grid of ``width``-wide bins keyed by
    integer bin index, each bin's mass at its centre: ``sum |F - G| * gap`` over the keys.

    Exact for data on the grid (integers with width 1); otherwise within one bin width of
    the exact distance, and in practice much closer since both sides are binned alike.
    """
    keys, ref, cur = _aligned(reference, current)
    if ref.sum() <= 0 or cur.sum() <= 0 or len(keys) < 2:
        return 0.0
    f = np.cumsum(ref)[:-1] / ref.sum()
    g = np.cumsum(cur)[:-1] / cur.sum()
    gaps = np.diff(np.asarray(keys, dtype=np.float64)) * width
    return float(np.sum(np.abs(f - g) * gaps))
