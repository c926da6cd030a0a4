"""Streaming metric accumulators, and the in-memory :func:`compute_metrics`.

Each accumulator keeps a few numbers per batch, never the rows: a confusion matrix and a
log-loss sum for classification, error sums and a running mean and sum of squares (Chan's
parallel form of Welford's update) for regression. Floating sums are compensated (Neumaier)
across batches, so any batch size and any number of shards give the same values as
scikit-learn on all the rows at once, to about 1e-12 relative.

The definitions follow scikit-learn's (the tests compare against it):

- precision, recall and F1 ``macro``/``weighted`` average over the classes that occur in
  the truth or the predictions, and a 0/0 ratio counts as 0 (``zero_division="warn"``);
- balanced accuracy averages recall over the classes that occur in the truth;
- log loss clips each probability to ``[eps, 1 - eps]`` with ``eps`` the float64 machine
  epsilon, and takes the mean of ``-log p(true class)``;
- ROC-AUC is the Mann-Whitney statistic with ties counted one half (equal to the area under
  the ROC curve), one-vs-rest and macro-averaged for multiclass; it is undefined (``None``)
  when a class is missing from the truth;
- R2 is 1 when the truth is constant and predicted exactly, 0 when constant and not
  (``force_finite=True``), undefined below two rows; MAPE divides by ``max(|y|, eps)``.

ROC-AUC needs every score, so the streaming path (:func:`~blase.evaluate.evaluate_live`)
computes it out of core from the predictions file; :func:`binary_roc_auc` is the in-memory
equivalent used by :func:`compute_metrics`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from blase.evaluate._errors import EvaluateError

__all__ = [
    "HEADLINE_METRICS",
    "ClassificationMetrics",
    "RegressionMetrics",
    "binary_roc_auc",
    "classification_baseline",
    "compute_metrics",
    "ovr_roc_auc",
    "primary_metric",
    "probabilities",
]

logger = logging.getLogger(__name__)

EPS64 = float(np.finfo(np.float64).eps)
TASKS = ("binary", "multiclass", "regression")


class _Sum:
    """Neumaier-compensated running sum of floats (one per batch)."""

    __slots__ = ("comp", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.comp = 0.0

    def add(self, x: float) -> None:
        t = self.total + x
        if abs(self.total) >= abs(x):
            self.comp += (self.total - t) + x
        else:
            self.comp += (x - t) + self.total
        self.total = t

    @property
    def value(self) -> float:
        return self.total + self.comp


def probabilities(task: str, scores: np.ndarray) -> np.ndarray:
    """Class probabilities ``[n, K]`` (float64) from a model's logits.

    Parameters
    ----------
    task:
        ``"binary"`` (one logit per row, through a sigmoid; two logits go through a softmax)
        or ``"multiclass"`` (K logits per row, through a softmax).
    scores:
        Logits, ``[n]`` or ``[n, width]``.

    Returns
    -------
    numpy.ndarray
        ``[n, 2]`` for binary (``P(class 0) = 1 - P(class 1)``), ``[n, K]`` for multiclass.
    """
    z = np.asarray(scores, dtype=np.float64)
    if z.ndim == 1:
        z = z[:, None]
    if task == "binary" and z.shape[1] == 1:
        p = np.exp(-np.logaddexp(0.0, -z[:, 0]))  # a sigmoid that never overflows
        return np.column_stack([1.0 - p, p])
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _auc_from_counts(pos: np.ndarray, neg: np.ndarray) -> float | None:
    """Mann-Whitney AUC from per-distinct-score counts of positives and negatives, in
    ascending score order; ties between a positive and a negative count one half."""
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    if n_pos == 0 or n_neg == 0:
        return None
    below = np.cumsum(neg) - neg
    if 2 * n_pos * n_neg < 2**62:  # int64 cannot overflow: 2*sum(pos*below) + sum(pos*neg) <= 2*P*N
        twice = 2 * int(np.dot(pos, below)) + int(np.dot(pos, neg))
    else:  # pragma: no cover - billions of rows in memory
        o = pos.astype(object)
        twice = 2 * int(np.dot(o, below.astype(object))) + int(np.dot(o, neg.astype(object)))
    return twice / (2 * n_pos * n_neg)


def binary_roc_auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """ROC-AUC of ``score`` for the boolean truth ``positive`` (``None`` if one class is absent).

    Equal to ``sklearn.metrics.roc_auc_score(positive, score)``.
    """
    positive = np.asarray(positive, dtype=bool)
    uniq, inv = np.unique(np.asarray(score, dtype=np.float64), return_inverse=True)
    inv = inv.ravel()
    pos = np.bincount(inv[positive], minlength=len(uniq)).astype(np.int64)
    neg = np.bincount(inv[~positive], minlength=len(uniq)).astype(np.int64)
    return _auc_from_counts(pos, neg)


def ovr_roc_auc(codes: np.ndarray, proba: np.ndarray) -> float | None:
    """One-vs-rest ROC-AUC, macro-averaged over the columns of ``proba``.

    Equal to ``roc_auc_score(codes, proba, multi_class="ovr", average="macro")``; ``None``
    when a class has no row in ``codes`` (scikit-learn raises then).
    """
    aucs = []
    for c in range(proba.shape[1]):
        auc = binary_roc_auc(codes == c, proba[:, c])
        if auc is None:
            return None
        aucs.append(auc)
    return float(np.mean(aucs))


class ClassificationMetrics:
    """Streaming classification metrics: feed batches with :meth:`update`, read :meth:`result`.

    Parameters
    ----------
    n_classes:
        Number of classes; truth and predictions are codes ``0..n_classes-1``.
    binary:
        The task is binary: the result adds ``precision``, ``recall`` and ``f1`` of class 1
        (the positive class).

    Attributes
    ----------
    confusion_:
        ``[n_classes, n_classes]`` counts, rows are the truth, columns the prediction.
    n_:
        Rows seen.
    """

    def __init__(self, n_classes: int, *, binary: bool = False) -> None:
        if n_classes < 2:
            raise EvaluateError(
                f"a classifier needs at least two classes, got n_classes={n_classes}",
                hint="check the manifest's label_mapping, or use task='regression'",
            )
        self.n_classes = int(n_classes)
        self.binary = binary
        self.confusion_ = np.zeros((self.n_classes, self.n_classes), dtype=np.int64)
        self.n_ = 0
        self._log_loss = _Sum()
        self._has_proba = True

    def update(
        self,
        y_true: np.ndarray,
        proba: np.ndarray | None = None,
        *,
        y_pred: np.ndarray | None = None,
    ) -> np.ndarray:
        """Add a batch.

        Parameters
        ----------
        y_true:
            Class codes ``[b]``.
        proba:
            Class probabilities ``[b, n_classes]`` (rows summing to 1). The prediction is
            the most probable class (the first on ties).
        y_pred:
            Predicted codes ``[b]``, when there are no probabilities (log loss is then
            undefined).

        Returns
        -------
        numpy.ndarray
            The predicted codes of the batch.
        """
        k = self.n_classes
        y_true = np.asarray(y_true).astype(np.int64, copy=False).ravel()
        if len(y_true) and (y_true.min() < 0 or y_true.max() >= k):
            raise EvaluateError(
                f"class codes must lie in 0..{k - 1}, got {int(y_true.min())}..{int(y_true.max())}",
                hint="the labels do not match the manifest's label_mapping; run prepare again",
            )
        if proba is not None:
            proba = np.asarray(proba, dtype=np.float64)
            if proba.shape != (len(y_true), k):
                raise EvaluateError(
                    f"probabilities have shape {list(proba.shape)}, expected [{len(y_true)}, {k}]",
                    hint="pass one probability per class and row",
                )
            pred = np.argmax(proba, axis=1) if len(y_true) else np.zeros(0, dtype=np.int64)
            p_true = np.clip(proba[np.arange(len(y_true)), y_true], EPS64, 1.0 - EPS64)
            self._log_loss.add(float(-np.log(p_true).sum()))
        elif y_pred is not None:
            pred = np.asarray(y_pred).astype(np.int64, copy=False).ravel()
            if len(pred) != len(y_true):
                raise EvaluateError(f"{len(pred)} predictions for {len(y_true)} rows",
                                    hint="pass one prediction per row")
            if len(pred) and (pred.min() < 0 or pred.max() >= k):
                raise EvaluateError(f"predicted codes must lie in 0..{k - 1}",
                                    hint="map predictions to the manifest's class codes")
            self._has_proba = False
        else:
            raise EvaluateError("update() needs proba or y_pred", hint="pass one of them")
        self.confusion_ += np.bincount(y_true * k + pred, minlength=k * k).reshape(k, k)
        self.n_ += len(y_true)
        return pred

    @classmethod
    def constant(cls, true_counts: np.ndarray, proba: np.ndarray, *, binary: bool = False) -> ClassificationMetrics:
        """The metrics of a model that gives every row the same probabilities ``proba``,
        over rows whose truth has ``true_counts`` rows per class (no rows needed)."""
        true_counts = np.asarray(true_counts, dtype=np.int64)
        proba = np.asarray(proba, dtype=np.float64)
        m = cls(len(proba), binary=binary)
        m.confusion_[:, int(np.argmax(proba))] = true_counts
        m.n_ = int(true_counts.sum())
        p = np.clip(proba, EPS64, 1.0 - EPS64)
        m._log_loss.add(float(-(true_counts * np.log(p)).sum()))
        return m

    def result(self, *, roc_auc: float | None = None) -> dict[str, Any]:
        """The metrics so far.

        Parameters
        ----------
        roc_auc:
            ROC-AUC computed elsewhere (it needs all the scores); ``None`` when undefined.

        Returns
        -------
        dict
            ``n``, ``accuracy``, ``balanced_accuracy``, ``precision``/``recall``/``f1`` with
            ``_macro`` and ``_weighted`` averages (and of the positive class for binary),
            ``log_loss``, ``roc_auc`` and ``confusion_matrix`` (a list of lists).
        """
        if self.n_ == 0:
            raise EvaluateError("no rows to compute metrics on", hint="evaluate on a split with rows")
        cm = self.confusion_
        tp = np.diag(cm).astype(np.float64)
        true_sum = cm.sum(axis=1)
        pred_sum = cm.sum(axis=0)
        present = (true_sum + pred_sum) > 0
        precision = _ratio(tp, pred_sum)
        recall = _ratio(tp, true_sum)
        f1 = _ratio(2.0 * tp, (true_sum + pred_sum).astype(np.float64))
        in_truth = true_sum > 0
        out: dict[str, Any] = {
            "n": int(self.n_),
            "accuracy": float(tp.sum() / self.n_),
            "balanced_accuracy": float(np.mean(tp[in_truth] / true_sum[in_truth])),
        }
        w = true_sum[present]
        for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
            out[f"{name}_macro"] = float(np.mean(values[present]))
            out[f"{name}_weighted"] = float(np.average(values[present], weights=w))
        if self.binary:
            out["precision"] = float(precision[1])
            out["recall"] = float(recall[1])
            out["f1"] = float(f1[1])
        out["log_loss"] = self._log_loss.value / self.n_ if self._has_proba else None
        out["roc_auc"] = None if roc_auc is None else float(roc_auc)
        out["confusion_matrix"] = cm.tolist()
        return out


class RegressionMetrics:
    """Streaming regression metrics (MAE, RMSE, R2, MAPE): feed :meth:`update`, read :meth:`result`.

    Attributes
    ----------
    n_:
        Rows seen.
    mean_:
        Running mean of the truth.
    """

    def __init__(self) -> None:
        self.n_ = 0
        self.mean_ = 0.0
        self._m2 = _Sum()
        self._abs = _Sum()
        self._sq = _Sum()
        self._ape = _Sum()

    def update(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        """Add a batch of targets and predictions (both ``[b]``, cast to float64)."""
        y = np.asarray(y_true, dtype=np.float64).ravel()
        p = np.asarray(y_pred, dtype=np.float64).ravel()
        if y.shape != p.shape:
            raise EvaluateError(f"{len(p)} predictions for {len(y)} rows",
                                hint="pass one prediction per row")
        b = len(y)
        if b == 0:
            return
        err = np.abs(p - y)
        self._abs.add(float(err.sum()))
        self._sq.add(float(np.square(err).sum()))
        self._ape.add(float((err / np.maximum(np.abs(y), EPS64)).sum()))
        # Chan et al.: merge this batch's (n, mean, M2) into the running one
        mean_b = float(y.mean())
        m2_b = float(np.square(y - mean_b).sum())
        n_a = self.n_
        n = n_a + b
        delta = mean_b - self.mean_
        self.mean_ += delta * b / n
        self._m2.add(m2_b + delta * delta * n_a * b / n)
        self.n_ = n

    def result(self) -> dict[str, Any]:
        """``n``, ``mae``, ``rmse``, ``r2`` (``None`` below two rows) and ``mape``."""
        n = self.n_
        if n == 0:
            raise EvaluateError("no rows to compute metrics on", hint="evaluate on a split with rows")
        sse = self._sq.value
        sst = self._m2.value
        if n < 2:
            r2: float | None = None
        elif sst != 0:
            r2 = 1.0 - sse / sst
        else:
            r2 = 1.0 if sse == 0 else 0.0
        return {
            "n": int(n),
            "mae": self._abs.value / n,
            "rmse": math.sqrt(sse / n),
            "r2": r2,
            "mape": self._ape.value / n,
        }


def classification_baseline(true_counts: np.ndarray, prior: np.ndarray, *, binary: bool) -> dict[str, Any]:
    """Metrics of the majority-class model over rows with ``true_counts`` per class.

    It predicts the most frequent class of ``prior`` (the first on ties) with probabilities
    ``prior``, as scikit-learn's ``DummyClassifier`` ("most_frequent" for labels, "prior" for
    probabilities). Its ROC-AUC is 0.5 wherever defined: every row gets the same score.
    """
    true_counts = np.asarray(true_counts, dtype=np.int64)
    m = ClassificationMetrics.constant(true_counts, prior, binary=binary)
    defined = bool(np.all(true_counts > 0))
    return m.result(roc_auc=0.5 if defined else None)


def _codes(values: Any, labels: Sequence[Any] | None, n_classes: int, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if labels is None:
        if arr.dtype.kind not in "iub" and not (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
            raise EvaluateError(
                f"{what} holds {arr.dtype} values but no labels were given",
                hint="pass labels=[class values in column order], or class codes 0..K-1",
            )
        codes = arr.astype(np.int64).ravel()
        if len(codes) and (codes.min() < 0 or codes.max() >= n_classes):
            raise EvaluateError(f"{what} has codes outside 0..{n_classes - 1}",
                                hint="pass labels=[...] to map class values to columns")
        return codes
    index = {v: i for i, v in enumerate(labels)}
    uniq, inv = np.unique(arr.ravel(), return_inverse=True)
    mapped = []
    for u in uniq:
        key = u.item() if hasattr(u, "item") else u
        if key not in index:
            raise EvaluateError(f"{what} holds {key!r}, which is not one of labels={list(labels)}",
                                hint="pass every class value in labels")
        mapped.append(index[key])
    return np.asarray(mapped, dtype=np.int64)[inv.ravel()]


def compute_metrics(
    task: str,
    y_true: Any,
    y_pred_or_scores: Any,
    *,
    labels: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Metrics of predictions held in memory (the same definitions as :func:`evaluate_live`).

    Parameters
    ----------
    task:
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    y_true:
        Targets ``[n]``: numbers for regression; for classification the class values in
        ``labels``, or class codes ``0..K-1`` when ``labels`` is None.
    y_pred_or_scores:
        Regression: predictions ``[n]``. Classification: probabilities ``[n, K]`` (binary
        also takes ``[n]``, the probability of the positive class, the second label), or
        hard predictions ``[n]`` (class values or codes; log loss and ROC-AUC are then
        ``None``).
    labels:
        Class values in code (column) order; default ``0..K-1``.

    Returns
    -------
    dict
        As :meth:`ClassificationMetrics.result` or :meth:`RegressionMetrics.result`.

    Raises
    ------
    EvaluateError
        For an unknown task, mismatched lengths or shapes, or an unknown class value.
    """
    if task not in TASKS:
        raise EvaluateError(f"unknown task {task!r}", hint=f"use one of: {', '.join(TASKS)}")
    scores = np.asarray(y_pred_or_scores)
    if task == "regression":
        m = RegressionMetrics()
        m.update(np.asarray(y_true, dtype=np.float64), scores)
        return m.result()
    binary = task == "binary"
    # 1-d scores are hard predictions, except floats for binary (P(positive class))
    hard = scores.ndim == 1 and (not binary or scores.dtype.kind != "f")
    if hard:
        n_classes = len(labels) if labels is not None else (2 if binary else int(
            max(np.max(scores, initial=0), np.max(np.asarray(y_true), initial=0)) + 1))
        cm = ClassificationMetrics(n_classes, binary=binary)
        truth = _codes(y_true, labels, n_classes, "y_true")
        cm.update(truth, y_pred=_codes(scores, labels, n_classes, "y_pred"))
        return cm.result()
    proba = scores.astype(np.float64)
    if proba.ndim == 1:
        proba = np.column_stack([1.0 - proba, proba])
    elif proba.ndim == 2 and proba.shape[1] == 1 and binary:
        proba = np.column_stack([1.0 - proba[:, 0], proba[:, 0]])
    if proba.ndim != 2 or (binary and proba.shape[1] != 2):
        raise EvaluateError(f"scores of shape {list(scores.shape)} do not fit task {task!r}",
                            hint="pass [n, K] probabilities ([n] or [n, 2] for binary)")
    if not _all_probabilities(proba):
        raise EvaluateError("scores are not probabilities (finite values in [0, 1])",
                            hint="pass probabilities, e.g. blase.evaluate's probabilities(task, logits)")
    n_classes = proba.shape[1]
    if labels is not None and len(labels) != n_classes:
        raise EvaluateError(f"{len(labels)} labels for {n_classes} probability columns",
                            hint="pass one label per column")
    truth = _codes(y_true, labels, n_classes, "y_true")
    if len(truth) != len(proba):
        raise EvaluateError(f"{len(proba)} predictions for {len(truth)} rows", hint="pass one per row")
    cm = ClassificationMetrics(n_classes, binary=binary)
    cm.update(truth, proba)
    auc = binary_roc_auc(truth == 1, proba[:, 1]) if binary else ovr_roc_auc(truth, proba)
    if auc is None:
        logger.warning("ROC-AUC is undefined: a class has no row in y_true")
    return cm.result(roc_auc=auc)


def _all_probabilities(a: np.ndarray) -> bool:
    return a.dtype.kind == "f" and bool(np.all(np.isfinite(a))) and bool(np.all((a >= 0) & (a <= 1)))


#: The metrics a summary shows first, in this order (classification, then regression).
HEADLINE_METRICS: tuple[str, ...] = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss", "rmse",
                                     "mae", "r2")


def primary_metric(task: str | None) -> tuple[str, bool]:
    """The metric that decides (``accuracy``, or ``rmse`` for regression) and whether higher is better."""
    return ("rmse", False) if task == "regression" else ("accuracy", True)
