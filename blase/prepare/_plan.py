"""Prepare's plan: the checks and counts that run before any shard is written.

One aggregate query gives the row count, nulls (and NaNs) per feature and in the label, and
the label's approximate distinct count; classification adds the label's classes and their
counts (``GROUP BY``). Every problem found here is a :class:`~blase.errors.PrepareError` that
names the column and the fix, before a byte of output exists.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from blase._duck import sql_ident
from blase._labels import label_variants, variants_message
from blase.errors import PrepareError
from blase.prepare._tensor import is_tensor_type, tensor_feature_names

if TYPE_CHECKING:
    from blase.prepare._feed import Feed
    from blase.prepare._prepare import Prepare

__all__ = ["MAX_CLASSES_INTEGER", "Plan", "TaskName", "class_key", "fixed_classes", "infer_task", "make_plan"]

#: An integer label with at most this many distinct values is taken as classification.
MAX_CLASSES_INTEGER = 20

_INT_TYPES = {
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
    "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
}  # fmt: skip
_FLOAT_TYPES = {"FLOAT", "DOUBLE"}

TaskName = Literal["classification", "binary", "multiclass", "regression"]


def _is_numeric(dtype: str) -> bool:
    return dtype in _INT_TYPES or dtype in _FLOAT_TYPES or dtype.startswith("DECIMAL")


def _kind_hint(column: str, dtype: str) -> str:
    if dtype in ("VARCHAR", "ENUM") or dtype.startswith("ENUM"):
        return (
            f"feature '{column}' is text; add an `onehot` or `ordinal` transform for it "
            "(blase.yaml transform:)"
        )
    if dtype.startswith(("DATE", "TIMESTAMP", "TIME")):
        return (
            f"feature '{column}' is a {dtype}; add a `datetime` transform that turns it into "
            "numbers (blase.yaml transform:)"
        )
    return (
        f"feature '{column}' has type {dtype}, which is not a number; cast it or drop it "
        "(blase.yaml transform: `cast` or `drop`)"
    )


def class_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class Plan:
    """What the checks found: the features in order, rows kept and dropped (null labels), the
    task, and the classes with their row counts (classification)."""

    files: list[Path]
    columns: dict[str, str]
    features: list[str]
    rows: int
    rejected: int
    task: str
    classes: list[Any]
    class_counts: list[int]
    #: Warnings for the step's record (label values that differ only by whitespace or case).
    warnings: list[str] = field(default_factory=list)
    #: Each tensor column and the positions (in :attr:`features`) of its values.
    tensors: dict[str, list[int]] = field(default_factory=dict)


def _missing(name: str, role: str, columns: dict[str, str], where: str) -> PrepareError:
    close = difflib.get_close_matches(name, list(columns), n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"columns are: {', '.join(columns)}"
    return PrepareError(f"{role} column '{name}' is not in {where}", hint=hint)

def make_plan(prep: Prepare, con: Any, files: list[Path], feed: Feed, where: str, *,
              imputed: frozenset[str] = frozenset()) -> Plan:
    """The checked plan of a prepare run; ``imputed``: the columns an impute op fills."""
    columns = feed.columns
    relation = feed.relation
    if prep.label not in columns:
        raise _missing(prep.label, "label", columns, where)
    if prep.key is not None and prep.key not in columns:
        raise _missing(prep.key, "key", columns, where)
    if prep.features is None:
        features = [c for c in columns if c not in (prep.label, prep.key)]
    else:
        features = _collapse_tensor_names(list(prep.features), columns)
        for f in features:
            if f not in columns:
                raise _missing(f, "feature", columns, where)
        if prep.label in features:
            raise PrepareError(
                f"the label '{prep.label}' is also listed as a feature",
                hint="remove it from prepare.features",
            )
    if not features:
        raise PrepareError(
            f"{where} has no feature columns besides the label '{prep.label}'",
            hint="check the transform step's output",
        )
    tensor_columns = [f for f in features if is_tensor_type(columns[f])]
    for f in features:
        dtype = columns[f]
        if not (_is_numeric(dtype) or dtype == "BOOLEAN" or f in tensor_columns):
            raise PrepareError(
                _kind_hint(f, dtype).split("; ")[0] + f" in {where}",
                hint=_kind_hint(f, dtype).split("; ", 1)[-1],
            )

    label_type = columns[prep.label]
    aggs = ["count(*)", f"count({sql_ident(prep.label)})"]
    # A final one-hot's columns are computed while streaming, never null: not counted.
    features_in_sql = [f for f in features if f not in feed.expanded]
    for f in features_in_sql:
        aggs.append(f"count({sql_ident(f)})")
    float_feats = [f for f in features_in_sql if columns[f] in _FLOAT_TYPES]
    for f in float_feats:
        aggs.append(f"count(*) FILTER (WHERE isnan({sql_ident(f)}))")
    for f in float_feats:
        aggs.append(f"count(*) FILTER (WHERE isinf({sql_ident(f)}))")
    for f in tensor_columns:
        aggs += [f"min(octet_length({sql_ident(f)}))", f"max(octet_length({sql_ident(f)}))"]
    if prep.key is not None:
        aggs.append(f"count({sql_ident(prep.key)})")
    want_distinct = label_type in _INT_TYPES and prep.task is None
    if want_distinct:
        aggs.append(f"approx_count_distinct({sql_ident(prep.label)})")
    row = con.execute(f"SELECT {', '.join(aggs)} FROM {relation}").fetchall()[0]
    total, label_count = int(row[0]), int(row[1])
    n_sql = len(features_in_sql)
    counts = row[2 : 2 + n_sql]
    n_float = len(float_feats)
    nans = row[2 + n_sql : 2 + n_sql + n_float]
    infs = row[2 + n_sql + n_float : 2 + n_sql + 2 * n_float]
    infinite = {f: int(n) for f, n in zip(float_feats, infs, strict=True) if int(n)}
    if infinite:
        listed = "; ".join(f"'{f}' has {n:,} infinite value(s)" for f, n in infinite.items())
        first = next(iter(infinite))
        raise PrepareError(
            f"features with infinite values in {where} ({total:,} rows): {listed} (from 'inf' "
            "in the data, a number too large for a DOUBLE such as 1e400, or a transform such "
            "as log1p of -1)",
            hint=f"drop those rows with `- op: filter` and `where: \"isinf({first}) IS NOT TRUE\"` in "
            "blase.yaml's transform:, or `- op: clip` the column; impute fills only nulls and NaN",
        )
    missing = {f: total - int(c) for f, c in zip(features_in_sql, counts, strict=False) if int(c) != total}
    nan_counts = {f: int(n) for f, n in zip(float_feats, nans, strict=False) if int(n)}
    problems = [f"'{f}' has {n:,} nulls" for f, n in missing.items()]
    problems += [f"'{f}' has {n:,} NaNs" for f, n in nan_counts.items()]
    if problems:
        covered = sorted((set(missing) | set(nan_counts)) & imputed)
        if covered:
            hint = (
                f"an impute covers {', '.join(repr(c) for c in covered)}, so a later transform "
                "operation made these values (e.g. log1p below -1, a sql expression, a cast "
                "with errors: null): fix that operation, or move the impute after it"
            )
        else:
            hint = ("add an `impute` transform for these columns (blase.yaml transform:), "
                    "or a `filter` that drops the rows")
        raise PrepareError(
            f"features with missing values in {where} ({total:,} rows): " + "; ".join(problems),
            hint=hint,
        )
    widths = _tensor_widths(tensor_columns, row[2 + n_sql + 2 * n_float:], where)
    if prep.key is not None:
        key_count = int(row[2 + n_sql + 2 * n_float + 2 * len(tensor_columns)])
        if key_count != total:
            raise PrepareError(
                f"key column '{prep.key}' has {total - key_count:,} null values in {where}",
                hint="every row needs a key to be split by it: fill the key, filter those rows, "
                "or split by row position (no key)",
            )
    null_labels = total - label_count
    if null_labels and not prep.drop_null_label:
        raise PrepareError(
            f"label column '{prep.label}' has {null_labels:,} null values in {where} "
            f"({total:,} rows)",
            hint='add a `filter` transform (where: "'
            + prep.label
            + ' IS NOT NULL") to blase.yaml, impute the label, or drop those rows with '
            "`prepare: {drop_null_label: true}` in blase.yaml "
            "(once: `blase run --set prepare.drop_null_label=true`)",
        )
    if label_count == 0:
        raise PrepareError(
            f"{where} has no rows with a label", hint="check the extract and transform steps"
        )

    task = infer_task(prep, label_type, int(row[-1]) if want_distinct else None)
    classes: list[Any] = []
    class_counts: list[int] = []
    if task != "regression":
        lab = sql_ident(prep.label)
        pairs = con.execute(
            f"SELECT {lab}, count(*) FROM {relation} WHERE {lab} IS NOT NULL GROUP BY {lab}"
        ).fetchall()
        pairs.sort(key=lambda p: p[0])
        classes = [p[0] for p in pairs]
        class_counts = [int(p[1]) for p in pairs]
        if prep.classes is not None:
            classes, class_counts = fixed_classes(prep, pairs, where)
        elif (
            prep.task is None
            and label_type in _INT_TYPES
            and len(classes) > MAX_CLASSES_INTEGER
        ):
            task = "regression"  # approx_count_distinct undercounted; exact count decides
            classes, class_counts = [], []
        elif len(classes) < 2:
            raise PrepareError(
                f"label '{prep.label}' has a single class ({classes[0]!r}) in {where}",
                hint="a classifier needs at least two classes; check the label column and filters",
            )
        elif task == "binary" and len(classes) != 2:
            raise PrepareError(
                f"task='binary' but label '{prep.label}' has {len(classes)} classes",
                hint="use task='multiclass' or None",
            )
        elif task in ("classification", "multiclass"):
            task = "binary" if len(classes) == 2 and task == "classification" else "multiclass"
    warnings = []
    variants = label_variants(classes)
    if variants:
        warnings.append(variants_message(prep.label, variants, where))
    if prep.stratify and task == "regression":
        raise PrepareError(
            f"stratify=True needs a classification label, but '{prep.label}' ({label_type}) is "
            "taken as a regression target",
            hint="turn stratify off, or pass task='classification'",
        )
    features, columns, tensors = _expand_tensors(features, columns, widths)
    return Plan(
        files,
        columns,
        features,
        total - (null_labels if prep.drop_null_label else 0),
        null_labels if prep.drop_null_label else 0,
        task,
        classes,
        class_counts,
        warnings,
        tensors,
    )


def _collapse_tensor_names(features: list[str], columns: dict[str, str]) -> list[str]:
    """Explicit features (a deployed model's, for ``blase update``) name a tensor column's
    values (``px_00000``...): each run of them becomes the column again."""
    out: list[str] = []
    tensors = [c for c, t in columns.items() if is_tensor_type(t)]
    for f in features:
        owner = next((c for c in tensors if f.startswith(c + "_") and f[len(c) + 1:].isdigit()), None)
        if f not in columns and owner is not None:
            if not out or out[-1] != owner:
                out.append(owner)
        else:
            out.append(f)
    return out


def _tensor_widths(tensors: list[str], lengths: Any, where: str) -> dict[str, int]:
    """Bytes per row of each tensor column (every row must have as many)."""
    widths: dict[str, int] = {}
    for k, name in enumerate(tensors):
        low, high = lengths[2 * k], lengths[2 * k + 1]
        if low is None or low != high or not low:
            raise PrepareError(
                f"feature '{name}' is a binary (tensor) column whose values have {low} to {high} bytes "
                f"in {where}; a tensor feature needs the same number of bytes in every row",
                hint="decode the files to one size (the images/audio sources' size options), or drop the "
                "column (blase.yaml transform: `drop`)",
            )
        widths[name] = int(low)
    return widths


def _expand_tensors(features: list[str], columns: dict[str, str],
                    widths: dict[str, int]) -> tuple[list[str], dict[str, str], dict[str, list[int]]]:
    """Features with each tensor column replaced by its values' names, their types, and the
    positions of each tensor column's values."""
    if not widths:
        return features, columns, {}
    out: list[str] = []
    types = dict(columns)
    tensors: dict[str, list[int]] = {}
    for f in features:
        if f in widths:
            names = tensor_feature_names(f, widths[f])
            tensors[f] = list(range(len(out), len(out) + len(names)))
            out += names
            types.update(dict.fromkeys(names, "UTINYINT"))
        else:
            out.append(f)
    return out, types, tensors

def fixed_classes(prep: Prepare, pairs: list[Any], where: str) -> tuple[list[Any], list[int]]:
    """The fixed ``classes`` and the rows of each in the data (0 for an absent class)."""
    found = {class_key(value): int(n) for value, n in pairs}
    known = [class_key(c) for c in prep.classes or []]
    unknown = sorted(set(found) - set(known))
    if unknown:
        raise PrepareError(
            f"label '{prep.label}' has value(s) {', '.join(map(repr, unknown[:5]))} in {where} "
            f"that are not among the fixed classes {list(prep.classes or [])}",
            hint="a model keeps its classes; drop those rows or retrain from scratch",
        )
    return list(prep.classes or []), [found.get(k, 0) for k in known]

def infer_task(prep: Prepare, label_type: str, approx_distinct: int | None) -> str:
    if prep.task == "regression":
        if not (_is_numeric(label_type) or label_type == "BOOLEAN"):
            raise PrepareError(
                f"task='regression' needs a numeric label, but '{prep.label}' is {label_type}",
                hint="use task='classification', or cast the label",
            )
        return "regression"
    if prep.task is not None:
        return prep.task
    if label_type in _FLOAT_TYPES or label_type.startswith("DECIMAL"):
        return "regression"
    if label_type in _INT_TYPES:
        # approx_count_distinct can be a little off: let the exact GROUP BY decide near the edge
        return (
            "classification"
            if (approx_distinct or 0) <= MAX_CLASSES_INTEGER * 2
            else "regression"
        )
    return "classification"
