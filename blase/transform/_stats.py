"""Out-of-core statistics over a DuckDB relation: moments, exact quantiles, value counts.

Everything here runs as aggregate queries whose memory does not grow with the row count.
DuckDB's own ``quantile_cont`` keeps every value of a column in memory (40 million doubles
overflow a 500 MB limit), so :func:`exact_quantiles` finds order statistics by histogram
refinement instead: count the values in 4,096 equal-width buckets, keep the bucket that
holds the wanted rank, repeat until it is small, then sort just that bucket. The answer is
exact and equals ``numpy.quantile(..., method="linear")`` (DuckDB's ``quantile_cont``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from blase._duck import sql_ident
from blase.transform._base import json_scalar, sql_literal

if TYPE_CHECKING:
    import duckdb

__all__ = ["exact_quantiles", "exact_quantiles_many", "moments", "top_values"]

#: Buckets per refinement pass.
BUCKETS = 1 << 12
#: A bucket (or column) with at most this many values is sorted in memory. Tests lower it.
SORT_LIMIT = 2_000_000


def moments(
    con: duckdb.DuckDBPyConnection, relation: str, columns: Sequence[str], *, std: bool = False
) -> dict[str, dict[str, Any]]:
    """Count, mean, min, max (and with ``std`` the population std) of numeric ``columns``,
    ignoring nulls and NaN (as pandas and scikit-learn do).

    One pass for all columns (two with ``std``: the squared deviations from the mean, as
    numpy computes them). Sums use DuckDB's ``fsum`` (compensated summation): unlike
    ``avg``, whose result changes in the last bits with the order threads finish in, it
    gives the same digest on every run, so a refit is bit-identical.
    """
    if not columns:
        return {}
    # NaN becomes NULL once, in an inner query (4x cheaper than a FILTER on each aggregate)
    base = f"(SELECT {', '.join(f'{_number(c)} AS __m{i}' for i, c in enumerate(columns))} FROM {relation} AS _m)"
    exprs = []
    for i in range(len(columns)):
        exprs += [f"count(__m{i})", f"fsum(__m{i})", f"min(__m{i})", f"max(__m{i})"]
    row = con.execute(f"SELECT {', '.join(exprs)} FROM {base}").fetchall()[0]
    out: dict[str, dict[str, Any]] = {}
    for i, c in enumerate(columns):
        n, total, lo, hi = row[4 * i : 4 * i + 4]
        mean = float(total) / int(n) if n else None
        out[c] = {"count": int(n), "mean": mean, "min": lo, "max": hi, "std": None}
    if std:
        having = [i for i, c in enumerate(columns) if out[c]["count"]]
        if having:
            sq = [f"fsum(pow(__m{i} - {sql_literal(out[columns[i]]['mean'])}, 2))" for i in having]
            row = con.execute(f"SELECT {', '.join(sq)} FROM {base}").fetchall()[0]
            for i, ss in zip(having, row, strict=True):
                out[columns[i]]["std"] = math.sqrt(float(ss) / out[columns[i]]["count"])
    return out


def _number(column: str) -> str:
    """``column`` as DOUBLE, with NaN as NULL (so aggregates skip it as they skip nulls)."""
    v = f"CAST({sql_ident(column)} AS DOUBLE)"
    return f"(CASE WHEN isnan({v}) THEN NULL ELSE {v} END)"


def _lerp(a: float, b: float, t: float) -> float:
    # numpy's linear interpolation (numpy/lib/_function_base_impl.py: _lerp), for equality
    # with numpy.quantile / sklearn's RobustScaler.
    diff = b - a
    out = a + diff * t
    if t >= 0.5:
        out = b - diff * (1 - t)
    return float(b if a == b else out)


def _valid(column: str, relation: str) -> str:
    return (
        f"(SELECT v FROM (SELECT CAST({sql_ident(column)} AS DOUBLE) AS v FROM {relation} AS _q) "
        "WHERE v IS NOT NULL AND NOT isnan(v))"
    )


def exact_quantiles(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    column: str,
    qs: Sequence[float],
    *,
    sort_limit: int | None = None,
) -> list[float | None]:
    """Exact linear-interpolation quantiles of one column, ignoring nulls and NaN.

    Memory stays bounded by ``sort_limit`` values (default :data:`SORT_LIMIT`) whatever the
    row count; each refinement pass reads the one column once. ``None`` for an all-null
    column.
    """
    return exact_quantiles_many(con, relation, [column], qs, sort_limit=sort_limit)[column]


def exact_quantiles_many(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    columns: Sequence[str],
    qs: Sequence[float],
    *,
    sort_limit: int | None = None,
) -> dict[str, list[float | None]]:
    """:func:`exact_quantiles` of several columns (one summary pass shared by all)."""
    if not columns:
        return {}
    limit = SORT_LIMIT if sort_limit is None else sort_limit
    base = f"(SELECT {', '.join(f'{_number(c)} AS __q{i}' for i, c in enumerate(columns))} FROM {relation} AS _s)"
    exprs = [f"{agg}(__q{i})" for i in range(len(columns)) for agg in ("count", "min", "max")]
    row = con.execute(f"SELECT {', '.join(exprs)} FROM {base}").fetchall()[0]
    out: dict[str, list[float | None]] = {}
    for i, c in enumerate(columns):
        n, lo, hi = int(row[3 * i]), row[3 * i + 1], row[3 * i + 2]
        if n == 0:
            out[c] = [None for _ in qs]
            continue
        # numpy's virtual index for method="linear", written the same way so that the
        # interpolation weights match numpy's (and RobustScaler's) to the last bit.
        positions = [min(max((n - 1) * q, 0.0), float(n - 1)) for q in qs]
        ranks = sorted({r for p in positions for r in (math.floor(p), min(math.floor(p) + 1, n - 1))})
        found = _order_stats(con, _valid(c, relation), ranks, lo, hi, n, limit)
        out[c] = [
            _lerp(found[math.floor(p)], found[min(math.floor(p) + 1, n - 1)], p - math.floor(p))
            for p in positions
        ]
    return out


def _order_stats(
    con: duckdb.DuckDBPyConnection,
    base: str,
    ranks: list[int],
    lo: float,
    hi: float,
    n: int,
    limit: int,
) -> dict[int, float]:
    """Values at 0-based ``ranks`` in ascending order; ``[lo, hi]`` holds all ``n`` values."""
    found: dict[int, float] = {}
    # Each work item: a value range [lo, hi] holding `count` values, `offset` values below it.
    work: list[tuple[float, float, int, int, list[int]]] = [(lo, hi, 0, n, ranks)]
    while work:
        lo, hi, offset, count, wanted = work.pop()
        where = f"v BETWEEN {sql_literal(float(lo))} AND {sql_literal(float(hi))}"
        if lo == hi:
            found.update({r: float(lo) for r in wanted})
            continue
        if count <= limit:
            rows = con.execute(f"SELECT v FROM {base} AS _b WHERE {where} ORDER BY v").fetchnumpy()["v"]
            values = np.asarray(rows, dtype=np.float64)
            found.update({r: float(values[r - offset]) for r in wanted})
            continue
        width = (hi * 0.5 - lo * 0.5) / BUCKETS
        if not (width > 0 and math.isfinite(width)):
            buckets = _distinct_counts(con, base, where)
        else:
            bucket = (
                f"LEAST(GREATEST(CAST(floor((v * 0.5 - {sql_literal(float(lo) * 0.5)}) / "
                f"{sql_literal(width)}) AS BIGINT), 0), {BUCKETS - 1})"
            )
            buckets = con.execute(
                f"SELECT {bucket} AS b, count(*) AS c, min(v) AS lo, max(v) AS hi FROM {base} AS _b "
                f"WHERE {where} GROUP BY b ORDER BY b"
            ).fetchall()
            if len(buckets) == 1:  # no progress (values packed at float resolution)
                buckets = _distinct_counts(con, base, where)
        below = offset
        i = 0
        for _, c, blo, bhi in buckets:
            inside = [r for r in wanted[i:] if r < below + c]
            if inside:
                work.append((blo, bhi, below, int(c), inside))
                i += len(inside)
            below += int(c)
    return found


def _distinct_counts(con: duckdb.DuckDBPyConnection, base: str, where: str) -> list[tuple]:
    return con.execute(
        f"SELECT v, count(*), v, v FROM {base} AS _b WHERE {where} GROUP BY v ORDER BY v"
    ).fetchall()


def top_values(
    con: duckdb.DuckDBPyConnection, relation: str, column: str, limit: int
) -> list[tuple[Any, int]]:
    """Up to ``limit`` (value, count) pairs of a column's non-null values, most frequent
    first, ties broken by value (ascending) so the result is deterministic."""
    c = sql_ident(column)
    rows = con.execute(
        f"SELECT {c} AS v, count(*) AS n FROM {relation} AS _v WHERE {c} IS NOT NULL "
        f"GROUP BY {c} ORDER BY n DESC, v ASC LIMIT {int(limit)}"
    ).fetchall()
    return [(json_scalar(v), int(n)) for v, n in rows]
