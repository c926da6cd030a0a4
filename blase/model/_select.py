"""How ``train.model: auto`` picks among its candidates and their average.

The input is each candidate's out-of-fold (or val) scores, one array per partition of the
rows into folds (``cv_repeats`` of them on small data), rows in the same order. The rule:

1. Each option is scored by its mean loss over the rows, each row's loss first averaged over
   the repeats: the squared error (regression), or for classification the log loss or the 0/1
   error (``metric``), the other breaking ties. The options are the candidates, simplest first,
   then their weighted average.
2. The average's weights come from greedy ensemble selection (Caruana et al., 2004) on the
   scores of every repeat at once; with ``bags`` they are the mean of the weights selected on
   that many bootstrap resamples of the rows (Caruana et al.'s bagged selection), so a handful
   of rows cannot swing them.
3. The lowest mean loss among the candidates wins; the average is kept only when it beats
   that candidate by more than one standard error of their paired per-row difference: its
   weights were chosen on the very rows that score it, so a smaller margin is mostly that
   choice fitting noise.
4. With ``simpler`` (``train.options.prefer_simpler``), the one-standard-error rule also
   between candidates: an earlier (simpler) option whose per-row losses are within one
   standard error of the best's is kept instead (the earliest such). It keeps the same kind
   more often across splits of a few hundred rows, but on those rows a log loss's standard
   error is wide (a few confident mistakes), so it also keeps a simpler kind with nearly twice
   the loss of the best: on 8 splits each of 7 small real data sets it scored lower on wine
   (0.960 against 0.978) and iris higher (0.980 against 0.973); see docs/benchmarks.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from blase.model._ensemble import blend_scores, nll, probabilities, select_weights

__all__ = ["Choice", "choose", "row_losses"]

ENSEMBLE = "ensemble"


@dataclass
class Choice:
    """What :func:`choose` kept: ``weights`` (one candidate at 1.0, or the average's), the rule
    that decided, and each option's scores (``loss``, ``se`` of its difference from the best
    option, plus the readable metrics of :func:`summary`; the average's ``weights``, kept or
    not)."""

    weights: dict[str, float]
    reason: str
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def chosen(self) -> str:
        return next(iter(self.weights)) if len(self.weights) == 1 else ENSEMBLE


def row_losses(z: np.ndarray, y: np.ndarray, task: str) -> dict[str, np.ndarray]:
    """Per-row losses of scores ``z``: squared error (``sq``, regression), or 0/1 error
    (``err``) and log loss (``nll``) for classification."""
    if task == "regression":
        return {"sq": (np.asarray(z).reshape(len(y)) - np.asarray(y, dtype=np.float64)) ** 2}
    p = probabilities(z, task)
    if task == "binary":
        err = ((p > 0.5) != (np.asarray(y, dtype=np.float64) > 0.5)).astype(np.float64)
    else:
        err = (p.argmax(axis=1) != y).astype(np.float64)
    return {"err": err, "nll": nll(p, y, task)}


def _mean_losses(repeats: list[np.ndarray], y: np.ndarray, task: str) -> dict[str, np.ndarray]:
    """Each row's losses averaged over the repeats."""
    parts = [row_losses(z, y, task) for z in repeats]
    return {k: np.mean([p[k] for p in parts], axis=0) for k in parts[0]}


def summary(losses: dict[str, np.ndarray], prefix: str) -> dict[str, float]:
    """The readable scores of per-row losses: ``<prefix>_mse``, or ``_accuracy`` and ``_logloss``."""
    if "sq" in losses:
        return {f"{prefix}_mse": float(losses["sq"].mean())}
    return {f"{prefix}_accuracy": float(1.0 - losses["err"].mean()), f"{prefix}_logloss": float(losses["nll"].mean())}


def _keys(task: str, metric: str) -> tuple[str, str | None]:
    """The loss the rule compares and the one that breaks its ties."""
    if task == "regression":
        return "sq", None
    return ("nll", "err") if metric == "logloss" else ("err", "nll")


def _weights(oof: dict[str, list[np.ndarray]], y: np.ndarray, task: str, bags: int, seed: int) -> dict[str, float]:
    """Greedy selection on every repeat's rows at once; with ``bags``, the mean of the weights
    selected on that many bootstrap resamples of the rows (the same rows in every repeat)."""
    repeats = len(next(iter(oof.values())))
    stacked = {n: np.concatenate(v) for n, v in oof.items()}
    tiled = np.concatenate([y] * repeats)
    if bags <= 0:
        return select_weights(stacked, tiled, task)
    rng = np.random.default_rng(seed)
    n = len(y)
    total = dict.fromkeys(oof, 0.0)
    for _ in range(bags):
        rows = rng.integers(0, n, n)
        at = np.concatenate([rows + r * n for r in range(repeats)])
        for name, w in select_weights({k: v[at] for k, v in stacked.items()}, tiled[at], task).items():
            total[name] += w / bags
    return {k: round(v, 4) for k, v in total.items() if v > 0}


