"""``train.model: auto``: fit a few kinds, keep the one that scores best, or their average.

Which model class suits a data set is rarely known in advance: a nearly linear target wants
a penalised linear model, interactions want trees or an MLP. ``auto`` (what ``blase schema
--write`` puts in a new blase.yaml) fits each of ``candidates`` (by default ``glm``, ``mlp``
and ``lightgbm``) on the train split, scores each on the val split (regression: the mean
squared error; classification: accuracy, ties broken by the log loss), and keeps the best,
unless a candidate earlier in the list (simpler) is within one standard error of it on the
paired per-row val losses (the one-standard-error rule): on a small val split the differences
between models are mostly noise, and the simpler model generalises better. When train and val
hold at most ``cv_rows`` rows (10,000), a val split of a few dozen rows ranks models mostly by
chance, so the candidates are scored by ``cv_folds``-fold cross-validation on train + val
instead (stratified for classification, seeded): every row is scored once, by a model that did
not train on it, and the same rule picks on those per-row losses. With ``train.refit``
(``auto``: at most 50,000 rows) the winner is then fitted again as its own kind would be
(its refit on train + val included); otherwise the candidate's own fit is kept.

Before keeping one candidate, ``auto`` tries their average (``ensemble``, on by default):
greedy ensemble selection with replacement (:func:`~blase.model._ensemble.select_weights`) on
the candidates' out-of-fold (or val) scores, per row, as they were compared. When the average
mixes two or more candidates and its loss is lower than the best candidate's, ``auto`` keeps
an :class:`~blase.model._ensemble.EnsembleModel` of them, each member fitted again as its own
kind would be. (The weights are chosen on the rows that also judge the blend, so its score is
a little optimistic; the benchmark scores it on test rows no model saw.)

Above ``compare_rows`` training rows, comparing would multiply the training time of a large
data set, so ``auto`` trains ``large`` alone (``mlp`` by default: it streams the shards under
the memory budget, where LightGBM's binned copy of the data would not fit).

``model.json`` names the kind that won (or ``ensemble``), so predict, monitor and deploy load it as if it had
been named in blase.yaml; the train step's record keeps every candidate's val scores
(``blase inspect`` shows them) and the run logs a ``model_selection`` event.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from blase.model._contract import FitContext, FitReport, ModelKind
from blase.model._data import TrainingData
from blase.model._ensemble import (
    EnsembleMember,
    EnsembleModel,
    EnsembleOptions,
    blend_scores,
    nll,
    probabilities,
    select_weights,
)
from blase.model._errors import TrainError
from blase.model._fit import HISTORY_JSON
from blase.model._folds import fold_ids
from blase.model._registry import model_kind, model_plugin
from blase.model._spec import ModelSpec

__all__ = ["AutoModel", "AutoOptions"]


class AutoOptions(BaseModel):
    """``train.options`` of ``train.model: auto``."""

    model_config = ConfigDict(extra="forbid")

    candidates: list[str] = Field(
        default_factory=lambda: ["glm", "mlp", "lightgbm"], min_length=1,
        description="the kinds to compare, simplest first (a tie keeps the earlier one)")
    compare_rows: int = Field(
        default=200_000, ge=1, description="compare the candidates when train and val hold at most "
        "this many rows; above it, train `large` alone")
    large: str = Field(default="mlp", description="the kind trained alone above compare_rows")
    cv_folds: int = Field(
        default=5, ge=0, description="score the candidates by this many folds of cross-validation on "
        "train + val when they hold at most cv_rows rows (0: score on the val split; else at least 3)")
    cv_rows: int = Field(
        default=10_000, ge=0, description="the most rows (train + val) for which cross-validation "
        "replaces the val split")
    ensemble: bool = Field(
        default=True, description="keep a weighted average of the candidates (greedy ensemble selection on "
        "their cross-validation or val scores) when it scores better than the best one alone")

    @field_validator("cv_folds")
    @classmethod
    def _three_folds(cls, value: int) -> int:
        if value in (1, 2):
            raise ValueError("0 (score on the val split) or at least 3 folds (one scores, one tunes, the rest train)")
        return value

    @field_validator("candidates")
    @classmethod
    def _no_auto(cls, value: list[str]) -> list[str]:
        if "auto" in value:
            raise ValueError("'auto' cannot be one of its own candidates")
        if len(set(value)) != len(value):
            raise ValueError("each candidate once")
        return value


class AutoModel(ModelKind):
    """The best of a few kinds on the val split; options: :class:`AutoOptions`."""

    name = "auto"
    config_model = AutoOptions

    def __init__(self, options: AutoOptions | None = None) -> None:
        super().__init__(options if options is not None else AutoOptions())

    def fit(self, data: TrainingData, ctx: FitContext) -> AutoModel:
        o: AutoOptions = self.options  # type: ignore[assignment]
        rows = data.rows("train") + data.rows("val")
        if rows > o.compare_rows or not data.rows("val"):
            why = (f"train and val hold {rows:,} rows (> compare_rows {o.compare_rows:,})" if data.rows("val")
                   else "no val split to compare candidates on")
            self.winner_ = self._kind(o.large, ctx)
            self.winner_.fit(data, ctx)
            self._finish(o.large, why, {}, [], self.winner_.report_)
            return self

        scratch = Path(ctx.tmp_dir or ctx.out_dir) / "candidates"
        quiet = ctx.train.model_copy(update={"refit": False}) if ctx.train is not None else None
        folds = _folds(data, o, ctx.seed, scratch / "folds")
        scored_on = (f"{len(folds)}-fold cross-validation on train + val ({rows:,} rows)" if folds
                     else f"the val split ({data.rows('val'):,} rows)")
        results: dict[str, dict[str, Any]] = {}
        losses: dict[str, dict[str, np.ndarray]] = {}
        scores: dict[str, np.ndarray] = {}  # each candidate's out-of-fold (or val) scores, in row order
        fitted: dict[str, ModelKind] = {}
        skipped: list[str] = []
        for name in o.candidates:
            plugin = model_plugin(name, root=ctx.project_root, entries=ctx.plugins)  # a misspelt name fails here
            missing = plugin.missing()
            if missing:  # a candidate whose library is not installed is left out, and said so
                fix = f"pip install 'blase[{plugin.extra}]'" if plugin.extra else f"pip install {' '.join(missing)}"
                skipped.append(f"{name}: needs {', '.join(missing)} ({fix})")
                continue
            start = time.perf_counter()
            parts = []
            for i, (fold, rows_of) in enumerate(folds or [(data, None)]):
                folder = scratch / name / (f"fold{i + 1}" if folds else "")
                folder.mkdir(parents=True, exist_ok=True)
                sub = dataclasses.replace(ctx, out_dir=folder, train=quiet, track=False, init=None,
                                          resume=False, on_epoch_end=None)
                kind = self._kind(name, ctx)
                kind.fit(fold, sub)
                z, y = _val_scores(kind, fold, "test" if folds else "val")
                parts.append(({"scores": z, **_losses(z, y, data.task)}, rows_of))
            fitted[name] = kind
            losses[name] = _in_row_order(parts, rows)
            scores[name] = losses[name].pop("scores")
            prefix = "cv" if folds else "val"
            results[name] = {**_summary(losses[name], prefix), "seconds": round(time.perf_counter() - start, 3)}
        if not losses:
            raise TrainError("train.model auto: no candidate could be fitted (" + "; ".join(skipped) + ")",
                             hint="install a candidate's extra, or name the candidates in train.options.candidates")
        best, chosen_by = _choose(losses, o.candidates)
        refit = ctx.refits(data)
        blend = _blend(scores, losses, _labels(data, bool(folds)), data.task, best) if o.ensemble else None
        if blend is not None:
            weights, blend_losses = blend
            prefix = "cv" if folds else "val"
            results["ensemble"] = {**_summary(blend_losses, prefix), "weights": weights}
            members = [EnsembleMember(kind=n, weight=w) for n, w in weights.items()]
            ensemble = EnsembleModel(EnsembleOptions(members=members))
            if refit or folds:
                self.winner_ = ensemble.fit(data, dataclasses.replace(ctx, init=None, resume=False))
            else:
                self.winner_ = ensemble.of_fitted([fitted[n] for n in weights], data)
            mix = " + ".join(f"{w:.2f} {n}" for n, w in weights.items())
            why = (f"the average {mix} scored better than {best} alone by {scored_on}"
                   + (" (each then refit on train + val)" if refit else ""))
            self._finish("ensemble", why, results, skipped, self.winner_.report_)
            _log_selection(ctx.track, "ensemble", why, results)
            return self
        if refit or folds:
            # fitted again on the real split as its own kind would be (then on train + val when
            # train.refit allows): the candidates were fitted quietly, or on folds
            self.winner_ = self._kind(best, ctx)
            self.winner_.fit(data, dataclasses.replace(ctx, init=None, resume=False))
        else:
            self.winner_ = fitted[best]
        why = (f"{chosen_by} of {', '.join(losses)}, scored by {scored_on}"
               + (" (then refit on train + val)" if refit else ""))
        self._finish(best, why, results, skipped, self.winner_.report_)
        _log_selection(ctx.track, best, why, results)
        return self

    def _kind(self, name: str, ctx: FitContext) -> ModelKind:
        if name == "auto":
            raise TrainError("train.options.large cannot be 'auto'", hint="name a model kind, e.g. mlp")
        return model_kind(name, {}, root=ctx.project_root, entries=ctx.plugins)

    def _finish(self, name: str, why: str, results: dict[str, dict[str, Any]], skipped: list[str],
                report: FitReport) -> None:
        details = {**report.details, "auto": {"chosen": name, "reason": why, "candidates": results,
                                              "skipped": skipped}}
        left_out = [f"train.model auto left out {s}" for s in skipped]
        self.report_ = FitReport(details=details, history=report.history, warnings=[*report.warnings, *left_out],
                                 inputs=dict(report.inputs))
        self.chosen_ = name

    def save(self, folder: Path) -> None:
        self.winner_.save(folder)
        # a torch winner wrote its epochs beside its weights: keep them with the model
        source = getattr(self.winner_, "folder_", None)
        if self.report_.history is None and source is not None:
            src, dst = Path(source) / HISTORY_JSON, Path(folder) / HISTORY_JSON
            if src.is_file() and src.resolve() != dst.resolve():
                shutil.copyfile(src, dst)

    @classmethod
    def load(cls, folder: Path, spec: ModelSpec) -> ModelKind:
        # model.json names the kind that won, never "auto": this is reached only by mistake
        raise TrainError(f"{folder}/model.json names model 'auto', which is never saved as such",
                         hint="train again (`blase run --from train`)")

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.winner_.predict(x)

    def export_onnx(self, path: Path, n_features: int) -> None:
        self.winner_.export_onnx(path, n_features)

    def describe(self, data: TrainingData) -> ModelSpec:
        return self.winner_.describe(data)

    def versions(self) -> dict[str, str]:
        return self.winner_.versions()

    def code(self, root: Path | None) -> dict[str, Any]:
        return {}


def _log_selection(track: Any, chosen: str, why: str, results: dict[str, dict[str, Any]]) -> None:
    """A ``model_selection`` event and each candidate's val scores (``auto.<kind>.<metric>``)."""
    if track is None:
        from blase.track import active_run

        track = active_run()
    if track is None or track is False or not getattr(track, "active", True):
        return
    track.log_event("model_selection", chosen=chosen, reason=why, candidates=results)
    track.log_metrics({f"auto.{name}.{k}": v for name, r in results.items() for k, v in r.items()
                       if k != "seconds" and isinstance(v, (int, float)) and math.isfinite(v)})


