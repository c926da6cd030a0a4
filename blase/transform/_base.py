"""The operation contract every transform step follows, and the helpers the steps share.

An :class:`Operation` behaves like a scikit-learn estimator: ``__init__`` stores its
parameters and nothing else, ``fit`` (or ``fit_sql``) learns state into attributes whose
names end in ``_`` and returns ``self``, and ``apply`` maps one Arrow table to another.
Learned state is plain JSON (:meth:`Operation.state`), so a fitted transform is saved
without pickle and rebuilt exactly by :meth:`Operation.from_state`.

Operations that can be written as SQL also return a :class:`SQLStage` from
:meth:`Operation.sql`; :class:`blase.transform.Transform` chains those stages into one DuckDB
query for the out-of-core apply pass. Both paths give the same values, bit for bit; the
tests check it.
"""

from __future__ import annotations

import difflib
import inspect
import json
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from blase._duck import sql_ident, sql_quote
from blase.errors import TransformError

if TYPE_CHECKING:
    import duckdb

__all__ = ["NotFittedError", "Operation", "SQLStage"]

logger = logging.getLogger(__name__)

class NotFittedError(TransformError):
    """An operation or transform was applied before it was fitted."""


@dataclass(frozen=True)
class SQLStage:
    """One operation as SQL: the full select list (with aliases) and an optional filter."""

    select: list[str]
    where: str | None = None
    #: Helper columns computed in an inner query first (``expr AS name``), so ``select`` can
    #: reuse them without computing them twice.
    inner: tuple[str, ...] = ()

    def over(self, relation: str, alias: str = "_t", keep: Sequence[str] = ()) -> str:
        """This stage as a sub-query over ``relation`` (a table name or a parenthesised query);
        ``keep`` names columns of ``relation`` passed through unchanged (a row id, say)."""
        if self.inner:
            relation = f"(SELECT *, {', '.join(self.inner)} FROM {relation} AS {alias}_i)"
        select = [*self.select, *(sql_ident(k) for k in keep)]
        sql = f"SELECT {', '.join(select)} FROM {relation} AS {alias}"
        if self.where:
            sql += f" WHERE ({self.where})"
        return f"({sql})"


# --------------------------------------------------------------------------- types


def is_numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def is_string(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return is_string(t.value_type)
    view = getattr(pa.types, "is_string_view", None)
    return pa.types.is_string(t) or pa.types.is_large_string(t) or bool(view and view(t))


def is_temporal(t: pa.DataType) -> bool:
    return pa.types.is_timestamp(t) or pa.types.is_date(t)


def is_kind(t: pa.DataType, kind: str) -> bool:
    if kind == "numeric":
        return is_numeric(t)
    if kind == "string":
        return is_string(t)
    if kind == "temporal":
        return is_temporal(t)
    if kind == "categorical":  # what an encoder may take when named explicitly
        return is_string(t) or pa.types.is_integer(t) or pa.types.is_boolean(t)
    raise ValueError(f"unknown column kind {kind!r}")


_DUCK_TYPES: dict[pa.DataType, str] = {
    pa.float64(): "DOUBLE",
    pa.float32(): "FLOAT",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.int16(): "SMALLINT",
    pa.int8(): "TINYINT",
    pa.uint64(): "UBIGINT",
    pa.uint32(): "UINTEGER",
    pa.uint16(): "USMALLINT",
    pa.uint8(): "UTINYINT",
    pa.bool_(): "BOOLEAN",
    pa.string(): "VARCHAR",
    pa.date32(): "DATE",
    pa.timestamp("us"): "TIMESTAMP",
    pa.timestamp("ns"): "TIMESTAMP_NS",
    pa.timestamp("ms"): "TIMESTAMP_MS",
    pa.timestamp("s"): "TIMESTAMP_S",
}


def duck_type(t: pa.DataType) -> str:
    """The DuckDB type whose Arrow form is ``t`` (for the types operations produce)."""
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    try:
        return _DUCK_TYPES[t]
    except KeyError:
        raise TransformError(
            f"no SQL type for Arrow type {t}", hint="cast the column first (op: cast)"
        ) from None


def sql_literal(value: Any) -> str:
    """A SQL literal that DuckDB reads back as exactly ``value`` (floats round-trip bit for bit)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"CAST({sql_quote(repr(value))} AS DOUBLE)"
    return sql_quote(str(value))


def json_scalar(value: Any) -> Any:
    """A numpy or DuckDB scalar as a plain JSON value (int, float, str, bool or None)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    if hasattr(value, "as_py"):  # Arrow scalar
        return value.as_py()
    from decimal import Decimal

    if isinstance(value, Decimal):
        return float(value)
    return str(value)


# --------------------------------------------------------------------------- schemas


def schema_to_json(schema: pa.Schema) -> dict[str, Any]:
    """A schema as JSON: readable fields, plus Arrow's own serialization for an exact reload."""
    import base64

    return {
        "fields": [{"name": f.name, "type": str(f.type)} for f in schema],
        "arrow": base64.b64encode(schema.serialize().to_pybytes()).decode("ascii"),
    }


def schema_from_json(data: dict[str, Any]) -> pa.Schema:
    import base64

    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(data["arrow"])))


