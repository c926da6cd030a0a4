"""``train.model: xgboost``: gradient-boosted trees trained out of core from the shards.

The training rows never sit in memory whole: an ``xgboost.DataIter`` hands XGBoost the
prepared shards a batch at a time, and ``xgboost.ExtMemQuantileDMatrix`` turns them into
quantised pages cached on disk (in a scratch folder removed after the fit), from which the
``hist`` tree method builds each tree. The val split, built the same way with the training
matrix's quantiles, drives early stopping; the model keeps the trees up to the best round.
The model is saved in XGBoost's own UBJSON format (``model.ubj``), never pickled; a package
also gets ``model.onnx`` (through onnxmltools, the ``onnx`` extra) with the same scores.

Scores are margins, as the built-in models give logits: one per row for binary and
regression (the prediction), one per class for multiclass.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from blase.contrib._onnx import export_trees
from blase.contrib._options import XGBoostOptions
from blase.contrib._xgb_cache import cache_bytes, cache_folder
from blase.model import FitContext, FitReport, ModelKind, ModelSpec, TrainError, TrainingData

__all__ = ["ShardIter", "XGBoostModel"]

MODEL_FILE = "model.ubj"
#: Bytes XGBoost holds per training row whatever the matrix mode: its external memory pages
#: hold only the features, while labels, the prediction cache, gradient pairs and the row
#: partition with its buffers stay in memory (measured: bench/xgb_memory.py, 35-40 B a row).
ROW_STATE_BYTES = 40
#: The DataIter's smallest batch when memory is tight (smaller pages make rounds slower).
MIN_BATCH_BYTES = 32 << 20
_OBJECTIVE = {"binary": ("binary:logistic", "logloss"), "multiclass": ("multi:softprob", "mlogloss"),
              "regression": ("reg:squarederror", "rmse")}


class ShardIter(xgb.DataIter):
    """The rows of one split, a batch at a time, for XGBoost's external memory.

    A batch holds as many rows as fit in ``batch_bytes`` (as float32), across shard bounds:
    XGBoost's external memory makes one cached page per batch and visits every page on every
    round, so few large pages train faster than many small ones.
    """

    def __init__(self, data: TrainingData, split: str, cache_prefix: str | None, *, batch_bytes: int) -> None:
        self._data, self._split = data, split
        self._rows = max(1024, batch_bytes // max(1, 4 * data.n_features))
        self._batches: Iterator[tuple[np.ndarray, np.ndarray]] | None = None
        # XGBoost reads the iterator three times for a training matrix (its shape and labels, a
        # sketch, then the quantised pages) and twice with a reference: a split that is one batch
        # (at most batch_bytes, held during each pass anyway) is read from the shards once
        self._single = data.rows(split) <= self._rows
        self._kept: tuple[np.ndarray, np.ndarray] | None = None
        super().__init__(cache_prefix=cache_prefix, release_data=True)

    def next(self, input_data: Callable[..., None]) -> bool:
        if self._batches is None:
            self._batches = iter([self._kept]) if self._kept is not None else \
                self._data.batches(self._split, rows=self._rows)
        batch = next(self._batches, None)
        if batch is None:
            return False
        if self._single:
            self._kept = batch
        input_data(data=batch[0], label=batch[1])
        return True

    def reset(self) -> None:
        self._batches = None

    def release(self) -> None:
        """Forget the kept batch (once the matrix is built: XGBoost reads its own pages then)."""
        self._kept, self._batches = None, None


class XGBoostModel(ModelKind):
    """XGBoost's ``hist`` trees on the shards, out of core; options: :class:`XGBoostOptions`."""

    name = "xgboost"
    config_model = XGBoostOptions
    files = (MODEL_FILE,)
    can_continue = True  # blase update --mode finetune: more rounds on the deployed trees
    epochs_option = "n_estimators"

    def __init__(self, options: XGBoostOptions | None = None) -> None:
        super().__init__(options if options is not None else XGBoostOptions())

    def _params(self, data: TrainingData, seed: int) -> dict[str, Any]:
        o: XGBoostOptions = self.options  # type: ignore[assignment]
        objective, metric = _OBJECTIVE[data.task]
        params: dict[str, Any] = {
            "objective": objective, "eval_metric": metric, "tree_method": "hist", "seed": seed,
            "eta": o.learning_rate, "max_depth": o.max_depth, "min_child_weight": o.min_child_weight,
            "subsample": o.subsample, "colsample_bytree": o.colsample_bytree, "lambda": o.reg_lambda,
            "alpha": o.reg_alpha, "max_bin": o.max_bin, "verbosity": 0,
        }
        if data.task == "multiclass":
            params["num_class"] = data.n_classes
        if o.n_jobs is not None:
            params["nthread"] = o.n_jobs
        return params

    def _external(self, data: TrainingData, budget: int) -> bool:
        """Whether the train split goes through external memory: asked for, or (``auto``) when
        its quantised rows (a bin index per value, up to 2 bytes with XGBoost's row and column
        indexes) would take more than a quarter of the memory budget."""
        o: XGBoostOptions = self.options  # type: ignore[assignment]
        if o.external_memory != "auto":
            return bool(o.external_memory)
        return data.rows("train") * data.n_features * 2 > budget // 4

    def _matrix(self, data: TrainingData, split: str, ctx: FitContext, *, cache: Path | None,
                ref: xgb.DMatrix | None = None) -> xgb.DMatrix:
        """The split's matrix: quantised pages in ``cache`` (external memory), or in memory."""
        budget = ctx.memory or 2 << 30
        o: XGBoostOptions = self.options  # type: ignore[assignment]
        external = cache is not None
        if not external and data.rows(split) * data.n_features * 4 <= budget // 4:
            # small enough to hold as floats for a moment: one read of the shards (an iterator is
            # read twice, sketch then quantise), and XGBoost sketches an array on every thread
            x, y = data.matrix(split)
            return xgb.QuantileDMatrix(x, y, max_bin=o.max_bin, ref=ref, nthread=o.n_jobs)
        it = ShardIter(data, split, str(cache / f"xgb-{split}") if cache is not None else None,
                       batch_bytes=self._batch_bytes(data, budget))
        try:
            if external:
                return xgb.ExtMemQuantileDMatrix(it, max_bin=o.max_bin, ref=ref, nthread=o.n_jobs)
            # the batches are quantised as they come: the raw float rows are never held whole
            return xgb.QuantileDMatrix(it, max_bin=o.max_bin, ref=ref, nthread=o.n_jobs)
        finally:
            it.release()

    @staticmethod
    def _batch_bytes(data: TrainingData, budget: int) -> int:
        """The DataIter's batch size: an eighth of what the budget leaves beside XGBoost's
        per-row state, at least 32 MB (1 MB under a tiny budget), at most an eighth of the budget."""
        free = budget - ROW_STATE_BYTES * data.rows("train") - 8 * data.rows("val")
        return max(1 << 20, min(budget // 8, max(MIN_BATCH_BYTES, free // 8)))

    @staticmethod
    def _memory_warning(data: TrainingData, budget: int) -> list[str]:
        need = ROW_STATE_BYTES * data.rows("train")
        if need <= budget // 2:
            return []
        return [f"XGBoost keeps about {ROW_STATE_BYTES} bytes per training row in memory whatever the matrix "
                f"mode (its external memory pages hold only the features): {need / 1e9:.2f} GB for "
                f"{data.rows('train'):,} rows, against a {budget / 1e9:.2f} GB memory budget; expect the train "
                "step's peak memory above the budget (raise --memory, or train on fewer rows)"]

    def _cache(self, data: TrainingData, ctx: FitContext, external: bool) -> AbstractContextManager[Path | None]:
        """The folder of XGBoost's disk cache (external memory only), its free space checked
        against the cache's estimated size before XGBoost writes anything."""
        if not external:
            return nullcontext()
        o: XGBoostOptions = self.options  # type: ignore[assignment]
        need = cache_bytes(data.rows("train") + data.rows("val"), data.n_features, o.max_bin)
        return cache_folder(o.cache_dir, Path(ctx.tmp_dir or tempfile.gettempdir()), need=need,
                            project_root=ctx.data_root or ctx.project_root)

    def _boost(self, data: TrainingData, ctx: FitContext, external: bool,
               history: dict[str, dict[str, list[float]]]) -> xgb.Booster:
        o: XGBoostOptions = self.options  # type: ignore[assignment]
        has_val = data.rows("val") > 0
        init = ctx.init.booster_ if isinstance(ctx.init, XGBoostModel) else None
        with self._cache(data, ctx, external) as cache:
            train = self._matrix(data, "train", ctx, cache=cache)
            evals = [(self._matrix(data, "val", ctx, cache=cache, ref=train), "val")] if has_val else []
            try:
                return xgb.train(
                    self._params(data, ctx.seed), train, num_boost_round=o.n_estimators, evals=evals,
                    early_stopping_rounds=o.early_stopping_rounds if has_val else None,
                    evals_result=history, verbose_eval=False, xgb_model=init,
                )
            except xgb.core.XGBoostError as exc:
                raise TrainError(f"xgboost failed: {str(exc).splitlines()[0]}",
                                 hint="check train.options in blase.yaml (see `blase plugins --json` for the "
                                      "schema)") from exc
            finally:
                del train, evals  # XGBoost's handles on the cache pages, before the folder goes

    def fit(self, data: TrainingData, ctx: FitContext) -> XGBoostModel:
        o: XGBoostOptions = self.options  # type: ignore[assignment]
        external = self._external(data, ctx.memory or 2 << 30)
        has_val = data.rows("val") > 0
        history: dict[str, dict[str, list[float]]] = {}
        booster = self._boost(data, ctx, external, history)
        rounds = booster.num_boosted_rounds()
        best = getattr(booster, "best_iteration", None) if has_val and o.early_stopping_rounds else None
        if best is not None and best + 1 < rounds:
            booster = booster[: best + 1]  # keep the trees up to the best val round
        self.booster_, self.task_ = booster, data.task
        metric = _OBJECTIVE[data.task][1]
        curve = history.get("val", {}).get(metric, [])
        start = rounds - len(curve)  # the rounds of the model this fit continued from
        details = {"rounds": rounds, "best_iteration": best, "trees": booster.num_boosted_rounds(),
                   "best_metric": curve[best - start] if best is not None and 0 <= best - start < len(curve) else None,
                   "monitor": f"val_{metric}" if has_val else None,
                   "stopped_early": len(curve) < o.n_estimators and has_val,
                   "continued_from_rounds": start or None,
                   "matrix": "external memory (pages cached on disk)" if external else "quantised in memory"}
        warnings = [] if has_val else ["no val split: no early stopping, the model keeps every round"]
        warnings += self._memory_warning(data, ctx.memory or 2 << 30)
        self.report_ = FitReport(details=details, warnings=warnings,
                                 history=[{"round": i + 1, f"val_{metric}": v} for i, v in enumerate(curve)])
        return self

    def save(self, folder: Path) -> None:
        self.booster_.save_model(os.fspath(Path(folder) / MODEL_FILE))

    @classmethod
    def load(cls, folder: Path, spec: ModelSpec) -> XGBoostModel:
        model = cls(XGBoostOptions.model_validate(spec.options))
        booster = xgb.Booster()
        try:
            booster.load_model(os.fspath(Path(folder) / MODEL_FILE))
        except xgb.core.XGBoostError as exc:
            raise TrainError(f"cannot read {Path(folder) / MODEL_FILE}: {str(exc).splitlines()[0]}",
                             hint="train again (`blase run --from train`) or redeploy") from None
        model.booster_, model.task_ = booster, spec.task
        return model

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster_.inplace_predict(np.asarray(x, dtype=np.float32), predict_type="margin"))

    def export_onnx(self, path: Path, n_features: int) -> None:
        export_trees(self.booster_, path, n_features, task=self.task_, library="xgboost")

    def versions(self) -> dict[str, str]:
        return {"xgboost": xgb.__version__}