def _val_scores(kind: ModelKind, data: TrainingData, split: str = "val") -> tuple[np.ndarray, np.ndarray]:
    """The candidate's scores on ``split`` and the split's labels."""
    z, y = [], []
    for x, labels in data.chunks(split):
        z.append(np.asarray(kind.predict(x), dtype=np.float64).reshape(len(labels), -1))
        y.append(np.asarray(labels))
    scores = np.concatenate(z)
    return (scores[:, 0] if scores.shape[1] == 1 else scores), np.concatenate(y)


def _losses(z: np.ndarray, y: np.ndarray, task: str) -> dict[str, np.ndarray]:
    """Per-row losses of scores ``z``: squared error (regression), or 0/1 error and log loss
    (classification)."""
    if task == "regression":
        return {"sq": (z.reshape(len(y)) - np.asarray(y, dtype=np.float64)) ** 2}
    p = probabilities(z, task)
    if task == "binary":
        err = ((p > 0.5) != (np.asarray(y, dtype=np.float64) > 0.5)).astype(np.float64)
    else:
        err = (p.argmax(axis=1) != y).astype(np.float64)
    return {"err": err, "nll": nll(p, y, task)}


def _labels(data: TrainingData, folds: bool) -> np.ndarray:
    """The labels the candidates were scored on: train + val's (cross-validation), or val's."""
    if not folds:
        return np.concatenate([np.asarray(y) for _, y in data.chunks("val")])
    return np.concatenate([data.matrix("train")[1], data.matrix("val")[1]])