def empty_table(schema: pa.Schema) -> pa.Table:
    return pa.Table.from_batches([], schema=schema)


# --------------------------------------------------------------------------- errors


def close_matches(name: str, available: Iterable[str]) -> list[str]:
    return difflib.get_close_matches(name, list(available), n=3, cutoff=0.6)


def unknown_columns_error(missing: Sequence[str], available: Sequence[str], where: str) -> TransformError:
    """The error for columns named in a config or call that the data does not have."""
    parts = []
    for name in missing:
        near = close_matches(name, available)
        hint = f" (did you mean {', '.join(repr(m) for m in near)}?)" if near else ""
        parts.append(f"{name!r}{hint}")
    shown = ", ".join(repr(a) for a in list(available)[:20])
    more = f", ... ({len(available)} in all)" if len(available) > 20 else ""
    noun = "column" if len(missing) == 1 else "columns"
    return TransformError(
        f"{where}: unknown {noun} {', '.join(parts)}; the data has {shown}{more}",
        hint="fix the column name in blase.yaml (transform:) or in the call; earlier steps "
        "may have renamed or dropped it",
    )


# --------------------------------------------------------------------------- DuckDB helpers

_local = threading.local()


def batch_connection() -> duckdb.DuckDBPyConnection:
    """A small single-threaded DuckDB connection (one per thread) for SQL over one batch."""
    con = getattr(_local, "con", None)
    if con is None:
        import duckdb

        con = duckdb.connect(":memory:", config={"threads": 1, "preserve_insertion_order": True})
        _local.con = con
    return con


def arrow_table(con: duckdb.DuckDBPyConnection, query: str) -> pa.Table:
    rel = con.sql(query)
    if hasattr(rel, "to_arrow_table"):
        return rel.to_arrow_table()
    return rel.arrow()  # pragma: no cover - DuckDB < 1.1


def arrow_reader(con: duckdb.DuckDBPyConnection, query: str, batch_rows: int) -> pa.RecordBatchReader:
    rel = con.sql(query)
    if hasattr(rel, "to_arrow_reader"):
        return rel.to_arrow_reader(batch_rows)
    return rel.fetch_record_batch(batch_rows)  # pragma: no cover - DuckDB < 1.1


def query_batch(table: pa.Table, stage: SQLStage) -> pa.Table:
    """Run one SQL stage over an in-memory table (the Arrow path of SQL-defined operations)."""
    con = batch_connection()
    con.register("_blase_batch", table)
    try:
        out = arrow_table(con, stage.over("_blase_batch")[1:-1])
    finally:
        con.unregister("_blase_batch")
    return out


