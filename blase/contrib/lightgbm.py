"""``train.model: lightgbm``: LightGBM trees fed from the shards.

Each shard is a ``lightgbm.Sequence`` over its memory-mapped rows, so LightGBM samples rows
to find its bins and then reads the data in batches into its own binned dataset (a byte or
two per value, not the float32 matrix); the labels, one number per row, are read whole. The
val split, binned with the training set's bins, drives early stopping. Settings are
deterministic (``deterministic``, row-wise histograms, the project's seed), and the model is
saved in LightGBM's text format (``model.txt``) up to its best round; a package also gets
``model.onnx`` (through onnxmltools, the ``onnx`` extra) with the same scores.

``blase update`` continues boosting from the deployed model (``init_model``): LightGBM starts
each row from the deployed model's raw score, which :class:`ShardDataset` computes a batch at
a time from the shards (LightGBM's own code would need the rows as one in-memory matrix).

Scores are raw scores, as the built-in models give logits: one per row for binary and
regression, one per class for multiclass.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from blase.contrib._onnx import export_trees
from blase.contrib._options import LightGBMOptions
from blase.model import FitContext, FitReport, ModelKind, ModelSpec, TrainError, TrainingData

__all__ = ["LightGBMModel", "ShardDataset", "ShardSequence"]

MODEL_FILE = "model.txt"
_OBJECTIVE = {"binary": ("binary", "binary_logloss"), "multiclass": ("multiclass", "multi_logloss"),
              "regression": ("regression", "rmse")}


class ShardSequence(lgb.Sequence):
    """One shard's rows for LightGBM, read from the memory-mapped shard on demand."""

    batch_size = 65_536

    def __init__(self, data: TrainingData, shard: Any) -> None:
        self._rows = data.shard_rows(shard)

    def __getitem__(self, index: int | slice) -> np.ndarray:
        # LightGBM bins float64 rows; a batch at a time is all that is ever converted
        if isinstance(index, slice):
            return self._rows[index].astype(np.float64)
        return self._rows[index : index + 1][0].astype(np.float64)

    def __len__(self) -> int:
        return len(self._rows)


class ShardDataset(lgb.Dataset):
    """A ``lightgbm.Dataset`` over :class:`ShardSequence` objects that can continue a model.

    A continued fit (``init_model``) starts every row from the model's raw score. LightGBM
    asks its predictor for those scores on the dataset's raw data, which for a list of
    sequences it cannot read; here they are predicted a sequence batch at a time, and set as
    the init scores in LightGBM's class-major order.
    """

    def _set_init_score_by_predictor(self, predictor: Any, data: Any, used_indices: Any) -> ShardDataset:
        if predictor is None or not (isinstance(data, list) and data and isinstance(data[0], ShardSequence)):
            return super()._set_init_score_by_predictor(predictor=predictor, data=data, used_indices=used_indices)
        parts = [np.asarray(predictor.predict(seq[i : i + seq.batch_size], raw_score=True), dtype=np.float64)
                 for seq in data for i in range(0, len(seq), seq.batch_size)]
        scores = np.concatenate(parts).reshape(self.num_data(), -1)
        self.set_init_score(scores.T.ravel() if scores.shape[1] > 1 else scores.ravel())
        return self


