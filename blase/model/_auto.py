"""``train.model: auto``: fit a few kinds, keep the one that scores best, or their average.

Which model class suits a data set is rarely known in advance: a nearly linear target wants
a penalised linear model, curved boundaries on a few hundred rows an RBF kernel, interactions
want trees or an MLP. ``auto`` (what ``blase schema --write`` puts in a new blase.yaml) fits
each of ``candidates`` (by default ``glm``, ``kernel``, ``mlp`` and ``lightgbm``, simplest
first; the ``small_only`` ones, ``kernel``, only when train + val hold at most ``small_rows``
rows) and scores it out of sample. When train and val hold at most
``cv_rows`` rows (10,000), a val split of a few dozen rows would rank models mostly by chance,
so the candidates are scored by ``cv_folds``-fold cross-validation on train + val (stratified
for classification, seeded): every row is scored by a model that did not train on it. On small
data the partition into folds is itself a source of noise (on 142 rows, where one row is 0.7 %
of accuracy, four seeds kept four different averages), so the cross-validation is repeated
with other seeded partitions until each candidate has at least ``repeat_rows`` (2,000)
out-of-fold scores, at most ``cv_repeats`` (3) times; each row's loss is averaged over the
repeats. Larger data is scored on the val split.

The choice is :func:`~blase.model._select.choose`: the candidates and their weighted average
(greedy ensemble selection, bagged over bootstrap resamples of the rows) are ranked by their
out-of-fold loss (the squared error; for classification the log loss, which tells confident
mistakes from near misses where accuracy counts a few rows). The candidate with the lowest
loss is kept, or the average when it beats that candidate by more than one standard error (its
weights were chosen on the rows that score it); ``prefer_simpler`` applies that
one-standard-error rule between candidates too (glm before kernel before mlp before lightgbm).
With ``train.refit`` (``auto``: at most 50,000 rows) the choice is
then fitted again as its own kind would be (an average: each member); otherwise the
candidate's own fit is kept.

Above ``compare_rows`` training rows, comparing would multiply the training time of a large
data set, so ``auto`` trains ``large`` alone (``mlp`` by default: it streams the shards under
the memory budget, where LightGBM's binned copy of the data would not fit).

``model.json`` names the kind that won (or ``ensemble``), so predict, monitor and deploy load it
as if it had been named in blase.yaml; the train step's record keeps every option's scores, its
standard error against the best and the rule (``details.auto``, which ``blase inspect`` shows),
and the run logs a ``model_selection`` event.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from blase.model._contract import FitContext, FitReport, ModelKind
from blase.model._data import TrainingData
from blase.model._ensemble import EnsembleMember, EnsembleModel, EnsembleOptions
from blase.model._errors import TrainError
from blase.model._fit import HISTORY_JSON
from blase.model._folds import fold_ids
from blase.model._registry import model_kind, model_plugin
from blase.model._select import choose
from blase.model._spec import ModelSpec

__all__ = ["AutoModel", "AutoOptions"]

logger = logging.getLogger(__name__)

#: one fold: its prepared folder and its rows' positions in train + val
Fold = tuple[TrainingData, "np.ndarray | None"]


class AutoOptions(BaseModel):
    """``train.options`` of ``train.model: auto``."""

    model_config = ConfigDict(extra="forbid")

    candidates: list[str] = Field(
        default_factory=lambda: ["glm", "kernel", "mlp", "lightgbm"], min_length=1,
        description="the kinds to compare, simplest first (a tie keeps the earlier one)")
    small_only: list[str] = Field(
        default_factory=lambda: ["kernel"], description="candidates compared only when train + val hold at "
        "most small_rows rows (a kernel model's time grows with rows x landmarks)")
    small_rows: int = Field(
        default=5_000, ge=0, description="the most rows (train + val) for the small_only candidates")
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
    cv_repeats: int = Field(
        default=3, ge=1, description="on small data, score the candidates on up to this many partitions "
        "of train + val into folds (each seeded differently), enough for repeat_rows out-of-fold scores")
    repeat_rows: int = Field(
        default=2_000, ge=0, description="repeat the cross-validation until each candidate has at least "
        "this many out-of-fold scores (at most cv_repeats times): ceil(repeat_rows / rows) partitions")
    select_on: Literal["logloss", "accuracy"] = Field(
        default="logloss", description="classification: the out-of-fold loss candidates are compared on "
        "(the other breaks ties); regression always compares the squared error")
    ensemble: bool = Field(
        default=True, description="keep a weighted average of the candidates (greedy ensemble selection on "
        "their cross-validation or val scores) when it beats the best one alone by more than a standard error")
    prefer_simpler: bool = Field(
        default=False, description="keep a simpler candidate (earlier in candidates) whose loss is within one "
        "standard error of the best one's (the one-standard-error rule); default: the lowest loss")
    ensemble_bags: int = Field(
        default=20, ge=0, description="average the ensemble's weights over this many bootstrap resamples "
        "of the scored rows (bagged ensemble selection; 0: one selection on all rows)")

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
        partitions = _partitions(data, o, ctx.seed, scratch / "folds")
        folds = bool(partitions)
        scored_on = _scored_on(data, partitions)
        scores, seconds, fitted, skipped = self._score_candidates(data, ctx, partitions, scratch)
        labels = _labels(data, folds)  # read once: train + val's matrices on small data
        choice = choose(scores, labels, data.task, order=o.candidates, metric=o.select_on,
                        ensemble=o.ensemble, simpler=o.prefer_simpler, bags=o.ensemble_bags, seed=ctx.seed,
                        prefix="cv" if folds else "val")
        results = {name: {**s, **({"seconds": seconds[name]} if name in seconds else {})}
                   for name, s in choice.scores.items()}
        refit = ctx.refits(data)
        again = " (then refit on train + val)" if refit else ""
        if choice.chosen == "ensemble":
            members = [EnsembleMember(kind=n, weight=w) for n, w in choice.weights.items()]
            ensemble = EnsembleModel(EnsembleOptions(members=members))
            if refit or folds:
                self.winner_ = ensemble.fit(data, dataclasses.replace(ctx, init=None, resume=False))
            else:
                self.winner_ = ensemble.of_fitted([fitted[n] for n in choice.weights], data)
            mix = " + ".join(f"{w:.2f} {n}" for n, w in choice.weights.items())
            why = f"the average {mix}: {choice.reason}; scored by {scored_on}{again.replace('then', 'each then')}"
        else:
            if refit or folds:
                # fitted again on the real split as its own kind would be (then on train + val when
                # train.refit allows): the candidates were fitted quietly, or on folds
                self.winner_ = self._kind(choice.chosen, ctx)
                self.winner_.fit(data, dataclasses.replace(ctx, init=None, resume=False))
            else:
                self.winner_ = fitted[choice.chosen]
            why = f"{choice.chosen}: {choice.reason}, of {', '.join(scores)} scored by {scored_on}{again}"
        rule = {"select_on": "squared error" if data.task == "regression" else o.select_on,
                "folds": len(partitions[0]) if folds else 0, "repeats": len(partitions),
                "ensemble_bags": o.ensemble_bags if o.ensemble else 0,
                "not_compared_above_small_rows": [n for n in o.small_only if n in o.candidates and rows > o.small_rows]}
        self._finish(choice.chosen, why, results, skipped, self.winner_.report_, rule)
        flat = _no_better_than_the_mean(choice.scores[choice.chosen]["loss"], labels, data.task,
                                        o.select_on, choice.chosen)
        if flat:  # shown now, as training's scale check is, and recorded with the step
            logger.warning("%s", flat)
            self.report_.warnings.append(flat)
        _log_selection(ctx.track, choice.chosen, why, results, rule)
        return self

    def _score_candidates(self, data: TrainingData, ctx: FitContext, partitions: list[list[Fold]], scratch: Path,
                          ) -> tuple[dict[str, list[np.ndarray]], dict[str, float], dict[str, ModelKind], list[str]]:
        """Each installed candidate's out-of-fold scores, one array per partition (or its val
        scores, without folds), its seconds, its last fit, and the candidates left out."""
        o: AutoOptions = self.options  # type: ignore[assignment]
        quiet = ctx.train.model_copy(update={"refit": False}) if ctx.train is not None else None
        rows = data.rows("train") + data.rows("val")
        scores: dict[str, list[np.ndarray]] = {}
        seconds: dict[str, float] = {}
        fitted: dict[str, ModelKind] = {}
        skipped: list[str] = []
        for name in o.candidates:
            plugin = model_plugin(name, root=ctx.project_root, entries=ctx.plugins)  # a misspelt name fails here
            if name in o.small_only and rows > o.small_rows:  # by design, not a warning: see details.auto.rule
                continue
            missing = plugin.missing()
            if missing:  # a candidate whose library is not installed is left out, and said so
                fix = f"pip install 'blase[{plugin.extra}]'" if plugin.extra else f"pip install {' '.join(missing)}"
                skipped.append(f"{name}: needs {', '.join(missing)} ({fix})")
                continue
            start = time.perf_counter()
            scores[name] = []
            for r, folds in enumerate(partitions or [[(data, None)]]):
                parts = []
                for i, (fold, rows_of) in enumerate(folds):
                    folder = scratch / name / (f"r{r + 1}-fold{i + 1}" if partitions else "")
                    folder.mkdir(parents=True, exist_ok=True)
                    sub = dataclasses.replace(ctx, out_dir=folder, train=quiet, track=False, init=None,
                                              resume=False, on_epoch_end=None)
                    kind = self._kind(name, ctx)
                    kind.fit(fold, sub)
                    parts.append((_val_scores(kind, fold, "test" if partitions else "val")[0], rows_of))
                scores[name].append(_in_row_order(parts, rows))
            fitted[name] = kind
            seconds[name] = round(time.perf_counter() - start, 3)
        if not scores:
            raise TrainError("train.model auto: no candidate could be fitted (" + "; ".join(skipped) + ")",
                             hint="install a candidate's extra, or name the candidates in train.options.candidates")
        return scores, seconds, fitted, skipped

    def _kind(self, name: str, ctx: FitContext) -> ModelKind:
        if name == "auto":
            raise TrainError("train.options.large cannot be 'auto'", hint="name a model kind, e.g. mlp")
        return model_kind(name, {}, root=ctx.project_root, entries=ctx.plugins)

    def _finish(self, name: str, why: str, results: dict[str, dict[str, Any]], skipped: list[str],
                report: FitReport, rule: dict[str, Any] | None = None) -> None:
        details = {**report.details, "auto": {"chosen": name, "reason": why, "candidates": results,
                                              "skipped": skipped, **({"rule": rule} if rule else {})}}
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


def _log_selection(track: Any, chosen: str, why: str, results: dict[str, dict[str, Any]],
                   rule: dict[str, Any]) -> None:
    """A ``model_selection`` event and each candidate's scores (``auto.<kind>.<metric>``)."""
    if track is None:
        from blase.track import active_run

        track = active_run()
    if track is None or track is False or not getattr(track, "active", True):
        return
    track.log_event("model_selection", chosen=chosen, reason=why, candidates=results, rule=rule)
    track.log_metrics({f"auto.{name}.{k}": v for name, r in results.items() for k, v in r.items()
                       if k != "seconds" and isinstance(v, (int, float)) and math.isfinite(v)})


