"""The standard column operations: select, drop, rename, cast, filter, SQL expressions,
impute, scale, clip, log1p and datetime parts.

Numeric operations (impute mean/median, scale, clip, log1p) return ``float64`` columns, as
scikit-learn does. Every operation keeps the column order: a replaced column stays where it
was, new columns (datetime parts) take the place of the column they come from, and
:class:`SQLExpr` appends its column unless it replaces one of the same name.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from blase._duck import sql_ident
from blase.errors import TransformError
from blase.transform._base import (
    Operation,
    SQLStage,
    aliased,
    arrow_table,
    duck_type,
    empty_table,
    is_numeric,
    is_string,
    json_scalar,
    query_batch,
    sql_literal,
    unknown_columns_error,
)
from blase.transform._stats import exact_quantiles_many, moments, top_values

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "Cast",
    "Clip",
    "DatetimeParts",
    "Drop",
    "Filter",
    "Impute",
    "Log1p",
    "Rename",
    "SQLExpr",
    "Scale",
    "Select",
    "StatelessOperation",
]

logger = logging.getLogger(__name__)

F64 = pa.float64()


def _as_list(columns: Sequence[str] | str | None) -> list[str] | None:
    if columns is None:
        return None
    return [columns] if isinstance(columns, str) else list(columns)


def _f64(expr_column: str) -> str:
    return f"CAST({sql_ident(expr_column)} AS DOUBLE)"


class StatelessOperation(Operation):
    """An operation whose fit only resolves and checks its columns (``columns_``)."""

    needs_data: ClassVar[bool] = False

    def fit_sql(
        self,
        con: duckdb.DuckDBPyConnection,
        relation: str,
        schema: pa.Schema,
        *,
        exclude: Sequence[str] = (),
    ) -> StatelessOperation:
        self.columns_ = self.resolve_columns(schema, exclude)
        return self


# --------------------------------------------------------------------------- columns


class Select(StatelessOperation):
    """Keep only ``columns``, in the order given."""

    op_name: ClassVar[str] = "select"

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = columns

    def apply(self, table: pa.Table) -> pa.Table:
        self.check_fitted()
        # A column left out of the input is one the transform was told it may miss
        # (the label at inference); Transform checks the others before calling us.
        return table.select([c for c in self.columns_ if c in table.column_names])

    def sql(self, schema: pa.Schema) -> SQLStage:
        self.check_fitted()
        return SQLStage([sql_ident(c) for c in self.columns_ if c in schema.names])

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return pa.schema([schema.field(c) for c in self.columns_ if c in schema.names])


class Drop(StatelessOperation):
    """Remove ``columns``."""

    op_name: ClassVar[str] = "drop"

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = columns

    def apply(self, table: pa.Table) -> pa.Table:
        self.check_fitted()
        return table.drop_columns([c for c in self.columns_ if c in table.column_names])

    def sql(self, schema: pa.Schema) -> SQLStage:
        self.check_fitted()
        gone = set(self.columns_)
        return SQLStage([sql_ident(n) for n in schema.names if n not in gone])

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        gone = set(self.columns_)
        return pa.schema([f for f in schema if f.name not in gone])

    def required_columns(self) -> list[str]:
        return []


class Rename(StatelessOperation):
    """Rename columns: ``mapping`` is ``{old: new}``."""

    op_name: ClassVar[str] = "rename"

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping

    def fit_sql(self, con, relation, schema, *, exclude=()):  # type: ignore[no-untyped-def]
        missing = [c for c in self.mapping if c not in schema.names]
        if missing:
            raise unknown_columns_error(missing, schema.names, self.label)
        names = [self.mapping.get(n, n) for n in schema.names]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise TransformError(
                f"rename: the result would have duplicate columns {dupes}",
                hint="rename the other column too, or drop it first",
            )
        self.columns_ = list(self.mapping)
        return self

    def apply(self, table: pa.Table) -> pa.Table:
        self.check_fitted()
        return table.rename_columns([self.mapping.get(n, n) for n in table.column_names])

    def sql(self, schema: pa.Schema) -> SQLStage:
        self.check_fitted()
        return SQLStage([aliased(sql_ident(n), self.mapping.get(n, n)) for n in schema.names])

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return pa.schema([f.with_name(self.mapping.get(f.name, f.name)) for f in schema])


#: Type names accepted by :class:`Cast` (and ``dtype:`` in ``blase.yaml``).
CAST_TYPES: dict[str, tuple[pa.DataType, str]] = {
    "float64": (F64, "DOUBLE"),
    "double": (F64, "DOUBLE"),
    "float": (F64, "DOUBLE"),
    "float32": (pa.float32(), "FLOAT"),
    "int64": (pa.int64(), "BIGINT"),
    "int": (pa.int64(), "BIGINT"),
    "int32": (pa.int32(), "INTEGER"),
    "int16": (pa.int16(), "SMALLINT"),
    "int8": (pa.int8(), "TINYINT"),
    "string": (pa.string(), "VARCHAR"),
    "str": (pa.string(), "VARCHAR"),
    "bool": (pa.bool_(), "BOOLEAN"),
    "boolean": (pa.bool_(), "BOOLEAN"),
    "date": (pa.date32(), "DATE"),
    "timestamp": (pa.timestamp("us"), "TIMESTAMP"),
    "datetime": (pa.timestamp("us"), "TIMESTAMP"),
}


class Cast(StatelessOperation):
    """Convert ``columns`` to ``dtype`` (SQL cast semantics: ``"2.5"`` -> 2.5, 2.5 -> int 3).

    ``errors="raise"`` stops at the first value that does not convert; ``errors="null"``
    turns such values into nulls (DuckDB's ``TRY_CAST``).
    """

    op_name: ClassVar[str] = "cast"

    def __init__(self, columns: Sequence[str], dtype: str, errors: str = "raise") -> None:
        self.columns = columns
        self.dtype = dtype
        self.errors = errors

    def _target(self) -> tuple[pa.DataType, str]:
        key = str(self.dtype).lower()
        if key not in CAST_TYPES:
            raise TransformError(
                f"cast: unknown dtype {self.dtype!r}",
                hint=f"use one of {', '.join(sorted(CAST_TYPES))}",
            )
        if self.errors not in ("raise", "null"):
            raise TransformError(f"cast: errors must be 'raise' or 'null', not {self.errors!r}")
        return CAST_TYPES[key]

    def fit_sql(self, con, relation, schema, *, exclude=()):  # type: ignore[no-untyped-def]
        self._target()
        return super().fit_sql(con, relation, schema, exclude=exclude)

    def sql(self, schema: pa.Schema) -> SQLStage:
        self.check_fitted()
        _, duck = self._target()
        fn = "CAST" if self.errors == "raise" else "TRY_CAST"
        cols = set(self.columns_)
        return SQLStage(
            [
                aliased(f"{fn}({sql_ident(n)} AS {duck})", n) if n in cols else sql_ident(n)
                for n in schema.names
            ]
        )

    def apply(self, table: pa.Table) -> pa.Table:
        try:
            return _keep_fields(query_batch(table, self.sql(table.schema)), table.schema)
        except TransformError:
            raise
        except Exception as exc:
            raise TransformError(
                f"cast to {self.dtype}: {exc}",
                hint="clean the values first, or use errors: null (params) to turn them into nulls",
            ) from None

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        arrow, _ = self._target()
        cols = set(self.columns_)
        return pa.schema([f.with_type(arrow) if f.name in cols else f for f in schema])


def _check_sql(con: duckdb.DuckDBPyConnection, query: str, what: str) -> pa.Schema:
    try:
        return arrow_table(con, query).schema
    except Exception as exc:
        raise TransformError(
            f"{what} is not valid SQL for this data: {str(exc).splitlines()[0]}",
            hint="write a DuckDB SQL expression over the columns, quoting odd names with \"...\"",
        ) from None


class Filter(Operation):
    """Keep the rows where the SQL predicate ``where`` is true (DuckDB SQL)."""

    op_name: ClassVar[str] = "filter"
    preserves_rows: ClassVar[bool] = False
    needs_data: ClassVar[bool] = False

    def __init__(self, where: str) -> None:
        self.where = where

    def fit_sql(self, con, relation, schema, *, exclude=()):  # type: ignore[no-untyped-def]
        _check_sql(con, f"SELECT * FROM {relation} AS _w WHERE ({self.where}) LIMIT 0",
                   f"filter {self.where!r}")
        self.columns_: list[str] = []
        return self

    def sql(self, schema: pa.Schema) -> SQLStage:
        self.check_fitted()
        return SQLStage([sql_ident(n) for n in schema.names], where=self.where)

    def apply(self, table: pa.Table) -> pa.Table:
        return _keep_fields(query_batch(table, self.sql(table.schema)), table.schema)

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return schema


class SQLExpr(Operation):
    """A new (or replaced) column ``name`` computed by the DuckDB SQL expression ``expr``.

    Its type is fixed at fit time, so every batch (and inference) gets the same type.
    """

    op_name: ClassVar[str] = "sql"
    needs_data: ClassVar[bool] = False

    def __init__(self, expr: str, name: str) -> None:
        self.expr = expr
        self.name = name

    def fit_sql(self, con, relation, schema, *, exclude=()):  # type: ignore[no-untyped-def]
        query = f"SELECT ({self.expr}) AS _x FROM {relation} AS _e"
        _check_sql(con, f"{query} LIMIT 0", f"sql expression {self.expr!r}")
        self.sql_type_ = str(con.execute(f"DESCRIBE {query}").fetchall()[0][1])
        self.columns_: list[str] = []
        return self

    def sql(self, schema: pa.Schema) -> SQLStage:
        self.check_fitted()
        expr = aliased(f"CAST(({self.expr}) AS {self.sql_type_})", self.name)
        select = [expr if n == self.name else sql_ident(n) for n in schema.names]
        if self.name not in schema.names:
            select.append(expr)
        return SQLStage(select)

    def apply(self, table: pa.Table) -> pa.Table:
        return _keep_fields(query_batch(table, self.sql(table.schema)), table.schema)

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        new = query_batch(empty_table(schema), self.sql(schema)).schema.field(self.name)
        fields = [new if f.name == self.name else f for f in schema]
        if self.name not in schema.names:
            fields.append(new)
        return pa.schema(fields)


def _keep_fields(out: pa.Table, schema: pa.Schema) -> pa.Table:
    """``out`` with the input's fields (nullability, metadata) where a column passed through."""
    fields = [schema.field(f.name) if f.name in schema.names and schema.field(f.name).type == f.type
              else f for f in out.schema]
    target = pa.schema(fields)
    return out if target.equals(out.schema) else out.cast(target)


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


# --------------------------------------------------------------------------- dates

_PARTS: dict[str, tuple[Any, str]] = {
    # part: (Arrow kernel, DuckDB expression over a TIMESTAMP; weekday Monday=0 as pandas)
    "year": (pc.year, "year({v})"),
    "month": (pc.month, "month({v})"),
    "day": (pc.day, "day({v})"),
    "dayofweek": (pc.day_of_week, "(isodow({v}) - 1)"),
    "hour": (pc.hour, "hour({v})"),
    "minute": (pc.minute, "minute({v})"),
}
DEFAULT_PARTS = ("year", "month", "day", "dayofweek", "hour")


class DatetimeParts(StatelessOperation):
    """Split date and timestamp columns into int32 parts named ``{column}_{part}``.

    ``parts`` from year, month, day, dayofweek (Monday=0, as pandas), hour, minute; the
    parts take the place of the column, which is dropped unless ``drop=False``. ``None``
    columns: every date and timestamp column except the excluded ones.
    """

    op_name: ClassVar[str] = "datetime"
    default_kind: ClassVar[str | None] = "temporal"

    def __init__(self, columns: Sequence[str] | None = None, parts: Sequence[str] | None = None,
                 drop: bool = True) -> None:
        self.columns = columns
        self.parts = parts
        self.drop = drop

    def _parts(self) -> list[str]:
        parts = list(self.parts) if self.parts is not None else list(DEFAULT_PARTS)
        bad = [p for p in parts if p not in _PARTS]
        if bad:
            raise TransformError(f"datetime: unknown parts {bad}", hint=f"use {', '.join(_PARTS)}")
        return parts

    def fit_sql(self, con, relation, schema, *, exclude=()):  # type: ignore[no-untyped-def]
        self._parts()
        super().fit_sql(con, relation, schema, exclude=exclude)
        new = [f"{c}_{p}" for c in self.columns_ for p in self._parts()]
        clash = sorted(set(new) & (set(schema.names) - (set(self.columns_) if self.drop else set())))
        if clash:
            raise TransformError(f"datetime: output columns {clash} already exist",
                                 hint="rename or drop them first")
        return self

    def _layout(self, names: list[str]) -> list[tuple[str, str | None, str | None]]:
        """(output name, source column, part) in output order; part None: passthrough."""
        out: list[tuple[str, str | None, str | None]] = []
        cols = set(self.columns_)
        for n in names:
            if n not in cols:
                out.append((n, n, None))
                continue
            if not self.drop:
                out.append((n, n, None))
            out.extend((f"{n}_{p}", n, p) for p in self._parts())
        return out

    def apply(self, table: pa.Table) -> pa.Table:
        self.check_fitted()
        arrays, fields = [], []
        for name, src, part in self._layout(table.column_names):
            col = table.column(src)
            if part is None:
                arrays.append(col)
                fields.append(table.schema.field(src))
                continue
            if pa.types.is_date(col.type):
                col = pc.cast(col, pa.timestamp("s"))
            arrays.append(pc.cast(_PARTS[part][0](col), pa.int32()))
            fields.append(pa.field(name, pa.int32()))
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))

    def sql(self, schema: pa.Schema) -> SQLStage:
        self.check_fitted()
        select = []
        for name, src, part in self._layout(schema.names):
            if part is None:
                select.append(sql_ident(name))
            else:
                v = f"CAST({sql_ident(src)} AS TIMESTAMP)" if pa.types.is_date(schema.field(src).type) \
                    else sql_ident(src)  # type: ignore[arg-type]
                select.append(aliased(f"CAST({_PARTS[part][1].format(v=v)} AS INTEGER)", name))
        return SQLStage(select)

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return pa.schema([
            schema.field(name) if part is None else pa.field(name, pa.int32())
            for name, _src, part in self._layout(schema.names)
        ])
