"""The schema report: per-column kinds, statistics and suggestions, and the constants that
decide them (see :mod:`blase.schema`)."""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

#: Categorical columns with at most this many distinct values are one-hot encoded.
LOW_CARDINALITY = 20
#: Categorical columns with more values (up to 1,000) keep at most this many one-hot columns,
#: the most frequent values then an "other" column: as many categories as gradient boosting's
#: native categorical support bins (255). Capping at 20 instead loses what a column with a
#: hundred well-populated values (aircraft models, product lines) says about the label.
MANY_CATEGORIES = 255
#: A text column whose mean length is above this is free text, not a category.
TEXT_MEAN_LENGTH = 30
#: A text column with at least this many distinct values per non-null row is an identifier.
TEXT_ID_SHARE = 0.7
#: Minority class share under which the label counts as imbalanced.
IMBALANCE_SHARE = 0.10
#: Share of sampled values beyond 1.5 IQR of the quartiles above which a column has outliers.
OUTLIER_SHARE = 0.02

INT_TYPES = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
}
FLOAT_TYPES = {"FLOAT", "DOUBLE"}
LABEL_NAMES = re.compile(
    r"^(target|label|labels|class|y|outcome|response|churn|churned)$|"
    r"(^|_)(target|label|class|outcome)($|_)",
    re.IGNORECASE,
)
ID_NAMES = re.compile(r"(^|_)(id|uuid|guid|key|index|idx)$|^id_|^(id|uuid|guid)$", re.IGNORECASE)
#: Names of ordered quantities (time, counts of periods): an integer column so named is a
#: feature even when every row has its own value (a year per row of an annual series).
TIME_NAMES = re.compile(r"year|yr|date|time|month|week|day|hour|minute|period|quarter|age|epoch|step",
                        re.IGNORECASE)


def is_int(t: str) -> bool:
    return t in INT_TYPES


def is_num(t: str) -> bool:
    return t in INT_TYPES or t in FLOAT_TYPES or t.startswith("DECIMAL")


def is_time(t: str) -> bool:
    return t.startswith(("DATE", "TIMESTAMP", "TIME"))


def is_text(t: str) -> bool:
    return t == "VARCHAR" or t.startswith("ENUM")


def plain(value: Any) -> Any:
    """A JSON-friendly version of a value from DuckDB."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (_dt.date, _dt.datetime, _dt.time, _dt.timedelta)):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return value


@dataclass
class Suggestion:
    """One proposed action for a column: ``action`` is impute, scale, log1p, encode, datetime or
    drop; ``detail`` the method (median, robust, onehot, ...); ``reason`` a line for people."""

    action: str
    detail: str
    reason: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {"action": self.action, "detail": self.detail, "reason": self.reason}
        if self.params:
            out["params"] = self.params
        return out


@dataclass
class ColumnReport:
    """What :func:`suggest_schema` found about one column."""

    name: str
    dtype: str
    kind: str
    null_share: float
    cardinality: int
    stats: dict[str, Any] = field(default_factory=dict)
    suggestions: list[Suggestion] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def suggestion(self, action: str) -> Suggestion | None:
        return next((s for s in self.suggestions if s.action == action), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "kind": self.kind,
            "null_share": self.null_share,
            "cardinality": self.cardinality,
            "stats": self.stats,
            "suggestions": [s.to_json() for s in self.suggestions],
            "warnings": list(self.warnings),
        }


@dataclass
class SchemaReport:
    """The result of :func:`suggest_schema`."""

    source: str
    rows: int
    sample_rows: int
    label: str | None
    columns: list[ColumnReport]
    label_candidates: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Other ``blase.yaml`` keys the data calls for, by dotted key (``prepare.stratify``);
    #: :func:`blase.schema.write_suggestions` writes them.
    settings: dict[str, Any] = field(default_factory=dict)

    def column(self, name: str) -> ColumnReport:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with stable keys: ``source``, ``rows``, ``sample_rows``, ``label``,
        ``columns``, ``label_candidates``, ``warnings``."""
        return {
            "source": self.source,
            "rows": self.rows,
            "sample_rows": self.sample_rows,
            "label": self.label,
            "columns": [c.to_json() for c in self.columns],
            "label_candidates": list(self.label_candidates),
            "warnings": list(self.warnings),
        }

    def to_transform_config(self) -> list[dict[str, Any]]:
        """The suggestions as ``transform:`` entries of ``blase.yaml``.

        Order: a filter of the rows without a label (when the label has nulls), drop, impute
        (per strategy), datetime, log1p, scale (per method), hash, ordinal, onehot. The label
        column is never transformed. Every numeric feature that reaches the model is scaled,
        the date parts included (named ``{column}_{part}``, the parts the datetime step emits),
        since an unscaled year (~2000) next to standardised columns stalls an MLP. One-hot
        comes last because prepare stores a final one-hot compactly (a code per row instead of
        a float per category); the encoders act on different columns, so their order changes
        nothing else.
        """
        groups: dict[tuple[str, str, str], list[str]] = {}
        extra: dict[tuple[str, str, str], dict[str, Any]] = {}
        order = {"drop": 0, "impute": 1, "datetime": 2, "log1p": 3, "scale": 4, "encode": 5}
        standard = ("scale", "standard", "{}")
        for col in self.columns:
            if col.name == self.label:
                continue
            dropped = col.suggestion("drop") is not None
            for s in col.suggestions:
                if dropped and s.action != "drop":
                    continue
                params = json.dumps(s.params, sort_keys=True)
                key = (s.action, s.detail, params)
                groups.setdefault(key, []).append(col.name)
                extra[key] = s.params
                if s.action == "datetime" and "parts" in s.params:
                    parts = s.params["parts"]
                    groups.setdefault(standard, []).extend(f"{col.name}_{p}" for p in parts)
                    extra[standard] = {}
        steps: list[dict[str, Any]] = []
        if self.label is not None and any(
            c.name == self.label and c.null_share > 0 for c in self.columns
        ):
            from blase._duck import sql_ident

            # rows without a label cannot be learned from (prepare refuses them)
            steps.append({"op": "filter", "where": f"{sql_ident(self.label)} IS NOT NULL"})
        for key in sorted(groups, key=lambda k: (order.get(k[0], 9), k[1] == "onehot", k[1], k[2])):
            action, detail, _ = key
            cols = groups[key]
            if action == "drop":
                step: dict[str, Any] = {"op": "drop", "columns": cols}
            elif action == "impute":
                step = {"op": "impute", "strategy": detail, "columns": cols}
            elif action == "scale":
                step = {"op": "scale", "method": detail, "columns": cols}
            elif action == "log1p":
                step = {"op": "log1p", "columns": cols}
            elif action == "datetime":
                step = {"op": "datetime", "columns": cols}
            elif action == "encode":
                step = {"op": detail, "columns": cols}
            else:  # pragma: no cover - every action above is handled
                continue
            step.update(extra[key])
            steps.append(step)
        return steps