def _no_better_than_the_mean(loss: float, y: np.ndarray, task: str, select_on: str, chosen: str) -> str | None:
    """A warning when the kept model's out-of-sample loss is no lower than that of always
    predicting the label's mean (regression; its leave-one-out error) or its class shares
    (classification): then no candidate found signal in the features, and a user should
    know before trusting, deploying or tuning it."""
    n = len(y)
    if n < 3 or not math.isfinite(loss):
        return None
    if task == "regression":
        yf = np.asarray(y, dtype=np.float64)
        base = float(np.mean((yf - yf.mean()) ** 2)) * (n / (n - 1)) ** 2
        what = f"squared error {loss:.4g}, against {base:.4g} for always predicting the label's mean"
    else:
        share = np.bincount(np.asarray(y, dtype=np.int64)) / n
        if select_on == "accuracy":
            base = 1.0 - float(share.max())
            what = f"error rate {loss:.4g}, against {base:.4g} for always predicting the commonest class"
        else:
            present = share[share > 0]
            base = float(-(present * np.log(present)).sum())
            what = f"log loss {loss:.4g}, against {base:.4g} for predicting each class's share of the rows"
    if loss < base:
        return None
    kept = "their average" if chosen == "ensemble" else chosen
    return (f"train.model auto: no candidate predicts the label better than a constant ({kept}'s out-of-sample "
            f"{what}): the features may say little about the label; check the label column and what "
            "`blase schema DATA --label LABEL` dropped before trusting this model")


