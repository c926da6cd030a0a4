"""The reference profile of a model, and the one-pass binned scan of new data against it.

Every monitored column gets a *key* expression in DuckDB, the same for the reference and for
new data, and a column's distribution is the count of rows per key:

``numeric`` (numbers; dates and times as epoch seconds)
    the index of a fixed-width bin, ``round((x - lo) / width)``. Integers spanning at most
    4,000 values get width 1 from their minimum (a key per value, exact); other columns
    1,000 bins between the reference's 0.1% and 99.9% quantiles, and bins beyond them as far
    as the data goes (up to a million bins either side; farther values share the edge bin).
``categorical`` (text, booleans; at most :data:`MAX_CATEGORIES` values in the reference)
    the value itself; on new data, a value the reference never had counts under
    :data:`NEW_KEY`.
``hashed`` (text with more distinct values, such as ids)
    ``hash(value) % 1024``: a sketch that still sees the mix change.

A reference is profiled with three DuckDB passes over the model's training extract (all
rows of the extracted data, before the split: train, val and test are random parts of one
population): column statistics and quantiles, the counts per key, and a reservoir sample of
up to :data:`SAMPLE_SIZE` rows, which is the whole reference when it is small, so the small-
reference tests (KS, chi-square, z) run on the exact values. New data takes one pass: all
columns' counts at once, plus a random sample of rows for scoring (see
:mod:`blase.profile._scan`).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from blase._duck import sql_ident, sql_quote
from blase._formats import FORMATS, check_format
from blase._fs import write_json_atomic
from blase.errors import MonitorError
from blase.profile._scan import grouped_counts

__all__ = [
    "MAX_CATEGORIES",
    "NEW_KEY",
    "PROFILE_FILE",
    "PROFILE_VERSION",
    "SAMPLE_SIZE",
    "ColumnProfile",
    "CurrentColumn",
    "ReferenceProfile",
    "column_kind",
    "load_profile",
]

logger = logging.getLogger(__name__)

PROFILE_FILE = "reference_profile.json"
PROFILE_VERSION = FORMATS["profile"].current
#: Reference values kept per column (a reservoir sample; all of them when fewer).
SAMPLE_SIZE = 1000
#: Text columns with more distinct values than this are profiled by hash buckets.
MAX_CATEGORIES = 1000
#: Bins between the reference's 0.1% and 99.9% quantiles.
BINS = 1000
#: Integer columns spanning at most this many values get one bin per value.
INTEGER_SPAN = 4000
HASH_BUCKETS = 1024
#: The key under which new data counts a category the reference never had.
NEW_KEY = "\x00new"
_CLAMP = 1_000_000


def column_kind(arrow_type: str) -> str | None:
    """``"numeric"``, ``"datetime"``, ``"categorical"`` or None (not monitored) for a type name."""
    t = arrow_type.lower()
    if t.startswith(("int", "uint", "float", "double", "decimal", "halffloat")):
        return "numeric"
    if t.startswith(("timestamp", "date", "time")):
        return "datetime"
    if t.startswith(("bool", "string", "large_string", "utf8", "large_utf8", "dictionary")):
        return "categorical"
    return None


@dataclass
class ColumnProfile:
    """One column of the reference: its kind, binning, counts per key, nulls and a sample."""

    name: str
    kind: str  # numeric | categorical | hashed
    dtype: str
    rows: int
    nulls: int
    n_unique: int
    counts: dict[Any, int]
    datetime: bool = False
    lo: float = 0.0
    width: float = 1.0
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    sample: list[Any] = field(default_factory=list)
    sample_complete: bool = False

    @property
    def non_null(self) -> int:
        return self.rows - self.nulls

    @property
    def null_rate(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    def value_expr(self, column: str) -> str:
        """SQL of the column's value as profiled (a double, or text)."""
        ident = sql_ident(column)
        if self.datetime:
            return f"CAST(epoch({ident}) AS DOUBLE)"
        if self.kind == "numeric":
            return f"CAST({ident} AS DOUBLE)"
        return f"CAST({ident} AS VARCHAR)"

    def scan_expr(self, column: str) -> str:
        """SQL of what a scan groups the column's rows by: as little work per row as can be.

        The unscaled bin (a rounded double) for numbers, the raw value for categories, the
        bucket for hashed text. :meth:`key_expr` turns each distinct one into the key.
        """
        if self.kind == "numeric":
            return f"round(({self.value_expr(column)} - {self.lo!r}) / {self.width!r})"
        if self.kind == "hashed":
            return f"CAST(hash({self.value_expr(column)}) % {HASH_BUCKETS} AS INTEGER)"
        return sql_ident(column)

    def key_expr(self, scanned: str, enum: str | None = None) -> str:
        """SQL of the key (see the module docstring) of ``scanned``, a :meth:`scan_expr` value.

        Runs once per distinct scanned value, after grouping. ``enum`` (a DuckDB ENUM of the
        reference's categories and :data:`NEW_KEY`) maps categories the reference never had.
        """
        if self.kind == "numeric":
            # least/greatest skip NULLs, so a null value is kept null explicitly
            return (f"CASE WHEN {scanned} IS NULL THEN NULL ELSE "
                    f"CAST(least(greatest({scanned}, -{_CLAMP}), {_CLAMP}) AS INTEGER) END")
        if self.kind == "hashed":
            return scanned
        text = f"CAST({scanned} AS VARCHAR)"
        if enum is None:
            return text
        return (f"CASE WHEN {scanned} IS NULL THEN NULL ELSE "
                f"coalesce(TRY_CAST({text} AS {enum}), {sql_quote(NEW_KEY)}::{enum}) END")

    def key_of(self, values: np.ndarray) -> np.ndarray:
        """Keys of numeric values in numpy (predictions scored in Python)."""
        scaled = np.round((np.asarray(values, dtype=np.float64) - self.lo) / self.width)
        return np.clip(scaled, -_CLAMP, _CLAMP).astype(np.int64)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["counts"] = [[k, v] for k, v in self.counts.items()]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ColumnProfile:
        data = dict(data)
        data["counts"] = {k: int(v) for k, v in data.get("counts", [])}
        return cls(**data)