def _blend(scores: dict[str, np.ndarray], losses: dict[str, dict[str, np.ndarray]], y: np.ndarray, task: str,
           best: str) -> tuple[dict[str, float], dict[str, np.ndarray]] | None:
    """The weights of greedy ensemble selection on the candidates' scores, and the blend's
    per-row losses, when the blend mixes two or more candidates and its loss (squared error;
    or 0/1 error, then log loss) is lower than ``best``'s; else None."""
    if len(scores) < 2:
        return None
    weights = select_weights(scores, y, task)
    if len(weights) < 2:
        return None
    mixed = _losses(blend_scores([scores[n] for n in weights], np.array(list(weights.values())), task), y, task)
    key = "sq" if task == "regression" else "err"

    def rank(values: dict[str, np.ndarray]) -> tuple[float, float]:
        return float(values[key].mean()), float(values["nll"].mean()) if key == "err" else 0.0

    return (weights, mixed) if rank(mixed) < rank(losses[best]) else None


def _summary(losses: dict[str, np.ndarray], prefix: str = "val") -> dict[str, float]:
    if "sq" in losses:
        return {f"{prefix}_mse": float(losses["sq"].mean())}
    return {f"{prefix}_accuracy": float(1.0 - losses["err"].mean()),
            f"{prefix}_logloss": float(losses["nll"].mean())}


