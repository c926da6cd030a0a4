"""What prepare reads: Parquet files, optionally through a fitted transform.

With a :class:`~blase.transform.Transform`, prepare applies it while it writes shards, so
the transformed table, often wide (one-hot), never goes to disk and back:

* the transform's SQL runs inside prepare's own DuckDB query over the extract output;
* a final :class:`~blase.transform.OneHot` is not expanded in SQL (a ``CASE`` column per
  category, all cast and copied one by one into the matrix): its source columns come out
  as they are and :class:`OneHotCodes` turns each into one integer code per row, with
  exactly :meth:`OneHot.apply`'s rules (sorted categories, ``_other`` for infrequent and
  unseen values when the column has one, all zeros for a null). The shards store those
  codes (the compact layout, see :mod:`blase.prepare._rows`);
* a transform with an operation that has no SQL form is applied the ordinary way,
  :meth:`Transform.run`, into a scratch folder that prepare then reads.

Every row carries ``__idx``, its position in the input files (file by file, in sorted
order): the row id in the shards and, without a key column, what the split hashes. It is the
same whichever way the transform runs, unless an operation without a SQL form drops or adds
rows (a filter or ``explode`` applied on Arrow batches): then rows are numbered as they come
out of the transform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blase._duck import row_index_sql, sql_quote

if TYPE_CHECKING:
    import pyarrow as pa

    from blase.transform import OneHot, Transform

__all__ = ["Feed", "OneHotCodes", "open_feed"]

ROW_ID = "__idx"


def _parquet_relation(files: list[Path]) -> str:
    listed = ", ".join(sql_quote(str(f)) for f in files)
    return f"read_parquet([{listed}])"


@dataclass
class Feed:
    """A relation prepare streams from.

    Attributes
    ----------
    relation:
        A parenthesised query with the columns before any final one-hot, plus ``__idx``.
    columns:
        The columns prepare sees, in order, with DuckDB types: the transform's output
        (one-hot columns included, typed ``UTINYINT``), without ``__idx``.
    onehot:
        The final one-hot encoder whose codes :class:`OneHotCodes` computes, or None.
    expanded:
        Each one-hot output column: (its source column, its code; the code of
        ``{column}_other`` is the number of categories).
    """

    relation: str
    columns: dict[str, str]
    onehot: OneHot | None = None
    expanded: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: The Parquet files read (the transformed copies when the transform ran outside SQL).
    files: list[Path] = field(default_factory=list)
    #: The transform applied in ``relation``'s SQL (None: none, or it already ran into ``files``).
    transform: Transform | None = None


def _describe(con: Any, relation: str) -> dict[str, str]:
    return {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}


def _window_sql(con: Any, file: Path, window: tuple[int, int, int]) -> str:
    """Rows ``start..stop-1`` of one file whose first row is row ``offset`` of the input (a
    file a transform wrote with each row's position carries it already)."""
    offset, start, stop = (int(v) for v in window)
    relation = _parquet_relation([file])
    idx = "" if ROW_ID in _describe(con, relation) else f", {offset} + CAST(file_row_number AS BIGINT) AS {ROW_ID}"
    return f"(SELECT *{idx} FROM {relation} WHERE file_row_number >= {start} AND file_row_number < {stop})"


def open_feed(con: Any, files: list[Path], transform: Transform | None, scratch: Path,
              memory: int | str | None, *, protect: tuple[str, ...] = (),
              window: tuple[int, int, int] | None = None) -> Feed:
    """The :class:`Feed` of ``files`` through ``transform`` (None: the files as they are).

    ``protect`` names columns (label, key) a final one-hot must not consume: if it does, the
    one-hot runs in SQL like the other operations. ``scratch`` receives the transformed
    Parquet when the transform has an operation without a SQL form. ``window``, for one
    file and a transform with a SQL form: ``(offset, start, stop)``, only that file's rows
    ``start..stop-1``, with row ids from ``offset`` (an executor's partition).
    """
    from blase.transform import OneHot, is_other

    if transform is not None and not transform.operations:
        transform = None  # `transform: []`: the extracted columns as they are
    if transform is not None:
        n = len(transform.operations)
        if transform._sql_prefix("auto") < n:
            # the operations without SQL run on Arrow batches into scratch, which carries each
            # row's position in the input files through them (when they all keep the rows)
            files = [Path(f) for f in transform.write([str(f) for f in files], scratch, memory=memory,
                                                      row_index=ROW_ID)]
            transform = None
            carried = f"(SELECT * FROM {_parquet_relation(files)})"
            if ROW_ID in _describe(con, carried):
                columns = _describe(con, carried)
                columns.pop(ROW_ID)
                return Feed(carried, columns, files=list(files))
    base = (_window_sql(con, files[0], window) if window is not None
            else f"(SELECT *, {row_index_sql(files)} AS {ROW_ID} FROM {_parquet_relation(files)})")
    if transform is None:
        columns = _describe(con, base)
        columns.pop(ROW_ID, None)
        return Feed(base, columns, files=list(files))
    last = transform.operations[-1] if transform.operations else None
    onehot = last if type(last) is OneHot and not set(last.columns_) & set(protect) else None
    upto = n - 1 if onehot is not None else n
    relation = f"({transform.sql(base, upto=upto, keep=[ROW_ID])})"
    described = _describe(con, relation)
    described.pop(ROW_ID, None)
    if onehot is None:
        return Feed(relation, described, files=list(files), transform=transform)
    columns: dict[str, str] = {}
    expanded: dict[str, tuple[str, int]] = {}
    for name, src, value in onehot._layout(list(described)):
        if src is None:
            columns[name] = described[name]
            continue
        cats = onehot.categories_[src]
        code = len(cats) if is_other(value) else cats.index(value)
        columns[name] = "UTINYINT"
        expanded[name] = (src, code)
    return Feed(relation, columns, onehot, expanded, files=list(files), transform=transform)


class OneHotCodes:
    """A final one-hot's columns as codes: per row and source column, the position (in
    ``features``) of the one feature that is 1, or -1 (a null, or an unseen value without
    an ``_other`` column, or a one-hot column left out of ``features``).

    Parameters
    ----------
    feed:
        The feed whose ``onehot`` and ``expanded`` to apply.
    features:
        The matrix's columns, in order.
    """

    def __init__(self, feed: Feed, features: list[str]) -> None:
        assert feed.onehot is not None
        self.onehot = feed.onehot
        self.sources: list[str] = []
        self._lookup: list[np.ndarray] = []
        position = {f: j for j, f in enumerate(features)}
        self.dtype = np.dtype("<i2") if len(features) < (1 << 15) else np.dtype("<i4")
        for src in self.onehot.columns_:
            cats = self.onehot.categories_[src]
            # by OneHot.codes (0..k-1 categories, k other, k+1 null): the feature each sets, or -1
            lookup = np.full(len(cats) + 2, -1, dtype=self.dtype)
            for name, (s, code) in feed.expanded.items():
                if s == src and name in position:
                    lookup[code] = position[name]
            if (lookup >= 0).any():
                self.sources.append(src)
                self._lookup.append(lookup)

    def groups(self) -> list[tuple[str, list[int]]]:
        """``(source column, positions of the features it sets)`` per code column."""
        return [(src, sorted(int(p) for p in lookup if p >= 0))
                for src, lookup in zip(self.sources, self._lookup, strict=True)]

    def codes(self, columns: list[pa.ChunkedArray | pa.Array]) -> np.ndarray:
        """``[n, len(sources)]`` codes of the source ``columns`` (in :attr:`sources` order)."""
        n = len(columns[0]) if columns else 0
        out = np.empty((n, len(self.sources)), dtype=self.dtype)
        for g, (src, lookup, col) in enumerate(zip(self.sources, self._lookup, columns, strict=True)):
            out[:, g] = lookup[self.onehot.codes(src, col)]
        return out
