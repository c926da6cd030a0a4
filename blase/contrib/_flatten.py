"""``flatten`` and ``explode``: the operations that make flat columns of nested JSON.

Both are SQL over DuckDB structs and lists, so they run inside the transform's out-of-core
query (and prepare's), and on one batch at inference through the same SQL. Their fitted
state is the list of output columns and the path each reads, so new data with a field missing
gets a null there, never a different set of columns.

- ``flatten``: every struct column becomes dotted columns (``user.address.city``) down to
  ``max_depth`` levels; a struct deeper than that is kept as its JSON text. A list becomes its
  length (``lists: length``), its JSON text (``json``), stays a list (``keep``) or is dropped.
- ``explode``: one row per element of a list column, the other columns repeated; elements that
  are objects are flattened as above (``items.sku``, ``items.qty``). A row whose list is empty
  or null is kept with nulls (``keep_empty: false`` drops it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import pyarrow as pa

from blase._duck import sql_ident, sql_quote
from blase.errors import TransformError
from blase.transform import Operation, SQLStage, query_batch

__all__ = ["Explode", "Flatten"]

ListMode = Literal["length", "json", "keep", "drop"]
_ELEMENT = "__blase_element"


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t)


def _leaves(name: str, t: pa.DataType, depth: int, max_depth: int, lists: str) -> list[list[Any]]:
    """``[output name, path below the column, how]`` for the flat columns of one column;
    ``how`` is ``value``, ``json`` (the text of a deeper struct or a list) or ``length``."""
    if pa.types.is_struct(t) and depth < max_depth:
        out: list[list[Any]] = []
        for f in t:
            for leaf in _leaves(f"{name}.{f.name}", f.type, depth + 1, max_depth, lists):
                out.append([leaf[0], [f.name, *leaf[1]], leaf[2]])
        return out
    if pa.types.is_struct(t):
        return [[name, [], "json"]]
    if _is_list(t):
        return [] if lists == "drop" else [[name, [], {"keep": "value"}.get(lists, lists)]]
    return [[name, [], "value"]]


def _select(expr: str, path: Sequence[str], how: str, name: str) -> str:
    for part in path:
        expr = f"struct_extract({expr}, {sql_quote(part)})"
    if how == "length":
        expr = f"CAST(len({expr}) AS BIGINT)"
    elif how == "json":
        expr = f"CAST(to_json({expr}) AS VARCHAR)"
    return f"{expr} AS {sql_ident(name)}"


def _example_table() -> pa.Table:
    rows = [{"id": i, "user": {"name": f"u{i % 7}", "age": None if i % 5 == 0 else 20 + i % 50,
                               "address": {"city": ["Lyon", "Paris", None][i % 3], "geo": {"lat": i / 10}}},
             "items": [{"sku": f"s{j}", "qty": j + 1} for j in range(i % 4)], "tags": ["a", "b"][: i % 3]}
            for i in range(120)]
    return pa.Table.from_pylist(rows)


class _SQLOperation(Operation):
    """An operation whose fit only looks at the schema and whose apply is its SQL."""

    needs_data: ClassVar[bool] = False

    def apply(self, table: pa.Table) -> pa.Table:
        self.check_fitted()
        return query_batch(table, self.sql(table.schema))


class Flatten(_SQLOperation):
    """Nested struct columns as dotted columns, to ``max_depth`` levels; lists by ``lists``."""

    op_name: ClassVar[str] = "flatten"

    def __init__(self, columns: list[str] | None = None, max_depth: int = 3, lists: ListMode = "length") -> None:
        self.columns = columns
        self.max_depth = max_depth
        self.lists = lists

    @classmethod
    def example(cls) -> tuple[dict[str, Any], pa.Table]:
        return {"max_depth": 2}, _example_table()

    def fit_sql(self, con: Any, relation: str, schema: pa.Schema, *, exclude: Sequence[str] = ()) -> Flatten:
        if not isinstance(self.max_depth, int) or self.max_depth < 1:
            raise TransformError(f"flatten: max_depth must be an integer >= 1, not {self.max_depth!r}",
                                 hint="set max_depth: 1 for one level (user.name), 2 for user.address.city...")
        if self.lists not in ("length", "json", "keep", "drop"):
            raise TransformError(f"flatten: lists must be length, json, keep or drop, not {self.lists!r}")
        nested = [f.name for f in schema if f.name not in exclude
                  and (pa.types.is_struct(f.type) or _is_list(f.type))]
        columns = self.resolve_columns(schema, exclude, kind=None) if self.columns is not None else nested
        self.columns_: list[str] = list(columns)
        self.leaves_: dict[str, list[list[Any]]] = {
            c: _leaves(c, schema.field(c).type, 0, self.max_depth, self.lists) for c in columns}
        taken = {n for n in schema.names if n not in columns}
        clash = sorted(leaf[0] for leaves in self.leaves_.values() for leaf in leaves if leaf[0] in taken)
        if clash:
            raise TransformError(f"flatten: the flat column {clash[0]!r} is already a column of the data",
                                 hint=f"rename {clash[0]!r} first (op: rename), or leave its parent out of columns")
        return self

    def sql(self, schema: pa.Schema) -> SQLStage:
        self.check_fitted()
        select = []
        for name in schema.names:
            if name in self.leaves_:
                select += [_select(sql_ident(name), path, how, out) for out, path, how in self.leaves_[name]]
            else:
                select.append(sql_ident(name))
        return SQLStage(select)


class Explode(_SQLOperation):
    """One row per element of the list column ``column``; object elements flattened."""

    op_name: ClassVar[str] = "explode"
    preserves_rows: ClassVar[bool] = False
    adds_rows: ClassVar[bool] = True

    def __init__(self, column: str, max_depth: int = 2, lists: ListMode = "length", keep_empty: bool = True) -> None:
        self.column = column
        self.max_depth = max_depth
        self.lists = lists
        self.keep_empty = keep_empty

    @classmethod
    def example(cls) -> tuple[dict[str, Any], pa.Table]:
        return {"column": "items"}, _example_table()

    def fit_sql(self, con: Any, relation: str, schema: pa.Schema, *, exclude: Sequence[str] = ()) -> Explode:
        if self.column not in schema.names:
            lists = [f.name for f in schema if _is_list(f.type)]
            raise TransformError(f"explode: unknown column {self.column!r}; the list columns here: "
                                 f"{', '.join(lists) or '(none)'}", hint="set column: to one of them")
        t = schema.field(self.column).type
        if not _is_list(t):
            raise TransformError(f"explode: column {self.column!r} is {t}, not a list",
                                 hint="name a list column (a JSON array field); flatten struct columns first "
                                 "to reach a list inside an object (user.orders)")
        self.columns_: list[str] = [self.column]
        self.leaves_: list[list[Any]] = _leaves(self.column, t.value_type, 0, self.max_depth, self.lists)
        return self

    def sql(self, schema: pa.Schema) -> SQLStage:
        self.check_fitted()
        col = sql_ident(self.column)
        items = f"CASE WHEN len({col}) > 0 THEN {col} ELSE [NULL] END" if self.keep_empty else col
        select = []
        for name in schema.names:
            if name == self.column:
                select += [_select(sql_ident(_ELEMENT), path, how, out) for out, path, how in self.leaves_]
            else:
                select.append(sql_ident(name))
        return SQLStage(select, inner=(f"unnest({items}) AS {sql_ident(_ELEMENT)}",))
