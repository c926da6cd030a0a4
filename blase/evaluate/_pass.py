"""The streaming pass: score a split's shards a batch at a time, feed the accumulators and
append the predictions to Parquet.

Each shard is memory-mapped and read one batch at a time, so the pass holds a batch of rows
whatever the split's size. Scores are logits; probabilities (float64) are what the Parquet
file stores, and the accumulators see exactly those values, so metrics recomputed from the
file agree with the streamed ones.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blase._fs import AtomicTarget
from blase.errors import BlaseError, PrepareError
from blase.evaluate._errors import EvaluateError
from blase.evaluate._metrics import ClassificationMetrics, RegressionMetrics, probabilities
from blase.prepare import ShardRows

if TYPE_CHECKING:
    import pyarrow as pa

    from blase.prepare import Manifest, ShardInfo

__all__ = ["PredictionWriter", "make_scorer", "model_hash", "prediction_schema", "stream_predictions"]

logger = logging.getLogger(__name__)

#: Rows buffered before a Parquet row group is written.
ROW_GROUP_ROWS = 65_536

Scorer = Callable[[np.ndarray], np.ndarray]


def _ids_path(root: Path, shard: ShardInfo) -> Path:
    named = getattr(shard, "ids_file", None)
    if named:
        return root / named
    stem = shard.file[: -len(".npy")] if shard.file.endswith(".npy") else shard.file
    return root / f"{stem}.ids.npy"


def _resolve_device(torch: Any, device: str | Any) -> Any:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EvaluateError(f"device={device!r} but CUDA is not available",
                            hint="use device='cpu' or device='auto'")
    return dev


def make_scorer(model: Any, device: str | Any) -> tuple[Scorer, Callable[[], None]]:
    """A function from a float32 batch to float64 scores, and one that restores the model."""
    torch = sys.modules.get("torch")  # an nn.Module means torch is already imported
    if torch is not None and isinstance(model, torch.nn.Module):
        dev = _resolve_device(torch, device)
        was_training = model.training
        model.eval()
        model.to(dev)
        param = next(model.parameters(), None)
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32

        def score_module(xb: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                out = model(torch.from_numpy(xb).to(dev, dtype))
            if isinstance(out, (tuple, list)):
                out = out[0]
            return out.detach().to("cpu", torch.float64).numpy()

        return score_module, lambda: model.train(was_training)
    if not callable(model):
        raise EvaluateError(
            f"model is a {type(model).__name__}, which is neither a torch nn.Module nor callable",
            hint="pass an nn.Module, or a function mapping a float32 array [b, d] to scores",
        )

    def score_callable(xb: np.ndarray) -> np.ndarray:
        out = model(xb)
        if isinstance(out, (tuple, list)) and len(out) == 1:  # e.g. onnxruntime's run()
            out = out[0]
        if hasattr(out, "detach"):
            out = out.detach().cpu().numpy()
        return np.asarray(out, dtype=np.float64)

    return score_callable, lambda: None


def model_hash(model: Any) -> str | None:
    from blase.hashing import hash_bytes, hash_config

    torch = sys.modules.get("torch")
    if torch is None or not isinstance(model, torch.nn.Module):
        return None
    parts = []
    for name, t in model.state_dict().items():
        raw = t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
        parts.append([name, str(t.dtype), list(t.shape), hash_bytes(raw.tobytes())])
    return hash_config({"class": type(model).__qualname__, "state": parts})


def _expected_width(task: str, n_classes: int) -> tuple[int, ...]:
    if task == "regression":
        return (1,)
    if task == "binary":
        return (1, 2)
    return (n_classes,)


class PredictionWriter:
    """Appends batches to a Parquet file under a temporary name; renamed on :meth:`close`."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        import pyarrow.parquet as pq

        self.path = path
        self.target = AtomicTarget(path)
        self.writer = pq.ParquetWriter(self.target.tmp, schema, compression="zstd")
        self.pending: list[pa.Table] = []
        self.pending_rows = 0

    def write(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.pending_rows += table.num_rows
        if self.pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self.pending:
            self.writer.write_table(pa.concat_tables(self.pending), row_group_size=max(1, self.pending_rows))
        self.pending, self.pending_rows = [], 0

    def close(self) -> None:
        self._flush()
        self.writer.close()
        self.target.commit()

    def abort(self) -> None:
        try:
            self.writer.close()
        finally:
            self.target.discard()


def _check_output(out: np.ndarray, b: int, widths: tuple[int, ...], task: str, classes: list[Any],
                  where: str) -> np.ndarray:
    if out.ndim == 1:
        out = out[:, None]
    if out.ndim != 2 or out.shape[0] != b:
        raise EvaluateError(
            f"the model returned shape {list(out.shape)} for a batch of {b} rows from {where}",
            hint="the model must return one row of scores per input row: [b, outputs]",
        )
    if out.shape[1] not in widths:
        need = " or ".join(str(w) for w in widths)
        what = "regression" if task == "regression" else f"{task} with {len(classes)} classes {classes}"
        raise EvaluateError(
            f"the model gives {out.shape[1]} output(s) per row, but the task is {what}, "
            f"which needs {need}",
            hint="give the model's last layer 1 output for binary (a logit) or regression, "
            "and one logit per class for multiclass; check it was trained on these shards",
        )
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        raise EvaluateError(
            f"the model gave NaN or infinite outputs for {int(bad.sum())} row(s) of {where}, "
            f"first at batch row {int(np.argmax(bad))}",
            hint="check the model's weights (did training diverge?) and the input features",
        )
    return out


def stream_predictions(
    score: Scorer,
    manifest: Manifest,
    root: Path,
    shards: list[ShardInfo],
    split: str,
    batch_size: int,
    writer: PredictionWriter,
    classes: list[Any],
    prob_names: list[str],
    acc: ClassificationMetrics | RegressionMetrics,
    baseline_value: float | None,
    baseline: RegressionMetrics | None,
) -> None:
    import pyarrow as pa

    task = manifest.task
    widths = _expected_width(task, len(classes))
    class_array = pa.array(classes) if task != "regression" else None
    next_id = 0
    for shard in shards:
        try:
            x = ShardRows.of(root, manifest, shard)
        except PrepareError as exc:
            raise EvaluateError(exc.message, hint=exc.hint) from None
        y = np.load(root / shard.labels_file, mmap_mode="r")
        ids_file = _ids_path(root, shard)
        ids = np.load(ids_file, mmap_mode="r") if ids_file.is_file() else None
        if len(x) != len(y) or (ids is not None and len(ids) != len(x)):
            raise EvaluateError(
                f"shard {root / shard.file} has shape {list(x.shape)} with {len(y)} labels"
                + (f" and {len(ids)} row ids" if ids is not None else "")
                + f"; the manifest says {shard.rows} rows x {manifest.n_features} features",
                hint="the shards were changed after prepare; run prepare again",
            )
        for start in range(0, len(x), batch_size):
            end = min(start + batch_size, len(x))
            b = end - start
            where = f"{shard.file} rows {start}-{end - 1}"
            xb = x[start:end]
            try:
                raw = score(xb)
            except BlaseError:
                raise
            except Exception as exc:
                raise EvaluateError(
                    f"the model failed on a batch of {b} rows x {xb.shape[1]} features from "
                    f"{split}/{where}: {type(exc).__name__}: {exc}",
                    hint=f"the model must take float32 inputs of width {manifest.n_features} "
                    "(the manifest's features) and return logits",
                ) from exc
            out = _check_output(raw, b, widths, task, classes, f"{split}/{where}")
            row_id = (np.asarray(ids[start:end], dtype=np.int64) if ids is not None
                      else np.arange(next_id + start, next_id + end, dtype=np.int64))
            cols: dict[str, Any] = {"row_id": row_id}
            if isinstance(acc, ClassificationMetrics):
                assert class_array is not None
                codes = np.asarray(y[start:end], dtype=np.int64)
                proba = probabilities(task, out)
                pred = acc.update(codes, proba)
                cols["truth"] = class_array.take(pa.array(codes))
                cols["prediction"] = class_array.take(pa.array(pred))
                for j, name in enumerate(prob_names):
                    cols[name] = proba[:, j]
            else:
                truth = np.asarray(y[start:end], dtype=np.float64)
                pred_r = out[:, 0]
                acc.update(truth, pred_r)
                assert baseline is not None and baseline_value is not None
                baseline.update(truth, np.full(b, baseline_value))
                cols["truth"] = truth
                cols["prediction"] = pred_r
            writer.write(pa.table(cols))
        next_id += len(x)


def prediction_schema(task: str, classes: list[Any], prob_names: list[str]) -> pa.Schema:
    import pyarrow as pa

    if task == "regression":
        return pa.schema([("row_id", pa.int64()), ("truth", pa.float64()), ("prediction", pa.float64())])
    try:
        value_type = pa.array(classes).type
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise EvaluateError(
            f"the manifest's classes {classes} do not share one type",
            hint="run prepare again to rewrite the manifest",
        ) from None
    fields = [("row_id", pa.int64()), ("truth", value_type), ("prediction", value_type)]
    return pa.schema(fields + [(n, pa.float64()) for n in prob_names])
