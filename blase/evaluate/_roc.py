"""ROC-AUC and ROC curves out of core, from the predictions Parquet file, with DuckDB.

ROC-AUC needs the ranking of every score, which a streaming pass cannot keep. DuckDB groups
the rows by distinct score (spilling to disk under the memory budget), counting positives
and negatives; a running sum of negatives below each score then gives the Mann-Whitney
statistic with ties counted one half::

    AUC = sum_s pos_s * (neg_below_s + neg_s / 2) / (P * N)

which is the area under the ROC curve, as ``sklearn.metrics.roc_auc_score`` computes it. The
sum is exact (HUGEINT); only the final division rounds. The same grouped table gives the ROC
curve's vertices, thinned to at most ``max_points`` for the plot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from blase._duck import sql_ident, sql_quote

__all__ = ["RocCurve", "roc_from_parquet"]

MAX_POINTS = 1000


@dataclass
class RocCurve:
    """One ROC curve: false and true positive rates from (0, 0) to (1, 1), and its AUC."""

    label: str
    fpr: np.ndarray
    tpr: np.ndarray
    auc: float | None
    positives: int
    negatives: int


def roc_from_parquet(
    con: Any,
    path: str | Path,
    score_column: str,
    positive_value: Any,
    *,
    label: str,
    max_points: int = MAX_POINTS,
) -> RocCurve:
    """ROC-AUC and curve of ``score_column`` for rows whose ``truth`` equals ``positive_value``.

    Parameters
    ----------
    con:
        A DuckDB connection (with the step's memory limit and spill folder).
    path:
        The predictions Parquet file (columns ``truth`` and ``score_column``).
    score_column:
        The score ranked, e.g. ``prob_1``.
    positive_value:
        The class value that counts as positive.
    label:
        The curve's name (the class).
    max_points:
        Most curve vertices returned (the curve's own vertices, evenly thinned).

    Returns
    -------
    RocCurve
        ``auc`` is ``None`` when the truth has no positive or no negative row.
    """
    table = "_roc_groups"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS "
        f"SELECT score, count(*) FILTER (WHERE pos) AS p, count(*) FILTER (WHERE NOT pos) AS q "
        f"FROM (SELECT {sql_ident(score_column)} AS score, truth = $1 AS pos "
        f"FROM read_parquet({sql_quote(str(path))})) GROUP BY score",
        [positive_value],
    )
    try:
        n_pos, n_neg, twice = con.execute(
            f"SELECT sum(p)::BIGINT, sum(q)::BIGINT, "
            f"sum(2::HUGEINT * p * coalesce(below, 0) + p::HUGEINT * q) FROM ("
            f"SELECT p, q, sum(q) OVER (ORDER BY score ROWS BETWEEN UNBOUNDED PRECEDING "
            f"AND 1 PRECEDING) AS below FROM {table})"
        ).fetchone()
        n_pos, n_neg = int(n_pos or 0), int(n_neg or 0)
        auc = int(twice) / (2 * n_pos * n_neg) if n_pos and n_neg else None
        distinct = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        step = max(1, math.ceil(distinct / max(1, max_points - 1)))
        rows = con.execute(
            f"SELECT fp, tp FROM (SELECT sum(q) OVER w AS fp, sum(p) OVER w AS tp, "
            f"row_number() OVER w AS rn FROM {table} "
            f"WINDOW w AS (ORDER BY score DESC ROWS UNBOUNDED PRECEDING)) "
            f"WHERE rn % {step} = 0 OR rn = {distinct} ORDER BY rn"
        ).fetchall()
    finally:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    fp = np.array([0.0] + [float(r[0]) for r in rows])
    tp = np.array([0.0] + [float(r[1]) for r in rows])
    fpr = fp / n_neg if n_neg else np.zeros_like(fp)
    tpr = tp / n_pos if n_pos else np.zeros_like(tp)
    return RocCurve(label=label, fpr=fpr, tpr=tpr, auc=auc, positives=n_pos, negatives=n_neg)