@dataclass
class CurrentColumn:
    """One column of new data: rows, nulls and counts per key."""

    name: str
    rows: int
    nulls: int
    counts: dict[Any, int]

    @property
    def non_null(self) -> int:
        return self.rows - self.nulls


@dataclass
class ReferenceProfile:
    """What a model was trained and evaluated on, saved as ``reference_profile.json``."""

    rows: int
    columns: dict[str, ColumnProfile]
    label: ColumnProfile | None = None
    prediction: ColumnProfile | None = None
    task: str | None = None
    classes: list[Any] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    created_at: str = ""
    version: int = PROFILE_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "created_at": self.created_at,
            "source": self.source,
            "rows": self.rows,
            "task": self.task,
            "classes": self.classes,
            "metrics": self.metrics,
            "baseline": self.baseline,
            "columns": {k: v.to_json() for k, v in self.columns.items()},
            "label": self.label.to_json() if self.label else None,
            "prediction": self.prediction.to_json() if self.prediction else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReferenceProfile:
        return cls(
            rows=int(data["rows"]),
            columns={k: ColumnProfile.from_json(v) for k, v in data["columns"].items()},
            label=ColumnProfile.from_json(data["label"]) if data.get("label") else None,
            prediction=ColumnProfile.from_json(data["prediction"]) if data.get("prediction") else None,
            task=data.get("task"),
            classes=list(data.get("classes") or []),
            metrics=dict(data.get("metrics") or {}),
            baseline=dict(data.get("baseline") or {}),
            source=data.get("source", ""),
            created_at=data.get("created_at", ""),
            version=check_format("profile", data.get("version", PROFILE_VERSION), PROFILE_FILE),
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the profile as JSON (to a temporary name, then renamed)."""
        path = Path(path)
        write_json_atomic(path, self.to_json(), indent=None, default=_json_default)
        return path

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        data: Any,
        columns: dict[str, str],
        *,
        label: str | None = None,
        task: str | None = None,
        classes: list[Any] | None = None,
        predictions: str | os.PathLike[str] | None = None,
        metrics: dict[str, Any] | None = None,
        baseline: dict[str, Any] | None = None,
        memory: int | str | None = None,
        tmp_dir: str | os.PathLike[str] | None = None,
        seed: int = 42,
    ) -> ReferenceProfile:
        """Profile ``data`` (Parquet file or folder, or an Arrow table / pandas frame).

        Parameters
        ----------
        data:
            The model's training data as extracted (raw columns).
        columns:
            ``{column: arrow type name}`` of the model's raw inputs (its ``input_schema``).
        label, task, classes:
            The label column (profiled when present) and the model's task and classes.
        predictions:
            The evaluate step's ``predictions.parquet`` (its ``prediction`` column is the
            reference prediction distribution).
        metrics, baseline:
            The evaluation's metrics, kept to compare new labelled data with.
        """
        from blase._duck import connect

        con = connect(memory, tmp_dir=tmp_dir)
        try:
            relation, where = _relation(con, data, "reference")
            present = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}
            wanted = {c: t for c, t in columns.items() if column_kind(t) is not None}
            missing = [c for c in wanted if c not in present]
            if missing:
                raise MonitorError(f"{where} lacks column(s) {', '.join(missing)} of the model's inputs",
                                   hint="profile the data the model was trained on")
            if label and label in present:
                wanted_label = {label: "string" if task != "regression" else "double"}
            else:
                wanted_label = {}
            profiles, rows = profile_columns(con, relation, {**wanted, **wanted_label}, seed=seed)
            prediction = None
            if predictions is not None and Path(predictions).is_file():
                pred_rel, _ = _relation(con, predictions, "predictions")
                kind = "double" if task == "regression" else "string"
                pred_profiles, _ = profile_columns(con, pred_rel, {"prediction": kind}, seed=seed)
                prediction = pred_profiles["prediction"]
        finally:
            con.close()
        label_profile = profiles.pop(label) if label and label in wanted_label else None
        return cls(
            rows=rows,
            columns=profiles,
            label=label_profile,
            prediction=prediction,
            task=task,
            classes=list(classes or []),
            metrics={k: v for k, v in (metrics or {}).items() if k != "confusion_matrix"},
            baseline={k: v for k, v in (baseline or {}).items() if k != "confusion_matrix"},
            source=str(data) if isinstance(data, (str, os.PathLike)) else "in-memory table",
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )


def load_profile(package_path: str | os.PathLike[str], *, model: str = "the model") -> ReferenceProfile:
    """Read ``reference_profile.json`` from a model package folder."""
    path = Path(package_path) / PROFILE_FILE
    if not path.is_file():
        raise MonitorError(
            f"{model} has no reference profile ({path} is missing): it was deployed by a Blase "
            "that did not save one",
            hint="redeploy it with this version of Blase: `blase deploy RUN` (or `blase run`), "
            "then monitor the new version",
        )
    try:
        return ReferenceProfile.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise MonitorError(f"{path} is damaged: {exc}", hint="redeploy the model with `blase deploy RUN`") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return str(value)


def _relation(con: Any, data: Any, name: str) -> tuple[str, str]:
    """A FROM expression for Parquet paths or in-memory tables registered on ``con``."""
    if isinstance(data, (str, os.PathLike)):
        p = Path(data)
        if p.is_dir():
            files = sorted(str(f) for f in p.rglob("*.parquet") if not f.name.startswith("."))
        elif p.is_file():
            files = [str(p)]
        else:
            raise MonitorError(f"{p} does not exist", hint="give the extract output (Parquet) of the run")
        if not files:
            raise MonitorError(f"no Parquet files in {p}", hint="give the extract output (Parquet) of the run")
        return f"read_parquet([{', '.join(sql_quote(f) for f in files)}])", str(p)
    con.register(f"__blase_{name}", data)
    return f"__blase_{name}", f"the {name} table"


def _stats_sql(kind: str, value: str) -> list[str]:
    if kind in ("numeric", "datetime"):
        return [f"count({value})", f"approx_count_distinct({value})", f"min({value})", f"max({value})",
                f"avg({value})", f"stddev_pop({value})", f"approx_quantile({value}, [0.001, 0.999])"]
    return [f"count({value})", f"approx_count_distinct({value})"]


def profile_columns(
    con: Any, relation: str, columns: dict[str, str], *, seed: int = 42
) -> tuple[dict[str, ColumnProfile], int]:
    """Profile ``columns`` (``{name: arrow type}``) of ``relation``: three DuckDB passes."""
    kinds = {c: column_kind(t) for c, t in columns.items()}
    kinds = {c: k for c, k in kinds.items() if k is not None}
    protos = {c: ColumnProfile(c, "numeric" if k in ("numeric", "datetime") else "categorical", columns[c],
                               0, 0, 0, {}, datetime=k == "datetime") for c, k in kinds.items()}
    # pass 1: statistics
    aggs = ["count(*)"]
    for c, p in protos.items():
        aggs += _stats_sql(kinds[c], p.value_expr(c))
    row = con.execute(f"SELECT {', '.join(aggs)} FROM {relation}").fetchall()[0]
    rows = int(row[0])
    i = 1
    for p in protos.values():
        p.rows = rows
        p.nulls = rows - int(row[i])
        p.n_unique = int(row[i + 1] or 0)
        if p.kind == "numeric":
            lo, hi, mean, std, qs = row[i + 2 : i + 7]
            i += 7
            p.min, p.max = _num(lo), _num(hi)
            p.mean, p.std = _num(mean), _num(std) or 0.0
            _grid(p, qs)
        else:
            i += 2
            if p.n_unique > MAX_CATEGORIES:
                p.kind = "hashed"
    # pass 2: counts per key, every column in one GROUP BY GROUPING SETS
    counts = grouped_counts(con, relation, {c: (p.scan_expr(c), p.key_expr) for c, p in protos.items()})
    for c, p in protos.items():
        found = counts[c]
        found.pop(None, None)
        p.counts = {_plain(k): int(v) for k, v in sorted(found.items(), key=lambda kv: str(kv[0]))}
    # pass 3: a reservoir sample of rows (all rows when there are few)
    if protos:
        values = ", ".join(f"{p.value_expr(c)} AS {sql_ident(c)}" for c, p in protos.items())
        complete = rows <= SAMPLE_SIZE
        sampling = "" if complete else f" USING SAMPLE reservoir({SAMPLE_SIZE} ROWS) REPEATABLE ({int(seed)})"
        con.execute("SET threads = 1")  # a repeatable reservoir needs one thread
        try:
            table = con.sql(f"SELECT {values} FROM {relation}{sampling}").to_arrow_table()
        finally:
            con.execute("RESET threads")
        for c, p in protos.items():
            col = table[c].drop_null().to_pylist()
            p.sample = col
            p.sample_complete = complete
    return protos, rows


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _plain(key: Any) -> Any:
    return int(key) if isinstance(key, (int, np.integer)) else str(key)


def _grid(p: ColumnProfile, quantiles: Any) -> None:
    """Choose ``lo`` and ``width`` of a numeric column's bins."""
    if p.min is None or p.max is None:
        p.lo, p.width = 0.0, 1.0
        return
    integer = p.dtype.lower().startswith(("int", "uint")) and not p.datetime
    if integer and p.max - p.min <= INTEGER_SPAN:
        # a key per value, counted from the smallest: keys stay small (clamped at +-1e6)
        # however large the values are (ids, codes)
        p.lo, p.width = float(p.min), 1.0
        return
    lo, hi = (float(quantiles[0]), float(quantiles[1])) if quantiles else (p.min, p.max)
    if not hi > lo:
        lo, hi = p.min, p.max
    if not hi > lo:
        p.lo, p.width = float(lo), 1.0
        return
    p.lo, p.width = float(lo), float(hi - lo) / BINS
