"""The standard column operations: select, drop, rename, cast, filter, SQL expressions and
datetime parts (the numeric ones, impute, scale, clip and log1p, are in ``_numeric``).

Every operation keeps the column order: a replaced column stays where it was, new columns
(datetime parts) take the place of the column they come from, and :class:`SQLExpr` appends
its column unless it replaces one of the same name.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from blase._duck import check_sql_expression, sql_ident
from blase.errors import TransformError
from blase.transform._base import (
    Operation,
    SQLStage,
    aliased,
    arrow_table,
    empty_table,
    query_batch,
    unknown_columns_error,
)

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "Cast",
    "DatetimeParts",
    "Drop",
    "Filter",
    "Rename",
    "SQLExpr",
    "Select",
    "StatelessOperation",
    "varying_parts",
]

logger = logging.getLogger(__name__)

F64 = pa.float64()


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


def _one_expression(expr: str, what: str) -> str:
    """``expr`` if it is a single SQL expression (never a second statement spliced in)."""
    try:
        return check_sql_expression(expr)
    except ValueError as exc:
        raise TransformError(f"{what}: {exc}",
                             hint="fix the expression in blase.yaml, then `blase run` again") from None


def _check_sql(con: duckdb.DuckDBPyConnection, query: str, what: str) -> pa.Schema:
    try:
        return arrow_table(con, query).schema
    except Exception as exc:
        raise TransformError(
            f"{what} is not valid SQL for this data: {str(exc).splitlines()[0]}",
            hint="write a DuckDB SQL expression over the columns, quoting odd names with \"...\"",
        ) from None


def _binds_without(con: duckdb.DuckDBPyConnection, relation: str, column: str, where: str) -> bool:
    """Whether ``where`` still binds once ``column`` is gone (DuckDB's binder decides)."""
    try:
        con.execute(f"SELECT * FROM (SELECT * EXCLUDE ({sql_ident(column)}) FROM {relation}) AS _w "
                    f"WHERE ({where}) LIMIT 0")
    except Exception:  # duckdb.BinderException: the predicate reads the column
        return False
    return True


class Filter(Operation):
    """Keep the rows where the SQL predicate ``where`` is true (DuckDB SQL)."""

    op_name: ClassVar[str] = "filter"
    preserves_rows: ClassVar[bool] = False
    needs_data: ClassVar[bool] = False

    def __init__(self, where: str) -> None:
        self.where = _one_expression(where, "filter where")

    def fit_sql(self, con, relation, schema, *, exclude=()):  # type: ignore[no-untyped-def]
        _check_sql(con, f"SELECT * FROM {relation} AS _w WHERE ({self.where}) LIMIT 0",
                   f"filter {self.where!r}")
        self.columns_: list[str] = []
        #: Excluded columns (the label) the predicate reads: new data has none, so the filter
        #: is training-only and inference skips it (a label filter would drop every row).
        self.training_only_: list[str] = [c for c in exclude if c in schema.names
                                          and not _binds_without(con, relation, c, self.where)]
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
        self.expr = _one_expression(expr, f"sql {name!r} expr")
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


def varying_parts(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    columns: Sequence[str],
    parts: Sequence[str] = DEFAULT_PARTS,
) -> dict[str, list[str]]:
    """The ``parts`` of each date/timestamp (or date-like text) column of ``relation`` that
    are not constant there, in the order of ``parts``.

    A part with a single value carries nothing (the month and day of a year-only date, the
    hour of a date), and neither does the day of week of a date whose day of month is
    constant (1 January of each year: the weekday is a function of the year), so they are
    left out. One aggregate query over ``relation``.
    """
    parts = list(parts)
    if not columns:
        return {}
    exprs = [
        f"count(DISTINCT {_PARTS[p][1].format(v=f'TRY_CAST({sql_ident(c)} AS TIMESTAMP)')})"
        for c in columns
        for p in parts
    ]
    row = con.execute(f"SELECT {', '.join(exprs)} FROM {relation} AS _p").fetchall()[0]
    out: dict[str, list[str]] = {}
    for i, c in enumerate(columns):
        distinct = dict(zip(parts, row[i * len(parts) : (i + 1) * len(parts)], strict=True))
        keep = [p for p in parts if (distinct[p] or 0) > 1]
        if "dayofweek" in keep and (distinct.get("day") or 0) <= 1:
            keep.remove("dayofweek")
        out[c] = keep
    return out


class DatetimeParts(StatelessOperation):
    """Split date and timestamp columns into int32 parts named ``{column}_{part}``.

    ``parts`` from year, month, day, dayofweek (Monday=0, as pandas), hour, minute; the
    parts take the place of the column, which is dropped unless ``drop=False``. ``None``
    columns: every date and timestamp column except the excluded ones. ``None`` parts: the
    default parts (year, month, day, dayofweek, hour) that vary in the fitted data, per
    column (``parts_``; see :func:`varying_parts`): a constant part is no feature.
    """

    op_name: ClassVar[str] = "datetime"
    default_kind: ClassVar[str | None] = "temporal"
    needs_data: ClassVar[bool] = True  # which parts vary is learned from the data

    def __init__(self, columns: Sequence[str] | None = None, parts: Sequence[str] | None = None,
                 drop: bool = True) -> None:
        self.columns = columns
        self.parts = parts
        self.drop = drop

    def _parts(self, column: str | None = None) -> list[str]:
        learned = getattr(self, "parts_", None)
        if column is not None and learned is not None and column in learned:
            return list(learned[column])
        parts = list(self.parts) if self.parts is not None else list(DEFAULT_PARTS)
        bad = [p for p in parts if p not in _PARTS]
        if bad:
            raise TransformError(f"datetime: unknown parts {bad}", hint=f"use {', '.join(_PARTS)}")
        return parts

    def fit_sql(self, con, relation, schema, *, exclude=()):  # type: ignore[no-untyped-def]
        parts = self._parts()
        super().fit_sql(con, relation, schema, exclude=exclude)
        if self.parts is None:
            self.parts_ = varying_parts(con, relation, self.columns_, parts)
        else:
            self.parts_ = {c: parts for c in self.columns_}
        new = [f"{c}_{p}" for c in self.columns_ for p in self._parts(c)]
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
            out.extend((f"{n}_{p}", n, p) for p in self._parts(n))
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