class LightGBMModel(ModelKind):
    """LightGBM's trees on the shards; options: :class:`LightGBMOptions`."""

    name = "lightgbm"
    config_model = LightGBMOptions
    files = (MODEL_FILE,)
    can_continue = True  # blase update --mode finetune: more rounds on the deployed trees
    epochs_option = "n_estimators"

    def __init__(self, options: LightGBMOptions | None = None) -> None:
        super().__init__(options if options is not None else LightGBMOptions())

    def _params(self, data: TrainingData, seed: int) -> dict[str, Any]:
        o: LightGBMOptions = self.options  # type: ignore[assignment]
        objective, metric = _OBJECTIVE[data.task]
        params: dict[str, Any] = {
            "objective": objective, "metric": metric, "seed": seed, "deterministic": True,
            "force_row_wise": True, "verbosity": -1, "learning_rate": o.learning_rate,
            "num_leaves": o.num_leaves, "max_depth": o.max_depth, "min_child_samples": o.min_child_samples,
            "feature_fraction": o.colsample_bytree, "lambda_l2": o.reg_lambda, "lambda_l1": o.reg_alpha,
            "max_bin": o.max_bin, "num_threads": o.n_jobs or 0,
        }
        if o.subsample < 1:
            params |= {"bagging_fraction": o.subsample, "bagging_freq": 1}
        if data.task == "multiclass":
            params["num_class"] = data.n_classes
        return params

    def _dataset(self, data: TrainingData, split: str, params: dict[str, Any],
                 reference: lgb.Dataset | None = None, *, also: str | None = None) -> lgb.Dataset:
        splits = [split] if also is None else [split, also]
        sequences = [ShardSequence(data, shard) for s in splits for shard in data.shards(s)]
        labels = np.concatenate([data.labels(s) for s in splits])
        return ShardDataset(sequences, label=labels, reference=reference, params=params, free_raw_data=True)

    def fit(self, data: TrainingData, ctx: FitContext) -> LightGBMModel:
        o: LightGBMOptions = self.options  # type: ignore[assignment]
        params = self._params(data, ctx.seed)
        train = self._dataset(data, "train", params)
        has_val = data.rows("val") > 0
        valid = [self._dataset(data, "val", params, reference=train)] if has_val else []
        history: dict[str, Any] = {}
        callbacks = [lgb.record_evaluation(history)]
        if has_val and o.early_stopping_rounds:
            callbacks.append(lgb.early_stopping(o.early_stopping_rounds, verbose=False))
        init = ctx.init.booster_ if isinstance(ctx.init, LightGBMModel) else None
        start = init.current_iteration() if init is not None else 0  # rounds of the model continued
        try:
            booster = lgb.train(params, train, num_boost_round=o.n_estimators, valid_sets=valid,
                                valid_names=["val"] if has_val else None, callbacks=callbacks, init_model=init)
        except lgb.basic.LightGBMError as exc:
            raise TrainError(f"lightgbm failed: {exc}",
                             hint="check train.options in blase.yaml (see `blase plugins --json` for the schema)") from exc
        metric = _OBJECTIVE[data.task][1]
        curve = list(history.get("val", {}).get(metric, []))
        best = booster.best_iteration if has_val and o.early_stopping_rounds and booster.best_iteration > 0 else None
        refit = bool(best) and best > start and ctx.refits(data)
        if refit:  # the rounds the val split chose, on train + val (train.refit)
            booster = lgb.train(params, self._dataset(data, "train", params, also="val"),
                                num_boost_round=best - start, init_model=init)
        self.booster_, self.task_ = booster, data.task
        details = {"rounds": start + len(curve) if curve else booster.current_iteration(),
                   "best_iteration": best - 1 if best else None,
                   "trees": best or booster.current_iteration(),
                   "best_metric": curve[best - 1 - start] if best and 0 <= best - 1 - start < len(curve) else None,
                   "monitor": f"val_{metric}" if has_val else None,
                   "stopped_early": bool(best) and len(curve) < o.n_estimators, "refit": refit,
                   "continued_from_rounds": start or None}
        warnings = [] if has_val else ["no val split: no early stopping, the model keeps every round"]
        self.report_ = FitReport(details=details, warnings=warnings,
                                 history=[{"round": i + 1, f"val_{metric}": v} for i, v in enumerate(curve)])
        return self

    def save(self, folder: Path) -> None:
        best = self.booster_.best_iteration
        self.booster_.save_model(os.fspath(Path(folder) / MODEL_FILE), num_iteration=best if best > 0 else -1)

    @classmethod
    def load(cls, folder: Path, spec: ModelSpec) -> LightGBMModel:
        model = cls(LightGBMOptions.model_validate(spec.options))
        model.task_ = spec.task
        try:
            model.booster_ = lgb.Booster(model_file=os.fspath(Path(folder) / MODEL_FILE))
        except lgb.basic.LightGBMError as exc:
            raise TrainError(f"cannot read {Path(folder) / MODEL_FILE}: {exc}",
                             hint="train again (`blase run --from train`) or redeploy") from None
        return model

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster_.predict(np.asarray(x, dtype=np.float32), raw_score=True))

    def export_onnx(self, path: Path, n_features: int) -> None:
        # zipmap off: the probabilities as one tensor (a list of dicts per row otherwise)
        export_trees(self.booster_, path, n_features, task=self.task_, library="lightgbm", zipmap=False)

    def versions(self) -> dict[str, str]:
        return {"lightgbm": lgb.__version__}