def _blend_losses(oof: dict[str, list[np.ndarray]], weights: dict[str, float], y: np.ndarray,
                  task: str) -> dict[str, np.ndarray]:
    names = list(weights)
    w = np.array([weights[n] for n in names])
    repeats = len(oof[names[0]])
    return _mean_losses([blend_scores([oof[n][r] for n in names], w, task) for r in range(repeats)], y, task)


def choose(oof: dict[str, list[np.ndarray]], y: np.ndarray, task: str, *, order: list[str], metric: str = "logloss",
           ensemble: bool = True, one_se_blend: bool = True, simpler: bool = False, bags: int = 20,
           seed: int = 0, prefix: str = "cv", margin: float = 1.0) -> Choice:
    """Pick a candidate or their average from out-of-fold scores (see the module's docstring).

    ``oof`` maps each candidate to its scores, one array per repeat of the folds; ``order``
    lists the candidates simplest first. ``one_se_blend=False`` keeps the average whenever its
    loss is lower than the best candidate's (the rule before repeats and bagging); ``simpler``
    applies the one-standard-error rule between candidates too, with ``margin`` standard errors
    (1: the rule; ``bench/auto_choice.py`` replays others)."""
    key, tie = _keys(task, metric)
    names = [n for n in order if n in oof]
    losses = {n: _mean_losses(oof[n], y, task) for n in names}
    if ensemble and len(names) > 1:
        weights = _weights({n: oof[n] for n in names}, y, task, bags, seed)
        if len(weights) > 1:
            losses[ENSEMBLE] = _blend_losses(oof, weights, y, task)
    else:
        weights = {}

    def rank(name: str) -> tuple[float, float]:
        values = [float(losses[name][k].mean()) if k is not None else 0.0 for k in (key, tie)]
        return values[0] if math.isfinite(values[0]) else math.inf, values[1] if math.isfinite(values[1]) else math.inf

    options = list(losses)  # the candidates simplest first, then the average
    best = min(options, key=lambda n: (rank(n), options.index(n)))
    scores = {}
    for name in options:
        diff = losses[name][key] - losses[best][key]
        se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else 0.0
        scores[name] = {**summary(losses[name], prefix), "loss": float(losses[name][key].mean()),
                        "se": se if math.isfinite(se) else math.inf}
    if ENSEMBLE in scores:
        scores[ENSEMBLE]["weights"] = weights
    measure = {"sq": "squared error", "nll": "log loss", "err": "error rate"}[key]
    singles = [n for n in options if n != ENSEMBLE]
    best_single = min(singles, key=lambda n: (rank(n), singles.index(n)))
    if best == ENSEMBLE and not one_se_blend:
        return Choice(weights, f"the average's {measure} is lower than {best_single}'s", scores)
    if not one_se_blend:
        best, options = best_single, singles
    if not simpler:  # the lowest single; the average only when it beats it by more than one SE
        if best == ENSEMBLE:
            se = scores[best_single]["se"]
            if losses[best_single][key].mean() - losses[best][key].mean() > se:
                return Choice(weights, f"the average's {measure} is lower than {best_single}'s by more than one "
                                       f"standard error ({se:.4g})", scores)
            return Choice({best_single: 1.0}, f"the lowest {measure} (the average's is lower by less than one "
                                              f"standard error, {se:.4g})", scores)
        return Choice({best_single: 1.0}, f"the lowest {measure}", scores)
    for name in options[: options.index(best)]:
        diff = float(losses[name][key].mean() - losses[best][key].mean())
        if math.isfinite(diff) and diff <= margin * scores[name]["se"]:
            why = (f"its {measure} is within one standard error ({scores[name]['se']:.4g}) of the best "
                   f"({_label(best, weights)}), and it is simpler")
            return Choice({name: 1.0}, why, scores)
    if best == ENSEMBLE:
        return Choice(weights, f"the average's {measure} is lower than {best_single}'s by more than one "
                               f"standard error ({scores[best_single]['se']:.4g})", scores)
    return Choice({best: 1.0}, f"the lowest {measure}", scores)


def _label(name: str, weights: dict[str, float]) -> str:
    if name != ENSEMBLE:
        return name
    return "the average " + " + ".join(f"{w:.2f} {n}" for n, w in weights.items())
