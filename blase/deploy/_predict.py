"""``blase predict``: stream new raw data through a package's transform and model.

The data is read in batches under the memory budget, checked against the package's input
schema (a missing column or a column of another kind is refused before anything is written),
transformed with the saved, fitted transform, and scored by the torch model (or its ONNX
export). The output is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from blase._fs import AtomicTarget, disk_guard
from blase.cloud import is_remote
from blase.deploy._package import DeployError, ModelPackage
from blase.deploy._runner import model_runner
from blase.project import Project

__all__ = [
    "BatchNotes", "BatchScorer", "PredictResult", "check_input_schema", "features_matrix", "fill_unimputed", "predict", "scores_to_columns",
    "training_means",
]

logger = logging.getLogger(__name__)


@dataclass
class PredictResult:
    model: str
    version: str
    rows: int
    output: str
    seconds: float = 0.0
    peak_rss_bytes: int | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _family(arrow_type: str) -> str:
    t = arrow_type.lower()
    if t.startswith(("int", "uint", "float", "double", "decimal", "halffloat")):
        return "number"
    if t.startswith("bool"):
        return "boolean"
    if t.startswith(("timestamp", "date", "time")):
        return "datetime"
    if t.startswith(("string", "large_string", "utf8", "large_utf8", "dictionary")):
        return "text"
    if t == "null":
        return "null"
    if t.startswith(("list<", "large_list<", "struct<")):
        return t.split("<")[0]  # nested JSON: the transform casts the fields (a missing one is null)
    return t


def check_input_schema(expected: dict[str, str], schema: Any, *, source: str, label: str | None,
                       key: str | None = None) -> list[str]:
    """Refuse data whose columns do not match; return notes (extra columns ignored; the label
    and the key, which predictions carry, are not extra)."""
    found = {f.name: str(f.type) for f in schema}
    missing = [c for c in expected if c not in found]
    if missing:
        raise DeployError(
            f"{source} is missing column(s) {', '.join(map(repr, missing))} that the model needs",
            hint=f"the model was trained on: {', '.join(expected)}",
        )
    wrong = []
    for col, want in expected.items():
        got = found[col]
        fw, fg = _family(want), _family(got)
        if fg != fw and fg != "null" and not (fw == "number" and fg == "boolean"):
            wrong.append(f"{col!r} is {got} but the model was trained on {want}")
    if wrong:
        raise DeployError(
            f"{source}: " + "; ".join(wrong),
            hint="fix the column's values or cast it (e.g. data.dtypes in blase.yaml) and retry",
        )
    extra = [c for c in found if c not in expected and c not in (label, key)]
    return [f"ignored {len(extra)} column(s) the model does not use: {', '.join(extra)}"] if extra else []


def training_means(package: Any, transform: Any) -> dict[str, float]:
    """Training means of the numeric raw columns no impute op of the package's transform fills.

    They come from the package's reference profile (the training data, profiled at deploy);
    empty for a package without one.
    """
    path = Path(package.path) / "reference_profile.json"
    try:
        columns = json.loads(path.read_text(encoding="utf-8")).get("columns", {})
    except (OSError, ValueError, AttributeError):
        return {}
    covered = {c for op in transform.operations if op.op_name == "impute"
               for c in (getattr(op, "columns_", None) or [])}
    return {name: (Instant if col.get("datetime") else float)(col["mean"]) for name, col in columns.items()
            if isinstance(col, dict) and col.get("kind") == "numeric"
            and col.get("mean") is not None and name not in covered}


class Instant(float):
    """A training mean of a date or time column, in seconds since 1970 (as the reference profile
    keeps it), shown as a date."""

    def __format__(self, spec: str) -> str:
        import datetime as dt

        return dt.datetime.fromtimestamp(float(self), dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _fill_value(col_type: Any, mean: float) -> Any:
    """``mean`` as a scalar of ``col_type`` (a number, or a date/time from seconds since 1970);
    None for a type no mean fits."""
    import pyarrow as pa

    if pa.types.is_integer(col_type):
        return pa.scalar(round(mean)).cast(col_type)
    if pa.types.is_floating(col_type):
        return pa.scalar(mean).cast(col_type)
    if isinstance(mean, Instant) and pa.types.is_date(col_type):
        return pa.scalar(round(mean / 86400), pa.int32()).cast(pa.date32()).cast(col_type)
    if isinstance(mean, Instant) and pa.types.is_timestamp(col_type):
        per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[col_type.unit]
        return pa.scalar(round(mean * per_second), pa.int64()).cast(col_type)
    return None


def fill_unimputed(table: Any, means: dict[str, float]) -> tuple[Any, dict[str, int]]:
    """Fill nulls of numeric (and date/time) columns no impute op covers with their training mean.

    Training saw no missing value there (or it would have needed an impute op), so the model
    cannot take one; the mean is what ``impute: mean`` would have learned. Returns the table and
    the count filled per column.
    """
    import pyarrow.compute as pc

    filled: dict[str, int] = {}
    for name, mean in means.items():
        if name not in table.column_names or not table[name].null_count:
            continue
        col = table[name]
        value = _fill_value(col.type, mean)
        if value is None:
            continue
        filled[name] = col.null_count
        table = table.set_column(table.column_names.index(name), name, pc.fill_null(col, value))
    return table, filled


def _tensor_sources(table: Any, features: list[str]) -> dict[str, tuple[str, int]]:
    """Features that are a value of one of ``table``'s tensor columns (``px_00012`` of a
    binary ``px``): feature -> (column, byte)."""
    from blase.prepare import is_tensor_type

    owners = [f.name for f in table.schema if is_tensor_type(str(f.type)) and f.name not in features]
    out: dict[str, tuple[str, int]] = {}
    for f in features:
        for c in owners:
            if f.startswith(c + "_") and f[len(c) + 1:].isdigit():
                out[f] = (c, int(f[len(c) + 1:]))
    return out


def features_matrix(table: Any, features: list[str], *, source: str = "the data",
                    first_row: int = 0) -> np.ndarray:
    """The float32 feature matrix of a transformed Arrow table, in manifest order (a tensor
    column stands for its values' features, as in Prepare). ``first_row`` is the row_id of the
    table's first row, for errors."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from blase.prepare import tensor_block

    tensors = _tensor_sources(table, features)
    missing = [f for f in features if f not in table.column_names and f not in tensors]
    if missing:
        raise DeployError(
            f"after the transform, {source} lacks feature(s) {', '.join(missing)}",
            hint="the data differs from the training data in a way the transform cannot absorb",
        )
    out = np.empty((table.num_rows, len(features)), dtype=np.float32)
    blocks: dict[str, np.ndarray] = {}
    for j, name in enumerate(features):
        if name in tensors:
            column, byte = tensors[name]
            if column not in blocks:
                try:
                    blocks[column] = tensor_block(table[column])
                except ValueError as exc:
                    raise DeployError(f"tensor column {column!r} of {source}: {exc}",
                                      hint="decode the files with the options the model was trained "
                                           "with (the package records them)") from None
            if byte >= blocks[column].shape[1]:
                raise DeployError(f"tensor column {column!r} of {source} has {blocks[column].shape[1]} values "
                                  f"per row; the model needs feature {name!r}",
                                  hint="decode the files with the options the model was trained with")
            out[:, j] = blocks[column][:, byte]
            continue
        col = table[name]
        nulls = col.null_count
        if nulls:
            raise DeployError(
                f"feature {name!r} has {nulls} missing value(s) in {source} after the transform; "
                "the model never saw missing values there",
                hint=f"add an impute op for {name!r} in blase.yaml and retrain, or fill the values",
            )
        if pa.types.is_boolean(col.type):
            col = pc.cast(col, pa.int8())
        with np.errstate(over="ignore", invalid="ignore"):
            out[:, j] = col.to_numpy(zero_copy_only=False)
        _refuse_non_finite(out[:, j], name, source, first_row)
    return out


def _refuse_non_finite(values: np.ndarray, name: str, source: str, first_row: int) -> None:
    """A model scores an infinite or NaN input as NaN, which would be written as a prediction
    (the first class, NaN probabilities): refuse, naming the feature and the first row."""
    bad = ~np.isfinite(values)
    if bad.any():
        raise DeployError(
            f"feature {name!r} is infinite or NaN in {int(bad.sum())} row(s) of {source} after the "
            f"transform (first at row_id {first_row + int(np.argmax(bad))}): the model cannot score them",
            hint=f"fix those rows of {name!r} ('inf', 'nan', or a number too large for float32, "
            "about 3.4e38, in the data or after scaling), or leave them out",
        )


def package_features(package: Any, transform: Any, table: Any, *, source: str = "the data") -> np.ndarray:
    """The float32 model inputs of raw rows ``table``: the package's input columns, nulls no
    impute covers filled with the training means, through the fitted ``transform``."""
    inputs = [c for c in package.input_schema if c in table.column_names]
    filled, _ = fill_unimputed(table.select(inputs), training_means(package, transform))
    return features_matrix(transform.apply(filled), package.features, source=source)


def scores_to_columns(task: str, scores: np.ndarray, classes: list[Any]) -> dict[str, Any]:
    """Turn model outputs (logits) into prediction and probability columns."""
    scores = np.asarray(scores, dtype=np.float64)
    if task == "regression":
        return {"prediction": scores.reshape(-1)}
    if task == "binary":
        logit = scores.reshape(-1)
        p1 = 1.0 / (1.0 + np.exp(-logit))
        codes = (p1 >= 0.5).astype(np.int64)
        probs = np.column_stack([1.0 - p1, p1])
    else:
        z = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(z)
        probs = e / e.sum(axis=1, keepdims=True)
        codes = probs.argmax(axis=1)
    values = np.asarray(classes, dtype=object)
    out: dict[str, Any] = {"prediction": values[codes].tolist()}
    for i, c in enumerate(classes):
        out[f"prob_{c}"] = probs[:, i]
    return out


@dataclass
class BatchNotes:
    """What scoring changed in the data: unseen categories and means filled in, per column."""

    unseen: dict[str, int] = field(default_factory=dict)
    filled: dict[str, int] = field(default_factory=dict)

    def add(self, other: BatchNotes) -> None:
        for mine, theirs in ((self.unseen, other.unseen), (self.filled, other.filled)):
            for col, n in theirs.items():
                mine[col] = mine.get(col, 0) + int(n)

    def messages(self, means: dict[str, float]) -> list[str]:
        return [
            f"{n:,} row(s) of column {col!r} had a category never seen in training "
            "(encoded as the transform's unknown/other value)"
            for col, n in self.unseen.items()
        ] + [
            f"{n:,} missing value(s) of column {col!r} filled with its training mean {means[col]:.6g}: "
            "training had none there, so no impute op covers it (add `op: impute` for it in blase.yaml "
            "and retrain to choose the fill)"
            for col, n in self.filled.items()
        ]


class BatchScorer:
    """A package's fitted transform and model, loaded once, scoring Arrow tables of raw rows.

    ``blase predict`` feeds it the batches of a file; ``blase serve`` the rows of each request.
    Safe to share between threads: the transform (whose last apply report is per call) runs
    under a lock, the model outside it.
    """

    def __init__(self, package: ModelPackage, *, use_onnx: bool = False) -> None:
        self.package = package
        self.transform = package.load_transform()
        self.means = training_means(package, self.transform)
        self.run = model_runner(package, use_onnx=use_onnx)
        self._lock = threading.Lock()

    def check(self, schema: Any, *, source: str) -> list[str]:
        """Refuse data whose columns the model cannot take (see :func:`check_input_schema`)."""
        return check_input_schema(self.package.input_schema, schema, source=source, label=self.package.label,
                                  key=self.package.key)

    def score(self, table: Any, *, source: str, first_row: int = 0) -> tuple[Any, BatchNotes]:
        """``row_id``, ``truth`` (when the label is there), ``prediction`` and ``prob_*`` columns."""
        import pyarrow as pa

        package = self.package
        notes = BatchNotes()
        truth = table[package.label] if package.label in table.column_names else None
        keep = [c for c in package.input_schema if c in table.column_names]
        with self._lock:
            inputs, notes.filled = fill_unimputed(table.select(keep), self.means)
            transformed = self.transform.apply(inputs)
            report = getattr(self.transform, "last_apply_report", None)
            for counts in (report.unseen.values() if report is not None else ()):
                notes.add(BatchNotes(unseen=dict(counts)))
        X = features_matrix(transformed, package.features, source=source, first_row=first_row)
        cols: dict[str, Any] = {"row_id": np.arange(first_row, first_row + len(X), dtype=np.int64)}
        if package.key is not None and package.key in table.column_names:
            cols[package.key] = table[package.key]
        if truth is not None:
            cols["truth"] = truth
        cols |= scores_to_columns(package.task, self.run(X), package.classes)
        return pa.table(cols), notes


def predict(
    project: Project,
    model: str | ModelPackage,
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    memory: int | str | None = None,
    use_onnx: bool = False,
) -> PredictResult:
    """Score ``data`` with a deployed model and write ``out`` (``.parquet`` or ``.csv``)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from blase.deploy._registry import resolve_model
    from blase.extract import Extract
    from blase.steps import measure_step

    package = model if isinstance(model, ModelPackage) else resolve_model(project, model)
    out = Path(out)
    if out.suffix not in (".parquet", ".csv"):
        raise DeployError(f"--out {out} must end in .parquet or .csv")
    if out.is_dir():  # --force replaces a file, never a folder
        raise DeployError(f"--out {out} is a folder; predictions are written to a file",
                          hint=f"name a file, e.g. --out {out.with_suffix('')}-predictions{out.suffix}")
    data_path = str(data) if is_remote(data) else Path(data)
    if isinstance(data_path, Path) and not data_path.is_absolute() and not data_path.exists():
        data_path = project.root / data_path
    source = str(data)
    extract = Extract.like_training(str(data_path), package.info.get("extract_options"), project=project)
    notes = check_input_schema(package.input_schema, extract.schema(), source=source, label=package.label,
                               key=package.key)
    scorer = BatchScorer(package, use_onnx=use_onnx)
    out.parent.mkdir(parents=True, exist_ok=True)
    target = AtomicTarget(out)
    tmp = target.tmp
    writer = None
    rows = 0
    changed = BatchNotes()
    try:
        with measure_step() as meter, disk_guard("the predictions", out, DeployError):
            for batch in extract.batches(memory=memory):
                result, batch_notes = scorer.score(pa.Table.from_batches([batch]), source=source, first_row=rows)
                changed.add(batch_notes)
                if writer is None:
                    writer = (pq.ParquetWriter(tmp, result.schema) if out.suffix == ".parquet"
                              else pacsv.CSVWriter(tmp, result.schema))
                writer.write_table(result)
                rows += result.num_rows
            if writer is None:
                raise DeployError(f"{source} has no rows to predict")
            writer.close()
            writer = None
            target.commit()
    finally:
        if writer is not None:
            with contextlib.suppress(OSError):  # what went wrong is already on its way up
                writer.close()
        target.discard()
    warnings = notes + changed.messages(scorer.means)
    return PredictResult(package.name, package.version, rows, str(out), meter.seconds,
                         meter.peak_rss_bytes, warnings)
