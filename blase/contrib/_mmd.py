"""The ``mmd`` drift test: maximum mean discrepancy with a seeded permutation p-value.

MMD² is the squared distance between the mean embeddings of the reference and the new values
under a kernel: a Gaussian kernel on numbers (standardised by the reference; bandwidth the
median pairwise distance of the pooled values, the usual heuristic), and the delta kernel on
categories (MMD² is then the squared distance between the two frequency vectors). The
p-value is the share of random relabellings of the pooled values whose MMD² is at least the
observed one (Gretton et al., 2012), with ``permutations`` relabellings drawn from a generator
seeded per column, so a check is repeatable. Each side is subsampled (seeded) to
``max_rows`` values, which bounds the kernel matrix: the test costs O((2·max_rows)²) per
permutation batch whatever the data size.

::

    monitor:
      tests:
        numeric: mmd
        categorical: {test: mmd, alpha: 0.01, permutations: 500}
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from blase.monitor import DriftOutcome, DriftSample, DriftTest, mmd_squared, permutation_mmd

__all__ = ["MMDOptions", "MMDTest", "mmd_squared"]


class MMDOptions(BaseModel):
    """Options of the ``mmd`` test (inline in ``monitor.tests``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = Field(default=0.05, gt=0, lt=1, description="drift when the p-value is below this")
    permutations: int = Field(default=200, ge=20, le=10_000, description="relabellings for the p-value")
    max_rows: int = Field(default=500, ge=20, le=5_000, description="values kept per side (a seeded sample)")


def _subsample(values: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return values if len(values) <= n else values[np.sort(rng.choice(len(values), n, replace=False))]


def _kernel(x: np.ndarray, y: np.ndarray, kind: str) -> np.ndarray:
    """The pooled kernel matrix of ``x`` then ``y``."""
    pooled = np.concatenate([x, y])
    if kind == "categorical":
        _, codes = np.unique(pooled.astype(str), return_inverse=True)
        return (codes[:, None] == codes[None, :]).astype(np.float64)
    scale = float(np.std(x)) or 1.0
    z = (pooled.astype(np.float64) - float(np.mean(x))) / scale
    d2 = (z[:, None] - z[None, :]) ** 2
    upper = d2[np.triu_indices(len(z), k=1)]
    width = float(np.median(upper)) if upper.size else 1.0
    return np.exp(-d2 / (width if width > 0 else 1.0))


class MMDTest(DriftTest):
    """Maximum mean discrepancy; drift when the permutation p-value is below ``alpha``."""

    name = "mmd"
    kinds = ("numeric", "categorical")
    config_model = MMDOptions

    @property
    def opts(self) -> MMDOptions:
        return self.options if isinstance(self.options, MMDOptions) else MMDOptions()

    def test(self, reference: DriftSample, current: DriftSample, *, seed: int) -> DriftOutcome:
        opts = self.opts
        rng = np.random.default_rng(seed)
        x = _subsample(reference.values, opts.max_rows, rng)
        y = _subsample(current.values, opts.max_rows, rng)
        kernel = _kernel(x, y, reference.kind)
        n = len(x)
        observed, p_value = permutation_mmd(kernel, n, opts.permutations, rng)
        return DriftOutcome(statistic=observed, p_value=p_value, drifted=p_value < opts.alpha,
                            threshold=opts.alpha,
                            note=f"MMD² on {n:,} reference and {len(y):,} new values, {opts.permutations} permutations")