def _in_row_order(parts: list[tuple[dict[str, np.ndarray], np.ndarray | None]], rows: int) -> dict[str, np.ndarray]:
    """One candidate's per-row losses: the val split's as they are, or each fold's put back
    at its rows' places in train + val (so candidates are compared row by row)."""
    if parts[0][1] is None:
        return parts[0][0]
    out = {k: np.empty((rows, *v.shape[1:])) for k, v in parts[0][0].items()}
    for losses, at in parts:
        for k, v in losses.items():
            out[k][at] = v
    return out


def _folds(data: TrainingData, o: AutoOptions, seed: int, folder: Path) -> list[tuple[TrainingData, np.ndarray]]:
    """``cv_folds`` folds of train + val as prepared folders of their own, with each fold's
    row positions in train + val; none when the data is too large for this or too small for
    the folds. Fold ``i``'s folder scores a candidate on its test split (fold ``i``), lets it
    choose epochs, rounds or a penalty on its val split (fold ``i + 1``), and trains it on the
    rest: a candidate that tuned on the rows it is scored on would look better than it is.

    Folds are stratified by class for classification, so every fold sees every class."""
    rows = data.rows("train") + data.rows("val")
    if o.cv_folds < 3 or rows > o.cv_rows or rows < 2 * o.cv_folds:
        return []
    xt, yt = data.matrix("train")
    xv, yv = data.matrix("val")
    x, y = np.concatenate([xt, xv]), np.concatenate([yt, yv])
    fold_of = fold_ids(y, o.cv_folds, seed, stratify=data.task != "regression")
    if fold_of is None:
        return []
    out = []
    for i in range(o.cv_folds):
        at = np.flatnonzero(fold_of == i)
        inner = (i + 1) % o.cv_folds  # the fold a candidate stops early or tunes on: never the one it is scored on
        splits = {"train": np.flatnonzero((fold_of != i) & (fold_of != inner)), "val": np.flatnonzero(fold_of == inner),
                  "test": at}
        out.append((_write_fold(data, folder / f"fold{i + 1}", splits, x, y), at))
    return out


def _write_fold(data: TrainingData, folder: Path, splits: dict[str, np.ndarray], x: np.ndarray,
                y: np.ndarray) -> TrainingData:
    """A prepared folder holding ``x[rows], y[rows]`` per split (plain float32 layout)."""
    from blase.hashing import hash_file
    from blase.prepare import ShardInfo

    folder.mkdir(parents=True, exist_ok=True)
    shards, counts, class_counts = {}, {}, {}
    for split, at in splits.items():
        xf, yf = folder / f"{split}-x.npy", folder / f"{split}-y.npy"
        np.save(xf, np.ascontiguousarray(x[at], dtype=np.float32))
        np.save(yf, np.ascontiguousarray(y[at]).astype(data.manifest.y_dtype))
        shards[split] = [ShardInfo(file=xf.name, labels_file=yf.name, rows=len(at), hash=hash_file(xf),
                                   labels_hash=hash_file(yf))]
        counts[split] = len(at)
        if data.task != "regression":
            codes, n = np.unique(y[at], return_counts=True)
            class_counts[split] = {str(int(c)): int(k) for c, k in zip(codes, n, strict=True)}
    manifest = data.manifest.model_copy(update={"shards": shards, "counts": counts, "class_counts": class_counts,
                                                "layout": None})
    (folder / "manifest.json").write_text(json.dumps(manifest.to_json()), encoding="utf-8")
    return TrainingData(folder)


def _choose(losses: dict[str, dict[str, np.ndarray]], order: list[str]) -> tuple[str, str]:
    """The one-standard-error rule: the best candidate by the mean val loss (squared error,
    or 0/1 error with the log loss breaking ties), unless an earlier (simpler) one is within
    one standard error of it on the paired per-row differences; then the earliest such."""
    key = "sq" if "sq" in next(iter(losses.values())) else "err"

    def rank(name: str) -> tuple[float, float]:
        mean = float(losses[name][key].mean())
        tie = float(losses[name]["nll"].mean()) if key == "err" else 0.0
        return (mean if math.isfinite(mean) else math.inf, tie if math.isfinite(tie) else math.inf)

    names = [n for n in order if n in losses]
    best = min(names, key=lambda n: (rank(n), names.index(n)))
    for name in names[: names.index(best)]:
        diff = losses[name][key] - losses[best][key]
        se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else 0.0
        if math.isfinite(float(diff.mean())) and float(diff.mean()) <= se:
            return name, f"within one standard error of {best}'s val loss, and simpler"
    return best, "the best val loss"
