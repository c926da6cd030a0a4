"""``evaluate_live``: metrics of a model over a split of prepared shards, next to a baseline.

One streaming pass (``_pass``) scores the shards a batch at a time, feeds the metric
accumulators and writes the predictions to Parquet. ROC-AUC and ROC curves, which need every
score ranked, are then computed from that file by DuckDB under the memory budget
(``_roc``); plots come last (``_plots``). The baseline needs no pass of its own: the
majority class's metrics follow from the truth's class counts, and the mean predictor is
fed alongside the model.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blase._fs import write_json_atomic
from blase.errors import BlaseError
from blase.evaluate._errors import EvaluateError
from blase.evaluate._metrics import (
    ClassificationMetrics,
    RegressionMetrics,
    classification_baseline,
)
from blase.evaluate._pass import (
    PredictionWriter,
    make_scorer,
    model_hash,
    prediction_schema,
    stream_predictions,
)
from blase.steps import StepResult, measure_step

if TYPE_CHECKING:
    from blase.prepare import Manifest, ShardInfo

__all__ = ["evaluate_live"]

logger = logging.getLogger(__name__)

#: Rows sampled from the predictions for the regression scatter plots.
PLOT_SAMPLE_ROWS = 5_000


# -- inputs ------------------------------------------------------------------------------------


def _load_manifest(root: Path) -> Manifest:
    from blase.prepare import read_manifest

    if not (root / "manifest.json").is_file():
        where = root if root.is_dir() else f"{root} (which does not exist)"
        raise EvaluateError(
            f"no manifest.json in {where}: it is not a folder of prepared shards",
            hint="run prepare first (`blase run --to prepare`, or Prepare(...).run(source, out_dir) in Python) "
            "and pass its output folder",
        )
    try:
        return read_manifest(root)
    except BlaseError as exc:
        raise EvaluateError(exc.message, hint=exc.hint or "run prepare first") from None


def _split_shards(manifest: Manifest, root: Path, split: str) -> list[ShardInfo]:
    if split not in manifest.shards:
        raise EvaluateError(
            f"split '{split}' is not in {root / 'manifest.json'}",
            hint=f"use one of: {', '.join(manifest.shards)}",
        )
    shards = manifest.shards[split]
    if sum(s.rows for s in shards) == 0:
        raise EvaluateError(
            f"split '{split}' of {root} has no rows: there is nothing to evaluate",
            hint="prepare again with a larger share for it (e.g. split=(0.8, 0.1, 0.1)) or more data",
        )
    return shards


def _class_names(manifest: Manifest) -> tuple[list[str], list[Any]]:
    """Class keys (text, for column names) and original values, in code order."""
    by_code = sorted(manifest.label_mapping.items(), key=lambda kv: kv[1])
    keys = [k for k, _ in by_code]
    if [c for _, c in by_code] != list(range(len(keys))):
        raise EvaluateError(
            f"label_mapping in the manifest does not map to codes 0..{len(keys) - 1}: {dict(by_code)}",
            hint="run prepare again to rewrite the manifest",
        )
    values = list(manifest.classes) if len(manifest.classes) == len(keys) else list(keys)
    return keys, values


def _labels_mean(root: Path, shards: list[ShardInfo]) -> float | None:
    """Mean of a split's labels, read shard by shard (float64, compensated across shards)."""
    m = RegressionMetrics()
    for s in shards:
        y = np.load(root / s.labels_file, mmap_mode="r")
        for start in range(0, len(y), 1 << 20):
            chunk = np.asarray(y[start : start + (1 << 20)], dtype=np.float64)
            m.update(chunk, chunk)
    return m.mean_ if m.n_ else None


def _train_prior(manifest: Manifest, n_classes: int) -> np.ndarray | None:
    counts = manifest.class_counts.get("train") or {}
    totals = np.array([int(counts.get(str(c), 0)) for c in range(n_classes)], dtype=np.int64)
    return totals / totals.sum() if totals.sum() > 0 else None


# -- after the pass ----------------------------------------------------------------------------


@dataclass
class _Job:
    """What the steps after the pass share."""

    out: Path
    split: str
    task: str
    keys: list[str]
    classes: list[Any]
    predictions: Path
    plots: bool
    warnings: list[str] = field(default_factory=list)
    plot_paths: list[Path] = field(default_factory=list)

    @property
    def prob_names(self) -> list[str]:
        return [f"prob_{k}" for k in self.keys]

    def path(self, stem: str, ext: str) -> Path:
        return self.out / _artifact_name(stem, self.split, ext)

    def warn(self, message: str) -> None:
        logger.warning(message)
        self.warnings.append(message)


