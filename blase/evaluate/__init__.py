"""Evaluate: streaming metrics of a model over prepared shards, with predictions and plots.

:func:`evaluate_live` runs a model (a torch ``nn.Module`` or any callable on float32 arrays)
over a split's shards a batch at a time, and reports classification metrics (accuracy,
balanced accuracy, precision/recall/F1, log loss, ROC-AUC, confusion matrix) or regression
metrics (MAE, RMSE, R2, MAPE) next to a trivial baseline's, writing the predictions as
Parquet and the plots as PNG. Every value equals scikit-learn's on the same predictions.
:func:`compute_metrics` gives the same metrics for predictions held in memory;
:class:`ClassificationMetrics` and :class:`RegressionMetrics` are the streaming accumulators
behind both.

Importing this package is cheap: torch, DuckDB, pyarrow and matplotlib load on first use.
"""

from __future__ import annotations

from blase.evaluate._errors import EvaluateError
from blase.evaluate._live import evaluate_live
from blase.evaluate._metrics import (
    HEADLINE_METRICS,
    ClassificationMetrics,
    RegressionMetrics,
    binary_roc_auc,
    compute_metrics,
    ovr_roc_auc,
    primary_metric,
    probabilities,
)

__all__ = [
    "HEADLINE_METRICS",
    "ClassificationMetrics",
    "EvaluateError",
    "RegressionMetrics",
    "binary_roc_auc",
    "compute_metrics",
    "evaluate_live",
    "ovr_roc_auc",
    "primary_metric",
    "probabilities",
]
