"""Evaluation plots as PNG files (matplotlib, Agg, imported on first use).

Figures are built with ``matplotlib.figure.Figure`` rather than ``pyplot``: no global state,
no GUI backend, safe from any thread. Each file is written to a temporary name and renamed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blase._fs import atomic_path

if TYPE_CHECKING:
    from blase.evaluate._roc import RocCurve

__all__ = ["plot_confusion_matrix", "plot_predicted_vs_true", "plot_residuals", "plot_roc"]

logger = logging.getLogger(__name__)

#: Classes above which the confusion matrix drops its per-cell numbers.
ANNOTATE_MAX = 20
#: Curves drawn at most on a one-vs-rest ROC plot (the legend stays readable).
ROC_MAX_CURVES = 12


def _figure(width: float = 6.0, height: float = 5.0) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)  # the Agg canvas, without touching pyplot's global backend
    return fig


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    logger.debug("wrote %s", path)
    return path


def plot_confusion_matrix(cm: np.ndarray, classes: Sequence[str], path: Path, *, title: str) -> Path:
    """Counts per (true, predicted) class, coloured by the share of each true class."""
    cm = np.asarray(cm)
    k = len(classes)
    size = min(4.0 + 0.4 * k, 16.0)
    fig = _figure(size + 1.0, size)
    ax = fig.add_subplot()
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="share of the true class")
    ax.set_xticks(range(k), labels=list(classes), rotation=45 if k > 6 else 0, ha="right" if k > 6 else "center")
    ax.set_yticks(range(k), labels=list(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if k <= ANNOTATE_MAX:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{int(cm[i, j]):,}", ha="center", va="center",
                        color="white" if share[i, j] > 0.5 else "black", fontsize=8)
    return _save(fig, path)


def plot_roc(curves: Sequence[RocCurve], path: Path, *, title: str) -> Path:
    """ROC curve(s) with their AUC in the legend, and the chance diagonal."""
    fig = _figure()
    ax = fig.add_subplot()
    for curve in list(curves)[:ROC_MAX_CURVES]:
        auc = "undefined" if curve.auc is None else f"{curve.auc:.3f}"
        ax.plot(curve.fpr, curve.tpr, drawstyle="default", label=f"{curve.label} (AUC {auc})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    if len(curves) > ROC_MAX_CURVES:
        ax.text(0.98, 0.02, f"first {ROC_MAX_CURVES} of {len(curves)} classes",
                ha="right", va="bottom", transform=ax.transAxes, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_predicted_vs_true(truth: np.ndarray, pred: np.ndarray, path: Path, *, title: str) -> Path:
    """Predicted against true values (a sample of rows), with the y = x line."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.scatter(truth, pred, s=6, alpha=0.4, linewidths=0)
    if len(truth):
        lo = float(min(np.min(truth), np.min(pred)))
        hi = float(max(np.max(truth), np.max(pred)))
        ax.plot([lo, hi], [lo, hi], linestyle="--", color="grey", linewidth=1)
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title(title)
    return _save(fig, path)


def plot_residuals(truth: np.ndarray, pred: np.ndarray, path: Path, *, title: str) -> Path:
    """Residuals (true - predicted) against the prediction, and their histogram."""
    fig = _figure(10.0, 4.5)
    left, right = fig.subplots(1, 2)
    resid = np.asarray(truth) - np.asarray(pred)
    left.scatter(pred, resid, s=6, alpha=0.4, linewidths=0)
    left.axhline(0.0, linestyle="--", color="grey", linewidth=1)
    left.set_xlabel("predicted")
    left.set_ylabel("residual (true - predicted)")
    right.hist(resid, bins=50)
    right.set_xlabel("residual")
    right.set_ylabel("rows")
    fig.suptitle(title)
    return _save(fig, path)