def _classification_report(
    job: _Job, con: Any, acc: ClassificationMetrics, prior: np.ndarray | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    from blase.evaluate._roc import roc_from_parquet

    names = job.prob_names
    if job.task == "binary":
        targets = [(names[1], job.classes[1], job.keys[1])]
    else:
        targets = list(zip(names, job.classes, job.keys, strict=True))
    curves = [roc_from_parquet(con, job.predictions, col, value, label=label) for col, value, label in targets]
    missing = [c.label for c in curves if c.auc is None]
    if missing:
        job.warn(f"ROC-AUC is undefined on split '{job.split}': class(es) {missing} have no positive "
                 "or no negative row; reported as null")
    metrics = acc.result(roc_auc=None if missing else float(np.mean([c.auc for c in curves])))
    true_counts = acc.confusion_.sum(axis=1)
    baseline = classification_baseline(
        true_counts, prior if prior is not None else true_counts / true_counts.sum(), binary=job.task == "binary"
    )
    if job.plots:
        from blase.evaluate._plots import plot_confusion_matrix, plot_roc

        job.plot_paths.append(plot_confusion_matrix(
            acc.confusion_, job.keys, job.path("confusion_matrix", ".png"),
            title=f"Confusion matrix ({job.split}, {acc.n_:,} rows)"))
        job.plot_paths.append(plot_roc(
            [c for c in curves if c.auc is not None] or curves, job.path("roc_curve", ".png"),
            title=f"ROC ({job.split})" + (", one vs rest" if job.task == "multiclass" else "")))
    return metrics, baseline


def _regression_report(
    job: _Job, con: Any, acc: RegressionMetrics, base: RegressionMetrics
) -> tuple[dict[str, Any], dict[str, Any]]:
    metrics, baseline = acc.result(), base.result()
    if metrics["r2"] is None:
        job.warn(f"R2 is undefined on split '{job.split}' with fewer than two rows; reported as null")
    if job.plots:
        from blase.evaluate._plots import plot_predicted_vs_true, plot_residuals

        truth, pred = _sample(con, job.predictions, PLOT_SAMPLE_ROWS)
        rows = f"{len(truth):,} of {acc.n_:,} rows" if len(truth) < acc.n_ else f"{acc.n_:,} rows"
        job.plot_paths.append(plot_predicted_vs_true(
            truth, pred, job.path("pred_vs_true", ".png"), title=f"Predicted vs true ({job.split}, {rows})"))
        job.plot_paths.append(plot_residuals(
            truth, pred, job.path("residuals", ".png"), title=f"Residuals ({job.split}, {rows})"))
    return metrics, baseline


def _write_json(path: Path, record: dict[str, Any]) -> None:
    write_json_atomic(path, record)


def _spill_dir(out: Path) -> Path:
    """DuckDB's spill folder: in the project's ``.blase/tmp`` when there is one."""
    from blase.errors import ProjectError
    from blase.project import find_project

    try:
        base = find_project(out).tmp_dir
    except ProjectError:
        base = out
    return base / f".evaluate-{uuid.uuid4().hex[:8]}"


def _sample(con: Any, path: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    from blase._duck import sql_quote

    rows = con.execute(
        f"SELECT truth, prediction FROM read_parquet({sql_quote(str(path))}) "
        f"USING SAMPLE reservoir({int(n)} ROWS) REPEATABLE (0)"
    ).fetchnumpy()
    return np.asarray(rows["truth"], dtype=np.float64), np.asarray(rows["prediction"], dtype=np.float64)


def _artifact_name(stem: str, split: str, ext: str) -> str:
    return f"{stem}{ext}" if split == "test" else f"{stem}-{split}{ext}"


def _scalar_metrics(prefix: str, metrics: dict[str, Any]) -> dict[str, float]:
    return {
        f"{prefix}.{k}": v
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def evaluate_live(
    model: Any,
    shards_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    split: str = "test",
    batch_size: int = 8192,
    device: str | Any = "cpu",
    plots: bool = True,
    track: Any = None,
    memory: int | str | None = None,
) -> StepResult:
    """Evaluate a model over a split of prepared shards, streaming, next to a trivial baseline.

    Classification reports accuracy, balanced accuracy, precision/recall/F1 (macro and
    weighted, and of the positive class for binary), log loss, ROC-AUC (one-vs-rest macro for
    multiclass) and the confusion matrix; regression reports MAE, RMSE, R2 and MAPE. Each
    equals scikit-learn's on the same predictions. The baseline predicts the train split's
    majority class with the train class frequencies as probabilities (the evaluated rows'
    when the manifest has no train counts), or the mean of the train labels.

    Parameters
    ----------
    model:
        A torch ``nn.Module`` (put in eval mode and run under ``inference_mode``; moved to
        ``device``; its train/eval mode is restored afterwards), or any callable mapping a
        float32 array ``[b, n_features]`` to scores (a numpy array or tensor). Scores are
        logits: 1 per row for binary (a sigmoid; 2 are taken through a softmax), one per
        class for multiclass (a softmax), 1 for regression (the prediction).
    shards_dir:
        A folder written by :class:`~blase.prepare.Prepare` (with ``manifest.json``).
    out_dir:
        Where ``predictions.parquet``, ``metrics.json`` and the PNG plots go (names get a
        ``-<split>`` suffix for splits other than ``test``). Created if missing.
    split:
        The split to evaluate.
    batch_size:
        Rows per forward pass. It changes speed and memory, never the metrics.
    device:
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"auto"`` (for an ``nn.Module``).
    plots:
        Write the plots: confusion matrix and ROC curve(s) for classification, predicted vs
        true and residuals for regression.
    track:
        A :class:`~blase.track.Track` to log into (default: the active run, if any). Metrics
        are logged as ``<split>.<name>`` and ``baseline.<name>``; predictions, plots and
        metrics file as artifacts under ``evaluate/``.
    memory:
        Memory budget for DuckDB's ROC-AUC pass (``"2GB"``, bytes, ``None`` for the default).

    Returns
    -------
    StepResult
        Step ``"evaluate"``; ``details`` holds ``metrics``, ``baseline``, ``task``,
        ``predictions`` (path), ``plots`` (paths), ``metrics_file``, ``classes`` and
        ``baseline_source``.

    Raises
    ------
    EvaluateError
        No manifest in ``shards_dir``, an unknown or empty split, a model whose output width
        does not fit the task, a model that fails or gives NaN/inf.
    """
    from blase._duck import connect
    from blase.hashing import hash_file
    from blase.resources import memory_budget

    root, out = Path(shards_dir), Path(out_dir)
    manifest = _load_manifest(root)
    shards = _split_shards(manifest, root, split)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise EvaluateError(f"batch_size={batch_size!r} must be a positive integer", hint="e.g. batch_size=8192")
    task = manifest.task
    keys, classes = _class_names(manifest) if task != "regression" else ([], [])
    if task != "regression" and len(keys) < 2:
        raise EvaluateError(f"the manifest in {root} has task {task!r} but {len(keys)} class(es)",
                            hint="run prepare again to rewrite the manifest")
    budget = memory_budget(memory)
    out.mkdir(parents=True, exist_ok=True)
    job = _Job(out=out, split=split, task=task, keys=keys, classes=classes,
               predictions=out / _artifact_name("predictions", split, ".parquet"), plots=plots)
    metrics_path = job.path("metrics", ".json")

    with measure_step() as meter:
        # The baseline learns from the train split, or from the evaluated rows without one.
        acc: ClassificationMetrics | RegressionMetrics
        base: RegressionMetrics | None = None
        base_value = prior = None
        if task == "regression":
            acc, base = RegressionMetrics(), RegressionMetrics()
            base_value = _labels_mean(root, manifest.shards.get("train", []))
            baseline_source = "train" if base_value is not None else split
            if base_value is None:
                base_value = _labels_mean(root, shards)
        else:
            acc = ClassificationMetrics(len(keys), binary=task == "binary")
            prior = _train_prior(manifest, len(keys))
            baseline_source = "train" if prior is not None else split

        writer = PredictionWriter(job.predictions, prediction_schema(task, classes, job.prob_names))
        score, restore = make_scorer(model, device)
        try:
            stream_predictions(score, manifest, root, shards, split, batch_size, writer, classes,
                               job.prob_names, acc, base_value, base)
            writer.close()
        except BaseException:
            writer.abort()
            raise
        finally:
            restore()

        spill = _spill_dir(out)
        con = connect(budget, tmp_dir=spill)
        try:
            if isinstance(acc, ClassificationMetrics):
                metrics, baseline = _classification_report(job, con, acc, prior)
            else:
                assert base is not None
                metrics, baseline = _regression_report(job, con, acc, base)
        finally:
            con.close()
            shutil.rmtree(spill, ignore_errors=True)
        _write_json(metrics_path, {
            "task": task, "split": split, "rows": int(acc.n_), "classes": keys,
            "metrics": metrics, "baseline": baseline, "baseline_source": baseline_source,
            "predictions": job.predictions.name, "plots": [p.name for p in job.plot_paths],
            "warnings": job.warnings,
        })

    inputs = {"shards": hash_file(root / "manifest.json")}
    weights = model_hash(model)
    if weights is not None:
        inputs["model"] = weights
    result = StepResult(
        step="evaluate",
        inputs=inputs,
        outputs={"predictions": hash_file(job.predictions), "metrics": hash_file(metrics_path)},
        rows_in=int(acc.n_),
        rows_out=int(acc.n_),
        seconds=meter.seconds,
        peak_rss_bytes=meter.peak_rss_bytes,
        memory_budget_bytes=budget,
        warnings=job.warnings,
        details={
            "metrics": metrics,
            "baseline": baseline,
            "task": task,
            "split": split,
            "classes": keys,
            "baseline_source": baseline_source,
            "predictions": str(job.predictions),
            "plots": [str(p) for p in job.plot_paths],
            "metrics_file": str(metrics_path),
        },
    )
    _log(track, result, split, [job.predictions, metrics_path, *job.plot_paths])
    logger.info("evaluate: %s on %d %s rows in %.2fs", task, acc.n_, split, meter.seconds)
    return result


def _log(track: Any, result: StepResult, split: str, artifacts: list[Path]) -> None:
    if track is None:
        from blase.track import active_run

        track = active_run()
    if track is None:
        return
    track.log_metrics(_scalar_metrics(split, result.details["metrics"])
                      | _scalar_metrics("baseline", result.details["baseline"]))
    for path in artifacts:
        track.log_artifact(path, name=f"evaluate/{path.name}")
