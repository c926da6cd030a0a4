"""Categorical encoders: one-hot with a category cap, ordinal codes, and feature hashing.

Categories are learned with one ``GROUP BY`` per column (DuckDB spills it to disk when the
column has many distinct values), ranked by count with ties broken by value, so a refit on
the same data always keeps the same categories.

A value never seen at fit time is never silent: one-hot sends it to ``{column}_other`` (or
all zeros when there is no other bucket), ordinal gives it ``unknown_value``, and both count
such rows per column (:meth:`_CategoricalEncoder.unseen_counts`), which
:class:`~blase.transform.Transform` reports as warnings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from blase._duck import sql_ident
from blase.errors import TransformError
from blase.transform._base import Operation, SQLStage, aliased, sql_literal
from blase.transform._stats import top_values

if TYPE_CHECKING:
    import duckdb

__all__ = ["HashEncode", "OneHot", "Ordinal", "is_other"]

#: Up to this many distinct values per column, the whole set seen at fit is kept in the
#: state (``seen_``) so unseen values can be told apart from infrequent ones. Above it,
#: "unseen" counts every value outside the kept categories.
SEEN_LIMIT = 10_000


def _sort_key(v: Any) -> tuple[int, Any]:
    return (0, v) if not isinstance(v, str) else (1, v)


def _value_array(values: list[Any], type_: pa.DataType) -> pa.Array:
    return pa.array(values, type=type_) if values else pa.array([], type=type_)


class _CategoricalEncoder(Operation):
    default_kind: ClassVar[str | None] = "string"
    #: Whether the cap keeps ``max_categories - 1`` categories plus an "other" bucket.
    other_bucket: ClassVar[bool] = False

    columns: Sequence[str] | None
    max_categories: int | None

    def fit_sql(
        self,
        con: duckdb.DuckDBPyConnection,
        relation: str,
        schema: pa.Schema,
        *,
        exclude: Sequence[str] = (),
    ) -> _CategoricalEncoder:
        kind = "categorical" if self.columns is not None else None
        cols = self.resolve_columns(schema, exclude, kind=kind)
        cap = self.max_categories
        if cap is not None and cap < 1:
            raise TransformError(f"{self.label}: max_categories must be 1 or more, not {cap}")
        categories: dict[str, list[Any]] = {}
        other: dict[str, bool] = {}
        seen: dict[str, list[Any] | None] = {}
        for c in cols:
            ranked = top_values(con, relation, c, SEEN_LIMIT + 1)
            if len(ranked) > SEEN_LIMIT and cap is None:
                raise TransformError(
                    f"{self.label}: column {c!r} has more than {SEEN_LIMIT:,} distinct values",
                    hint="set max_categories (e.g. 20) to keep the most frequent ones, use op: hash, "
                    "or leave the column out (columns: [...])",
                )
            seen[c] = sorted((v for v, _ in ranked), key=_sort_key) if len(ranked) <= SEEN_LIMIT else None
            keep = len(ranked)
            if cap is not None and len(ranked) > cap:
                keep = cap - 1 if self.other_bucket else cap
            categories[c] = sorted((v for v, _ in ranked[:keep]), key=_sort_key)
            other[c] = keep < len(ranked)
        self.columns_ = cols
        self.categories_ = categories
        self.seen_ = seen
        if self.other_bucket:
            self.other_ = other
        self._check_names(schema)
        return self

    def _check_names(self, schema: pa.Schema) -> None:
        names = self.output_schema(schema).names
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise TransformError(
                f"{self.label}: output columns {dupes[:5]} would appear twice",
                hint="rename the clashing column first (op: rename)",
            )

    def unseen_counts(self, table: pa.Table) -> dict[str, int]:
        """Rows per column whose (non-null) value was not seen at fit time."""
        self.check_fitted()
        out = {}
        for c in self.columns_:
            if c not in table.column_names:
                continue
            col = table.column(c)
            known = self.seen_.get(c) or self.categories_[c]
            hits = pc.is_in(col, value_set=_value_array(known, col.type))
            n = pc.sum(pc.and_(pc.invert(hits), pc.is_valid(col))).as_py() or 0
            if n:
                out[c] = int(n)
        return out

    def unseen_sql(self) -> dict[str, str]:
        """SQL aggregates counting what :meth:`unseen_counts` counts, per column."""
        self.check_fitted()
        out = {}
        for c in self.columns_:
            known = self.seen_.get(c) or self.categories_[c]
            x = sql_ident(c)
            cond = f"{x} IS NOT NULL"
            if known:
                cond += f" AND {x} NOT IN ({', '.join(sql_literal(v) for v in known)})"
            out[c] = f"count(*) FILTER (WHERE {cond})"
        return out

    def _index(self, col: pa.ChunkedArray, cats: list[Any]) -> np.ndarray:
        """Position of each value in ``cats``; -1 for null or not found."""
        idx = pc.index_in(col, value_set=_value_array(cats, col.type))
        return pc.fill_null(idx, -1).to_numpy(zero_copy_only=False)


class OneHot(_CategoricalEncoder):
    """One uint8 column per category, ``{column}_{value}``, in place of the column.

    With ``max_categories`` (as scikit-learn's ``OneHotEncoder(max_categories=...)``, it
    counts the "other" column): when a column has more distinct values, the
    ``max_categories - 1`` most frequent (ties by value) get columns and the rest, and any
    value unseen at fit time, go to ``{column}_other``. Without a cap, or when nothing was
    left out, there is no other column and an unseen value gives all zeros. Nulls give all
    zeros. Categories are in sorted order, as scikit-learn's. ``None`` columns: every
    string column except the excluded ones.
    """

    op_name: ClassVar[str] = "onehot"
    other_bucket: ClassVar[bool] = True

    def __init__(self, columns: Sequence[str] | None = None, max_categories: int | None = None) -> None:
        self.columns = columns
        self.max_categories = max_categories

    def _layout(self, names: list[str]) -> list[tuple[str, str | None, Any]]:
        """(output name, source column or None for passthrough, category / _OTHER)."""
        out: list[tuple[str, str | None, Any]] = []
        for n in names:
            if n not in self.categories_:
                out.append((n, None, None))
                continue
            out.extend((f"{n}_{_name(v)}", n, v) for v in self.categories_[n])
            if self.other_.get(n):
                out.append((f"{n}_other", n, _OTHER))
        return out

    def codes(self, column: str, values: pa.ChunkedArray | pa.Array) -> np.ndarray:
        """Each value's code for ``column``: ``i`` for the i-th kept category, ``k`` (the number
        of categories) for any other value, ``k + 1`` for null. Column ``{column}_{cat i}`` is
        1 where the code is ``i``; ``{column}_other``, when there is one, where it is ``k``."""
        self.check_fitted()
        if isinstance(values, pa.Array):
            values = pa.chunked_array([values])
        cats = self.categories_[column]
        code = self._index(values, cats)
        missing = code < 0
        if missing.any():
            code = code.copy()  # Arrow's buffer may be read-only
            valid = pc.is_valid(values).to_numpy(zero_copy_only=False)
            code[missing & valid] = len(cats)
            code[missing & ~valid] = len(cats) + 1
        return code

    def apply(self, table: pa.Table) -> pa.Table:
        self.check_fitted()
        codes: dict[str, np.ndarray] = {}
        arrays, fields = [], []
        for name, src, value in self._layout(table.column_names):
            if src is None:
                arrays.append(table.column(name))
                fields.append(table.schema.field(name))
                continue
            cats = self.categories_[src]
            if src not in codes:
                codes[src] = self.codes(src, table.column(src))
            hot = codes[src] == (len(cats) if value is _OTHER else cats.index(value))
            arrays.append(pa.array(hot.astype(np.uint8), pa.uint8()))
            fields.append(pa.field(name, pa.uint8()))
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))

    def sql(self, schema: pa.Schema) -> SQLStage:
        self.check_fitted()
        select = []
        for name, src, value in self._layout(schema.names):
            if src is None:
                select.append(sql_ident(name))
                continue
            x = sql_ident(src)
            if value is _OTHER:
                known = ", ".join(sql_literal(v) for v in self.categories_[src])
                cond = f"{x} IS NOT NULL" + (f" AND {x} NOT IN ({known})" if known else "")
            else:
                cond = f"{x} = {sql_literal(value)}"
            select.append(aliased(f"CAST(CASE WHEN {cond} THEN 1 ELSE 0 END AS UTINYINT)", name))
        return SQLStage(select)

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return pa.schema([
            schema.field(name) if src is None else pa.field(name, pa.uint8())
            for name, src, _ in self._layout(schema.names)
        ])


class _Other:
    def __repr__(self) -> str:
        return "<other>"


_OTHER = _Other()


def is_other(value: Any) -> bool:
    """Whether a one-hot layout entry is the catch-all ``<name>_other`` column."""
    return value is _OTHER


def _name(value: Any) -> str:
    return str(value)


class Ordinal(_CategoricalEncoder):
    """Replace each category by its position in the sorted categories (int64).

    With ``max_categories`` only the most frequent ones (ties by value) get codes. Values
    left out, and values unseen at fit time, get ``unknown_value`` (default -1, as
    scikit-learn's ``handle_unknown="use_encoded_value"``); nulls stay null.
    """

    op_name: ClassVar[str] = "ordinal"

    def __init__(self, columns: Sequence[str] | None = None, max_categories: int | None = None,
                 unknown_value: int = -1) -> None:
        self.columns = columns
        self.max_categories = max_categories
        self.unknown_value = unknown_value

    def apply(self, table: pa.Table) -> pa.Table:
        self.check_fitted()
        for c in self.columns_:
            i = table.schema.get_field_index(c)
            col = table.column(i)
            codes = self._index(col, self.categories_[c]).astype(np.int64)
            codes[codes == -1] = int(self.unknown_value)
            new = pa.array(codes, pa.int64(), mask=pc.is_null(col).to_numpy(zero_copy_only=False))
            table = table.set_column(i, pa.field(c, pa.int64()), new)
        return table

    def sql(self, schema: pa.Schema) -> SQLStage:
        self.check_fitted()
        select = []
        for n in schema.names:
            if n not in self.categories_:
                select.append(sql_ident(n))
                continue
            x = sql_ident(n)
            cats = self.categories_[n]
            if cats:
                listed = f"[{', '.join(sql_literal(v) for v in cats)}]"
                # NULLIF: list_position gave 0 for "not found" in older DuckDB, NULL now.
                code = f"COALESCE(NULLIF(list_position({listed}, {x}), 0) - 1, {int(self.unknown_value)})"
            else:
                code = str(int(self.unknown_value))
            select.append(aliased(f"CAST(CASE WHEN {x} IS NULL THEN NULL ELSE {code} END AS BIGINT)", n))
        return SQLStage(select)

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        cols = set(self.columns_)
        return pa.schema([f.with_type(pa.int64()) if f.name in cols else f for f in schema])


def _bucket_py(column: str, value: Any, n: int) -> int:
    if isinstance(value, bool):
        value = "true" if value else "false"
    digest = hashlib.md5(f"{column}={value}".encode(), usedforsecurity=False).hexdigest()
    return int(digest[:15], 16) % n


class HashEncode(Operation):
    """Feature hashing: ``n_features`` int32 columns ``{name}_0 ...`` counting, per row, the
    op's columns whose ``"column=value"`` hashes (MD5, stable across versions and
    platforms) to each bucket. The columns are replaced, at the place of the first one;
    nulls add nothing. Nothing is learned but the columns, so unseen values need no care.
    """

    op_name: ClassVar[str] = "hash"
    default_kind: ClassVar[str | None] = "string"
    needs_data: ClassVar[bool] = False

    def __init__(self, columns: Sequence[str] | None = None, n_features: int = 16,
                 name: str = "hash") -> None:
        self.columns = columns
        self.n_features = n_features
        self.name = name

    def fit_sql(self, con, relation, schema, *, exclude=()):  # type: ignore[no-untyped-def]
        if int(self.n_features) < 1:
            raise TransformError(f"hash: n_features must be 1 or more, not {self.n_features}")
        kind = "categorical" if self.columns is not None else None
        self.columns_ = self.resolve_columns(schema, exclude, kind=kind)
        names = self.output_schema(schema).names
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise TransformError(f"hash: output columns {dupes[:5]} already exist",
                                 hint="set name: to another prefix")
        return self

    def _outputs(self) -> list[str]:
        return [f"{self.name}_{i}" for i in range(int(self.n_features))]

    def _layout(self, names: list[str]) -> list[str | None]:
        """Output names in order; ``None`` marks where the hash columns go."""
        cols = set(self.columns_)
        out: list[str | None] = []
        placed = False
        for n in names:
            if n in cols:
                if not placed:
                    out.append(None)
                    placed = True
            else:
                out.append(n)
        if not placed:
            out.append(None)
        return out

    def apply(self, table: pa.Table) -> pa.Table:
        self.check_fitted()
        n = int(self.n_features)
        counts = np.zeros((table.num_rows, n), dtype=np.int32)
        rows = np.arange(table.num_rows)
        for c in self.columns_:
            col = table.column(c)
            if pa.types.is_boolean(col.type) or pa.types.is_integer(col.type):
                col = pc.cast(col, pa.string()) if not pa.types.is_boolean(col.type) else \
                    pc.if_else(col, "true", "false")
            enc = pc.dictionary_encode(col).combine_chunks()
            buckets = np.array([_bucket_py(c, v, n) for v in enc.dictionary.to_pylist()], dtype=np.int64)
            idx = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False)
            ok = idx >= 0
            counts[rows[ok], buckets[idx[ok]]] += 1
        arrays, fields = [], []
        for name in self._layout(table.column_names):
            if name is None:
                for i, out in enumerate(self._outputs()):
                    arrays.append(pa.array(counts[:, i], pa.int32()))
                    fields.append(pa.field(out, pa.int32()))
            else:
                arrays.append(table.column(name))
                fields.append(table.schema.field(name))
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))

    def sql(self, schema: pa.Schema) -> SQLStage:
        self.check_fitted()
        n = int(self.n_features)
        inner = []
        for j, c in enumerate(self.columns_):
            x = sql_ident(c)
            text = f"CAST({x} AS VARCHAR)"
            if pa.types.is_boolean(schema.field(c).type):
                text = f"CASE WHEN {x} THEN 'true' ELSE 'false' END"
            key = f"md5({sql_literal(c + '=')} || {text})"
            inner.append(f"CAST('0x' || substr({key}, 1, 15) AS UBIGINT) % {n} AS _blase_h{j}")
        select = []
        for name in self._layout(schema.names):
            if name is not None:
                select.append(sql_ident(name))
                continue
            for i, out in enumerate(self._outputs()):
                terms = " + ".join(
                    f"(CASE WHEN _blase_h{j} = {i} THEN 1 ELSE 0 END)" for j in range(len(self.columns_))
                ) or "0"
                select.append(aliased(f"CAST({terms} AS INTEGER)", out))
        return SQLStage(select, inner=tuple(inner))

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        fields = []
        for name in self._layout(schema.names):
            if name is None:
                fields += [pa.field(o, pa.int32()) for o in self._outputs()]
            else:
                fields.append(schema.field(name))
        return pa.schema(fields)