def _val_scores(kind: ModelKind, data: TrainingData, split: str = "val") -> tuple[np.ndarray, np.ndarray]:
    """The candidate's scores on ``split`` and the split's labels."""
    z, y = [], []
    for x, labels in data.chunks(split):
        z.append(np.asarray(kind.predict(x), dtype=np.float64).reshape(len(labels), -1))
        y.append(np.asarray(labels))
    scores = np.concatenate(z)
    return (scores[:, 0] if scores.shape[1] == 1 else scores), np.concatenate(y)


def _labels(data: TrainingData, folds: bool) -> np.ndarray:
    """The labels the candidates were scored on: train + val's (cross-validation), or val's."""
    if not folds:
        return np.concatenate([np.asarray(y) for _, y in data.chunks("val")])
    return np.concatenate([data.matrix("train")[1], data.matrix("val")[1]])


def _in_row_order(parts: list[tuple[np.ndarray, np.ndarray | None]], rows: int) -> np.ndarray:
    """One candidate's scores: the val split's as they are, or each fold's put back at its
    rows' places in train + val (so candidates are compared row by row)."""
    if parts[0][1] is None:
        return parts[0][0]
    out = np.empty((rows, *parts[0][0].shape[1:]))
    for z, at in parts:
        out[at] = z
    return out