def schema_of(con: duckdb.DuckDBPyConnection, relation: str) -> pa.Schema:
    return arrow_table(con, f"SELECT * FROM {relation} AS _s LIMIT 0").schema


def as_table(data: Any) -> pa.Table:
    """A ``pa.Table`` from a table, a record batch, an iterable of batches or a pandas frame."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if type(data).__module__.startswith("pandas"):
        return pa.Table.from_pandas(data, preserve_index=False)
    batches = list(data)
    if not batches:
        raise TransformError("cannot fit on no data: the iterable of batches was empty")
    return pa.concat_tables([as_table(b) for b in batches])


# --------------------------------------------------------------------------- the contract


class Operation:
    """Base class of every transform operation, built-in or yours.

    Subclasses store their ``__init__`` arguments unchanged under the same names and do no
    other work there. Fitting learns attributes ending in ``_`` and returns ``self``.
    Override either :meth:`fit_sql` (statistics from a DuckDB relation, out-of-core; what
    the built-in operations do) or :meth:`fit` (one streaming pass over Arrow record
    batches; the simple choice for your own operations), and :meth:`apply`.

    Class attributes
    ----------------
    op_name:
        The name used in ``blase.yaml`` and in saved state (``"impute"``).
    preserves_rows:
        False for operations that drop rows (``Filter``); the conformance checker then only
        checks that no rows are added.
    """

    op_name: ClassVar[str] = ""
    preserves_rows: ClassVar[bool] = True
    #: True for operations that may give more rows than they get (``explode``: one row per
    #: list element); such an operation also sets ``preserves_rows = False``.
    adds_rows: ClassVar[bool] = False
    #: False for operations whose fit only looks at the schema (no pass over the data).
    needs_data: ClassVar[bool] = True
    #: The column kind picked when ``columns`` is ``None`` (``None``: ``columns`` is required).
    default_kind: ClassVar[str | None] = None

    @classmethod
    def example(cls) -> tuple[dict[str, Any], pa.Table] | None:
        """Options and a table for the conformance checks (``blase plugin check``), for an
        operation that needs other columns than :func:`blase.testing.sample_table` has (a
        list to explode) or options without defaults. Default: None (the sample table, the
        default options)."""
        return None

    # ------------------------------------------------------------- parameters

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        """The ``__init__`` arguments, by name (as scikit-learn's ``get_params(deep=False)``)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def saved_params(self) -> dict[str, Any]:
        """The parameters as written to a saved transform (JSON); default :meth:`get_params`."""
        return self.get_params()

    def set_params(self, **params: Any) -> Operation:
        valid = set(self._param_names())
        for key, value in params.items():
            if key not in valid:
                raise TransformError(f"{type(self).__name__} has no parameter {key!r}; it has {sorted(valid)}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @property
    def label(self) -> str:
        return self.op_name or type(self).__name__

    # ------------------------------------------------------------- state

    def learned_attributes(self) -> list[str]:
        return sorted(k for k in vars(self) if k.endswith("_") and not k.startswith("_"))

    @property
    def is_fitted(self) -> bool:
        return bool(self.learned_attributes())

    def check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted yet",
                hint="call fit(...) first, or load a fitted transform with Transform.load(path)",
            )

    def state(self) -> dict[str, Any]:
        """The learned attributes as a JSON-able dict (checked: no pickle, ever)."""
        self.check_fitted()
        out = {k: getattr(self, k) for k in self.learned_attributes()}
        try:
            json.dumps(out, allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise TransformError(
                f"{type(self).__name__}: learned state is not JSON-able ({exc})",
                hint="store learned values as lists, dicts, numbers and strings (use .tolist() "
                "on numpy arrays)",
            ) from None
        return out

    @classmethod
    def from_state(cls, params: dict[str, Any], state: dict[str, Any]) -> Operation:
        """Rebuild a fitted operation from its parameters and :meth:`state`."""
        op = cls(**params)
        for key, value in state.items():
            if not key.endswith("_"):
                raise TransformError(f"{cls.__name__}: state key {key!r} does not end in '_'")
            setattr(op, key, value)
        return op

    # ------------------------------------------------------------- fitting

    def fit(self, data: Any, *, exclude: Sequence[str] = ()) -> Operation:
        """Learn state from ``data``: a ``pa.Table``, record batches, or a pandas frame.

        Built-in operations compute their statistics with DuckDB over the whole of ``data``;
        :class:`blase.transform.Transform` calls :meth:`fit_sql` over Parquet instead, so the
        data need not fit in memory.
        """
        if type(self).fit_sql is Operation.fit_sql:
            raise TypeError(f"{type(self).__name__} must override fit(batches) or fit_sql(...)")
        table = as_table(data)
        con = batch_connection()
        name = f"_blase_fit_{id(self)}"
        con.register(name, table)
        try:
            return self.fit_sql(con, name, table.schema, exclude=exclude)
        finally:
            con.unregister(name)

    def fit_sql(
        self,
        con: duckdb.DuckDBPyConnection,
        relation: str,
        schema: pa.Schema,
        *,
        exclude: Sequence[str] = (),
    ) -> Operation:
        """Learn state from a DuckDB relation (a table name or a parenthesised query).

        The default streams the relation's rows, in order, as record batches into
        :meth:`fit`, which is how an operation that overrides only ``fit`` is fitted.
        """
        if type(self).fit is Operation.fit:
            raise TypeError(f"{type(self).__name__} must override fit(batches) or fit_sql(...)")
        reader = arrow_reader(con, f"SELECT * FROM {relation} AS _f", 65_536)
        return self.fit(iter(reader))

    def resolve_columns(self, schema: pa.Schema, exclude: Sequence[str] = (), *,
                        kind: str | None = None) -> list[str]:
        """The columns this operation acts on: ``self.columns``, checked against ``schema``,
        or every column of ``kind`` (default :attr:`default_kind`) not in ``exclude``."""
        names = schema.names
        columns = getattr(self, "columns", None)
        kind = kind or self.default_kind
        if columns is not None:
            if isinstance(columns, str):
                columns = [columns]
            missing = [c for c in columns if c not in names]
            if missing:
                raise unknown_columns_error(missing, names, f"{self.label}")
            if kind is not None:
                wrong = [c for c in columns if not is_kind(schema.field(c).type, kind)]
                if wrong:
                    types = ", ".join(f"{c!r} is {schema.field(c).type}" for c in wrong)
                    raise TransformError(
                        f"{self.label}: needs {kind} columns, but {types}",
                        hint="cast the column first (op: cast) or leave it out of 'columns'",
                    )
            return list(dict.fromkeys(columns))
        if kind is None:
            raise TransformError(f"{self.label}: 'columns' is required")
        return [f.name for f in schema if f.name not in exclude and is_kind(f.type, kind)]

    # ------------------------------------------------------------- applying

    def apply(self, table: pa.Table) -> pa.Table:
        """Transform one batch (vectorised). Must not depend on other batches."""
        raise NotImplementedError

    def sql(self, schema: pa.Schema) -> SQLStage | None:
        """This operation as one SQL stage over a relation of ``schema``; ``None``: no SQL form."""
        return None

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        """The schema :meth:`apply` returns for input ``schema`` (default: apply to no rows)."""
        return self.apply(empty_table(schema)).schema

    def required_columns(self) -> list[str]:
        """Input columns :meth:`apply` needs (checked before applying, with a clear error)."""
        return list(getattr(self, "columns_", None) or [])

    def fit_notes(self) -> list[str]:
        """Warnings from the last fit (e.g. a fallback taken), for the step's report."""
        return list(getattr(self, "_notes", []))

    def _note(self, message: str) -> None:
        logger.warning("%s", message)
        notes = self.__dict__.setdefault("_notes", [])
        notes.append(message)


def aliased(expr: str, name: str) -> str:
    """``expr AS "name"``."""
    return f"{expr} AS {sql_ident(name)}"
