"""Per-column drift decisions with Evidently's default tests and thresholds.

For a reference of at most :data:`SMALL_REFERENCE` non-null values: the two-sample KS test
for numbers with more than 5 distinct values, chi-square for categories (and numbers with
3-5 values), the two-proportion z-test for binary columns; drift when p < 0.05. For larger
references: the normed Wasserstein distance (the distance over the reference's standard
deviation) for numbers with more than 5 values, the Jensen-Shannon distance otherwise; drift
when the distance is >= 0.1. PSI is reported beside, not used for the decision. A column also
drifts when its null rate moves by at least :data:`NULL_SHIFT` (and the change is
significant by a two-proportion z-test).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from blase.monitor import _stats as st
from blase.profile import NEW_KEY, ColumnProfile, CurrentColumn

__all__ = ["DISTANCE_THRESHOLD", "NULL_SHIFT", "P_THRESHOLD", "SMALL_REFERENCE", "ColumnDrift", "column_drift"]

SMALL_REFERENCE = 1000
P_THRESHOLD = 0.05
DISTANCE_THRESHOLD = 0.1
#: A null rate moving by this much (absolute) counts as drift.
NULL_SHIFT = 0.05


@dataclass
class ColumnDrift:
    """The drift verdict of one column (or of the predictions, or the label)."""

    column: str
    kind: str
    test: str
    statistic: float | None
    p_value: float | None
    score: float
    threshold: float
    drifted: bool
    psi: float | None
    reference_rows: int
    current_rows: int
    reference_null_rate: float
    current_null_rate: float
    null_drift: bool = False
    unseen_rows: int = 0
    unseen_examples: list[Any] = field(default_factory=list)
    note: str | None = None
    method: str = "exact"
    distribution_drift: bool = False

    def reason(self) -> str:
        parts = []
        if self.distribution_drift:
            if self.p_value is not None:
                parts.append(f"{self.test} p={self.p_value:.3g} < {self.threshold}")
            else:
                parts.append(f"{self.test} {self.score:.3g} >= {self.threshold}")
        if self.null_drift:
            parts.append(f"null rate {self.reference_null_rate:.1%} -> {self.current_null_rate:.1%}")
        if self.unseen_rows:
            shown = ", ".join(map(repr, self.unseen_examples[:3]))
            parts.append(f"{self.unseen_rows:,} row(s) with unseen values" + (f" ({shown})" if shown else ""))
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("statistic", "p_value", "score", "psi"):
            v = out.get(key)
            if isinstance(v, float) and not np.isfinite(v):
                out[key] = None if np.isnan(v) else ("inf" if v > 0 else "-inf")
        return out


def _by_value(ref: ColumnProfile, counts: dict[Any, int]) -> dict[Any, float]:
    """Numeric keys as values (bin centres), for the categorical tests on discrete numbers."""
    if ref.kind != "numeric":
        return {k: float(v) for k, v in counts.items()}
    return {ref.lo + int(k) * ref.width: float(v) for k, v in counts.items()}


def _plugin_verdict(plugin: tuple[Any, Any], ref: ColumnProfile, cur: CurrentColumn, ref_counts: dict[Any, float],
                    cur_counts: dict[Any, float], values: list[Any] | None, complete: bool) -> tuple[Any, ...]:
    """``(test, statistic, p_value, score, threshold, drifted, note)`` of a drift_test plugin."""
    outcome = _plugin_outcome(plugin, ref, cur, ref_counts, cur_counts, values, complete)
    statistic, p_value = float(outcome.statistic), outcome.p_value
    score = 1.0 - float(p_value) if p_value is not None else statistic
    return plugin[0].name, statistic, p_value, score, float(outcome.threshold), bool(outcome.drifted), outcome.note


def _plugin_outcome(plugin: tuple[Any, Any], ref: ColumnProfile, cur: CurrentColumn, ref_counts: dict[Any, float],
                    cur_counts: dict[Any, float], values: list[Any] | None, complete: bool) -> Any:
    """A drift_test plugin's outcome on one column (see :mod:`blase.monitor._plugin`)."""
    from blase.monitor._plugin import DriftSample, run_test

    dtype = np.float64 if ref.kind == "numeric" else object
    counts = {k: v for k, v in cur_counts.items() if k != NEW_KEY}
    if ref.kind == "categorical" and NEW_KEY in cur_counts:  # the new categories, by value where sampled
        counts["(unseen)"] = cur_counts[NEW_KEY]
    reference = DriftSample(ref.name, ref.kind, np.asarray(ref.sample, dtype=dtype), _by_value(ref, ref_counts),
                            ref.sample_complete)
    current = DriftSample(ref.name, ref.kind, np.asarray(values or [], dtype=dtype), _by_value(ref, counts),
                          complete)
    if not len(current.values) or not len(reference.values):
        from blase.monitor._plugin import DriftOutcome

        return DriftOutcome(0.0, False, 0.0, None, note="no sampled values to compare")
    return run_test(plugin[0], plugin[1], reference, current)


