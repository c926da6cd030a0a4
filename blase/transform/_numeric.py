"""The numeric operations: impute, scale (standard, min-max, robust), clip and log1p.

They return ``float64`` columns, as scikit-learn does, and keep the column order. Impute,
scale and clip learn their statistics out of core (see ``_stats``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from blase._duck import sql_ident
from blase.errors import TransformError
from blase.transform._base import (
    Operation,
    SQLStage,
    aliased,
    duck_type,
    is_numeric,
    is_string,
    json_scalar,
    sql_literal,
)
from blase.transform._ops import F64, StatelessOperation
from blase.transform._stats import exact_quantiles_many, moments, top_values

__all__ = ["Clip", "Impute", "Log1p", "Scale"]

logger = logging.getLogger(__name__)


def _f64(expr_column: str) -> str:
    return f"CAST({sql_ident(expr_column)} AS DOUBLE)"


# --------------------------------------------------------------------------- numeric


class Impute(Operation):
    """Fill nulls, and NaN in float columns, with a statistic learned at fit time
    (``statistics_``; NaN counts as missing there too, as in scikit-learn's SimpleImputer).

    Parameters
    ----------
    strategy:
        ``"mean"``, ``"median"`` (exact, out-of-core; numeric columns, result ``float64``),
        ``"most_frequent"`` (ties go to the smallest value, as in scikit-learn) or
        ``"constant"`` (``value``); the last two keep the column's type.
    value:
        The fill value for ``"constant"``, and for all-null columns when
        ``all_null="fill"`` (default 0, or ``"missing"`` for strings).
    columns:
        Columns to impute; ``None``: every numeric column (mean, median, numeric
        ``value``), every numeric and string column (most_frequent), or every string
        column (a string ``value``), except the transform's excluded columns.
    all_null:
        What to do with a column that has no values at fit time, so no mean, median or
        mode: ``"error"`` (default: a :class:`~blase.errors.TransformError` naming it) or
        ``"fill"`` (fill with ``value``, logged and reported as a warning).
    """

    op_name: ClassVar[str] = "impute"
    STRATEGIES: ClassVar[tuple[str, ...]] = ("mean", "median", "most_frequent", "constant")

    def __init__(
        self,
        strategy: str = "mean",
        value: Any = None,
        columns: Sequence[str] | None = None,
        all_null: str = "error",
    ) -> None:
        self.strategy = strategy
        self.value = value
        self.columns = columns
        self.all_null = all_null

    def _check_params(self) -> None:
        if self.strategy not in self.STRATEGIES:
            raise TransformError(f"impute: unknown strategy {self.strategy!r}",
                                 hint=f"use one of {', '.join(self.STRATEGIES)}")
        if self.strategy == "constant" and self.value is None:
            raise TransformError("impute: strategy 'constant' needs a value", hint="add value: 0")
        if self.all_null not in ("error", "fill"):
            raise TransformError(f"impute: all_null must be 'error' or 'fill', not {self.all_null!r}")

    def _kind(self) -> str:
        if self.strategy in ("mean", "median"):
            return "numeric"
        return "string" if isinstance(self.value, str) else "numeric"  # constant

    def fit_sql(self, con, relation, schema, *, exclude=()):  # type: ignore[no-untyped-def]
        self._check_params()
        if self.strategy == "most_frequent":  # any type; by default numbers and strings
            cols = self.resolve_columns(schema, exclude) if self.columns is not None else [
                f.name for f in schema
                if f.name not in exclude and (is_numeric(f.type) or is_string(f.type))
            ]
        else:
            cols = self.resolve_columns(schema, exclude, kind=self._kind())
        stats: dict[str, Any] = {}
        if self.strategy == "mean":
            stats = {c: m["mean"] for c, m in moments(con, relation, cols).items()}
        elif self.strategy == "median":
            stats = {c: q[0] for c, q in exact_quantiles_many(con, relation, cols, [0.5]).items()}
        elif self.strategy == "most_frequent":
            for c in cols:
                top = top_values(con, relation, c, 1)
                stats[c] = top[0][0] if top else None
        else:
            stats = {c: self.value for c in cols}
        for c, v in stats.items():
            if v is None:
                stats[c] = self._all_null_fill(c, schema.field(c).type)
            elif self.strategy in ("mean", "median"):
                stats[c] = float(v)
            else:
                stats[c] = self._typed(c, v, schema.field(c).type)
        self.columns_ = cols
        self.statistics_ = stats
        return self

    def _all_null_fill(self, column: str, type_: pa.DataType) -> Any:
        if self.all_null == "error":
            raise TransformError(
                f"impute ({self.strategy}): column {column!r} has only nulls, so it has no "
                f"{self.strategy.replace('_', ' ')}",
                hint="drop the column (op: drop), impute it with strategy: constant, or set "
                "params: {all_null: fill} to fill it with 'value' (default 0)",
            )
        fill = self.value if self.value is not None else ("missing" if is_string(type_) else 0)
        self._note(f"impute ({self.strategy}): column {column!r} has only nulls; filled with {fill!r}")
        if self.strategy in ("mean", "median"):
            return float(fill)
        return self._typed(column, fill, type_)

    @staticmethod
    def _typed(column: str, value: Any, type_: pa.DataType) -> Any:
        try:
            return json_scalar(pa.scalar(value).cast(type_))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise TransformError(
                f"impute: value {value!r} does not fit column {column!r} of type {type_} ({exc})",
                hint="give a value of the column's type",
            ) from None

    def _float_out(self) -> bool:
        return self.strategy in ("mean", "median")

    def apply(self, table: pa.Table) -> pa.Table:
        self.check_fitted()
        for c in self.columns_:
            i = table.schema.get_field_index(c)
            col = table.column(i)
            fill = self.statistics_[c]
            if pa.types.is_floating(col.type):  # NaN is missing too
                col = pc.if_else(pc.is_nan(col), pa.scalar(None, col.type), col)
            if self._float_out():
                new = pc.fill_null(pc.cast(col, F64), pa.scalar(fill, F64))
            else:
                new = pc.fill_null(col, pa.scalar(fill, col.type))
            table = table.set_column(i, table.schema.field(i).with_type(new.type), new)
        return table

    def sql(self, schema: pa.Schema) -> SQLStage:
        self.check_fitted()
        select = []
        for f in schema:
            if f.name not in self.statistics_:
                select.append(sql_ident(f.name))
                continue
            fill = self.statistics_[f.name]
            value = sql_ident(f.name)
            if pa.types.is_floating(f.type):  # NaN is missing too
                value = f"(CASE WHEN isnan({value}) THEN NULL ELSE {value} END)"
            if self._float_out():
                expr = f"COALESCE(CAST({value} AS DOUBLE), {sql_literal(float(fill))})"
            else:
                expr = f"COALESCE({value}, CAST({sql_literal(fill)} AS {duck_type(f.type)}))"
            select.append(aliased(expr, f.name))
        return SQLStage(select)

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        if not self._float_out():
            return schema
        cols = set(self.columns_)
        return pa.schema([f.with_type(F64) if f.name in cols else f for f in schema])


class _Affine(Operation):
    """``(x - center_) / scale_`` per column, as float64: the shape of every scaler."""

    default_kind: ClassVar[str | None] = "numeric"

    def apply(self, table: pa.Table) -> pa.Table:
        self.check_fitted()
        for c in self.columns_:
            i = table.schema.get_field_index(c)
            x = pc.cast(table.column(i), F64)
            new = pc.divide(pc.subtract(x, pa.scalar(self.center_[c], F64)), pa.scalar(self.scale_[c], F64))
            table = table.set_column(i, pa.field(c, F64), new)
        return table

    def sql(self, schema: pa.Schema) -> SQLStage:
        self.check_fitted()
        return SQLStage(
            [
                aliased(
                    f"(({_f64(n)} - {sql_literal(float(self.center_[n]))}) / "
                    f"{sql_literal(float(self.scale_[n]))})",
                    n,
                )
                if n in self.center_
                else sql_ident(n)
                for n in schema.names
            ]
        )

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        cols = set(self.columns_)
        return pa.schema([f.with_type(F64) if f.name in cols else f for f in schema])


def _refuse_infinite(con: Any, relation: str, column: str, op: str, *stats: Any) -> None:
    """A ``TransformError`` naming ``column`` when an infinite value made a fitted statistic
    infinite or NaN (every row of the column would come out as -inf, inf or NaN)."""
    if all(v is None or math.isfinite(float(v)) for v in stats):
        return
    v = f"CAST({sql_ident(column)} AS DOUBLE)"
    pos, neg = con.execute(
        f"SELECT count(*) FILTER (WHERE {v} = 'inf'::DOUBLE), "
        f"count(*) FILTER (WHERE {v} = '-inf'::DOUBLE) FROM {relation} AS _i"
    ).fetchall()[0]
    found = [f"{n:,} x {sign}inf" for n, sign in ((int(pos), ""), (int(neg), "-")) if n]
    raise TransformError(
        f"{op}: column {column!r} holds infinite values ({', '.join(found) or 'inf'}: 'inf' in "
        f"the data, or a number too large for a DOUBLE such as 1e400), so its fitted statistics "
        "are not finite and every value would come out as inf or NaN",
        hint=f"drop those rows first with `- op: filter` and `where: \"isinf({column}) IS NOT TRUE\"`, "
        f"or `- op: clip` the column; impute fills only nulls and NaN",
    )


class Scale(_Affine):
    """Scale numeric columns: ``(x - center_) / scale_``, result ``float64``.

    ``method="standard"``: mean and *population* standard deviation (ddof=0, as
    scikit-learn's ``StandardScaler``); ``"minmax"``: min and max - min (to [0, 1]);
    ``"robust"``: median and interquartile range (exact quantiles, linear interpolation, as
    ``RobustScaler``). A zero spread becomes 1 (the column is only centred), as in
    scikit-learn; an all-null column gets center 0 and scale 1 (it stays null) and a warning.
    """

    op_name: ClassVar[str] = "scale"
    METHODS: ClassVar[tuple[str, ...]] = ("standard", "minmax", "robust")

    def __init__(self, method: str = "standard", columns: Sequence[str] | None = None) -> None:
        self.method = method
        self.columns = columns

    def fit_sql(self, con, relation, schema, *, exclude=()):  # type: ignore[no-untyped-def]
        if self.method not in self.METHODS:
            raise TransformError(f"scale: unknown method {self.method!r}",
                                 hint=f"use one of {', '.join(self.METHODS)}")
        cols = self.resolve_columns(schema, exclude)
        center: dict[str, Any] = {}
        spread: dict[str, Any] = {}
        if self.method in ("standard", "minmax"):
            for c, m in moments(con, relation, cols, std=self.method == "standard").items():
                if self.method == "standard":
                    center[c], spread[c] = m["mean"], m["std"]
                else:
                    center[c] = m["min"]
                    spread[c] = None if m["min"] is None else m["max"] - m["min"]
        else:
            for c, (q1, q2, q3) in exact_quantiles_many(con, relation, cols, [0.25, 0.5, 0.75]).items():
                center[c], spread[c] = q2, None if q1 is None else q3 - q1  # type: ignore[operator]
        for c in cols:
            _refuse_infinite(con, relation, c, "scale", center[c], spread[c])
            if center[c] is None:
                self._note(f"scale: column {c!r} has only nulls; it stays null")
                center[c] = 0.0
            if spread[c] is None or spread[c] == 0 or not np.isfinite(spread[c]):
                spread[c] = 1.0
            center[c], spread[c] = float(center[c]), float(spread[c])
        self.columns_ = cols
        self.center_ = center
        self.scale_ = spread
        return self


class Clip(Operation):
    """Limit numeric columns to ``[lower, upper]`` (either may be ``None``); nulls and NaN stay."""

    op_name: ClassVar[str] = "clip"
    default_kind: ClassVar[str | None] = "numeric"

    def __init__(self, lower: float | None = None, upper: float | None = None,
                 columns: Sequence[str] | None = None) -> None:
        self.lower = lower
        self.upper = upper
        self.columns = columns

    def fit_sql(self, con, relation, schema, *, exclude=()):  # type: ignore[no-untyped-def]
        if self.lower is None and self.upper is None:
            raise TransformError("clip: give lower, upper or both")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise TransformError(f"clip: lower ({self.lower}) is above upper ({self.upper})")
        self.columns_ = self.resolve_columns(schema, exclude)
        return self

    def apply(self, table: pa.Table) -> pa.Table:
        self.check_fitted()
        for c in self.columns_:
            i = table.schema.get_field_index(c)
            x = pc.cast(table.column(i), F64)
            if self.lower is not None:
                lo = pa.scalar(float(self.lower), F64)
                x = pc.if_else(pc.less(x, lo), lo, x)
            if self.upper is not None:
                hi = pa.scalar(float(self.upper), F64)
                x = pc.if_else(pc.greater(x, hi), hi, x)
            table = table.set_column(i, pa.field(c, F64), x)
        return table

    def sql(self, schema: pa.Schema) -> SQLStage:
        self.check_fitted()
        select = []
        for n in schema.names:
            if n not in self.columns_:
                select.append(sql_ident(n))
                continue
            v = _f64(n)
            # NaN sorts above everything in DuckDB but compares false in Arrow: keep it as is.
            cases = [f"WHEN isnan({v}) THEN {v}"]
            if self.lower is not None:
                cases.append(f"WHEN {v} < {sql_literal(float(self.lower))} THEN {sql_literal(float(self.lower))}")
            if self.upper is not None:
                cases.append(f"WHEN {v} > {sql_literal(float(self.upper))} THEN {sql_literal(float(self.upper))}")
            select.append(aliased(f"CASE {' '.join(cases)} ELSE {v} END", n))
        return SQLStage(select)

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        cols = set(self.columns_)
        return pa.schema([f.with_type(F64) if f.name in cols else f for f in schema])


class Log1p(StatelessOperation):
    """``log(1 + x)`` of numeric columns (``numpy.log1p``: -1 gives -inf, below -1 NaN).

    No SQL form: DuckDB has no ``log1p`` and ``ln(1 + x)`` loses precision near 0, so this
    operation always runs on Arrow batches.
    """

    op_name: ClassVar[str] = "log1p"
    default_kind: ClassVar[str | None] = "numeric"

    def __init__(self, columns: Sequence[str] | None = None) -> None:
        self.columns = columns

    def apply(self, table: pa.Table) -> pa.Table:
        self.check_fitted()
        for c in self.columns_:
            i = table.schema.get_field_index(c)
            x = table.column(i)
            values = pc.cast(x, F64).to_numpy(zero_copy_only=False)
            with np.errstate(divide="ignore", invalid="ignore"):
                out = np.log1p(values)
            new = pa.array(out, F64, mask=pc.is_null(x).to_numpy(zero_copy_only=False))
            table = table.set_column(i, pa.field(c, F64), new)
        return table

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        cols = set(self.columns_)
        return pa.schema([f.with_type(F64) if f.name in cols else f for f in schema])