def _partitions(data: TrainingData, o: AutoOptions, seed: int, folder: Path) -> list[list[Fold]]:
    """The partitions of train + val into folds the candidates are scored on: one, or on small
    data ``ceil(repeat_rows / rows)`` (at most ``cv_repeats``), each seeded differently, so
    that the choice does not hang on how a few hundred rows happened to fall into folds; none
    when the val split scores them."""
    repeats = repeat_count(data.rows("train") + data.rows("val"), o)
    out = []
    for r in range(repeats):
        folds = _folds(data, o, seed + 1000 * r, folder / f"r{r + 1}")
        if not folds:
            return []
        out.append(folds)
    return out


def repeat_count(rows: int, o: AutoOptions) -> int:
    """How many partitions into folds score the candidates on ``rows`` rows of train + val:
    enough for ``repeat_rows`` out-of-fold scores each, at most ``cv_repeats``."""
    return min(o.cv_repeats, max(1, math.ceil(o.repeat_rows / max(rows, 1))))


def _scored_on(data: TrainingData, partitions: list[list[Fold]]) -> str:
    rows = data.rows("train") + data.rows("val")
    if not partitions:
        return f"the val split ({data.rows('val'):,} rows)"
    times = f", repeated {len(partitions)} times" if len(partitions) > 1 else ""
    return f"{len(partitions[0])}-fold cross-validation on train + val ({rows:,} rows{times})"


def _folds(data: TrainingData, o: AutoOptions, seed: int, folder: Path) -> list[Fold]:
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