def column_drift(
    ref: ColumnProfile,
    cur: CurrentColumn,
    current_values: np.ndarray | None = None,
    *,
    current_complete: bool = False,
    unseen_examples: list[Any] | None = None,
    plugin: tuple[Any, Any] | None = None,
    values: list[Any] | None = None,
) -> ColumnDrift:
    """Decide whether ``cur`` drifted from ``ref`` (see the module docstring).

    Parameters
    ----------
    ref, cur:
        The reference column and the new data's counts per key.
    current_values:
        Non-null current values (as profiled: doubles or text) for the exact KS test; all of
        them when ``current_complete``, else a sample.
    plugin:
        ``(plugin, test)``: a :class:`~blase.monitor.DriftTest` chosen in ``monitor.tests``
        decides instead of the built-in test; ``values`` are the sampled current values.
    """
    ref_counts = {k: float(v) for k, v in ref.counts.items()}
    cur_counts = {k: float(v) for k, v in cur.counts.items() if k is not None}
    unseen = int(cur_counts.get(NEW_KEY, 0))
    union = {k for k, v in ref_counts.items() if v > 0} | {k for k, v in cur_counts.items() if v > 0}
    n_values = len(union)
    small = ref.non_null <= SMALL_REFERENCE
    note = None
    method = "exact"
    statistic: float | None
    p_value: float | None
    if cur.non_null == 0 or ref.non_null == 0:
        test, statistic, p_value, score, threshold, dist = "none", None, None, 0.0, 0.0, False
        note = "no values to compare"
    elif plugin is not None:
        test, statistic, p_value, score, threshold, dist, note = _plugin_verdict(
            plugin, ref, cur, ref_counts, cur_counts, values, current_complete)
        method = "exact" if ref.sample_complete and current_complete else "sample"
    elif ref.kind == "numeric" and n_values > 5:
        if small and ref.sample_complete and current_values is not None and len(current_values):
            test, threshold = "ks", P_THRESHOLD
            statistic, p_value = st.ks_test(np.asarray(ref.sample, dtype=np.float64), current_values)
            score, dist = 1.0 - p_value, p_value < P_THRESHOLD
            if not current_complete:
                method = "sample"
                note = f"KS on a sample of {len(current_values):,} new rows"
        else:
            test, threshold, p_value = "wasserstein", DISTANCE_THRESHOLD, None
            w = st.wasserstein_binned(ref_counts, cur_counts, ref.width)
            statistic = w / max(ref.std or 0.0, 0.001)
            score, dist, method = statistic, statistic >= DISTANCE_THRESHOLD, "binned"
    elif small and ref.kind != "hashed":
        r, c = _by_value(ref, ref_counts), _by_value(ref, cur_counts)
        threshold = P_THRESHOLD
        if n_values > 2:
            test = "chisquare"
            statistic, p_value = st.chi_square_test(r, c)
        else:
            test = "z"
            statistic, p_value = st.z_test(r, c)
        score, dist = 1.0 - p_value, p_value < P_THRESHOLD
    else:
        test, threshold, p_value = "jensenshannon", DISTANCE_THRESHOLD, None
        statistic = st.jensen_shannon(ref_counts, cur_counts)
        score, dist = statistic, statistic >= DISTANCE_THRESHOLD
        method = "hashed" if ref.kind == "hashed" else "exact"
    psi_value = None
    if cur.non_null and ref.non_null:
        psi_value = st.psi_counts(ref_counts, cur_counts, ordered=ref.kind == "numeric")
    cur_rate = cur.nulls / cur.rows if cur.rows else 0.0
    null_drift = False
    if abs(cur_rate - ref.null_rate) >= NULL_SHIFT and ref.rows and cur.rows:
        _, p = st.z_test({"null": ref.nulls, "value": ref.non_null}, {"null": cur.nulls, "value": cur.non_null})
        null_drift = p < P_THRESHOLD
    result = ColumnDrift(
        column=ref.name, kind=ref.kind, test=test, statistic=statistic, p_value=p_value,
        score=float(score), threshold=threshold, drifted=bool(dist or null_drift), psi=psi_value,
        reference_rows=ref.rows, current_rows=cur.rows, reference_null_rate=ref.null_rate,
        current_null_rate=cur_rate, null_drift=null_drift, unseen_rows=unseen,
        unseen_examples=list(unseen_examples or [])[:5], note=note, method=method,
        distribution_drift=bool(dist),
    )
    return result
