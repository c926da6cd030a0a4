"""Deterministic train/val/test assignment.

A row's split depends only on a 64-bit hash of its key (or, without a key, of its global row
index in the source) and the seed: never on batch size, shard size, memory budget or the
number of files the source is cut into.

Row index hash
    Two independent 32-bit lanes of Thomas Mueller's integer mix (``x ^= x >> 16;
    x *= 0x45d9f3b``, twice, then ``x ^= x >> 16``) over the low and high halves of the row
    index, salted with four words derived from the seed; the lanes make the high and low
    halves of the 64-bit hash. The arithmetic stays below 2**60, so DuckDB computes it in
    ``BIGINT`` without overflow and :func:`row_hash` reproduces it in numpy exactly. It is
    defined here, not borrowed from DuckDB's ``hash()``, so splits do not change when DuckDB
    changes its hash function.
Key hash
    ``md5_number_lower(CAST(key AS VARCHAR) || '|' || seed)``: MD5 is fixed forever, so a key
    keeps its split across DuckDB versions and across re-extracts of new data (rows with the
    same key always land in the same split, unless stratification cuts a class between them).

Plain split: ``h < T1`` is train, ``h < T2`` val, the rest test, with ``T1 = train * 2**64``
and ``T2 = (train + val) * 2**64``. Stratified split: within each class, rows are ranked by
``(h, row index)`` and the first ``round(n_c * train)`` are train, the next up to
``round(n_c * (train + val))`` val, the rest test; the ranks come from one window query over
``(label, h, index)`` only, which yields per-class threshold pairs, so the data itself is
still streamed in file order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xxhash

from blase._duck import sql_quote

__all__ = ["SPLITS", "Ratios", "row_hash", "row_hash_sql", "salts", "split_case_sql"]

SPLITS: tuple[str, str, str] = ("train", "val", "test")

_MASK = 0xFFFFFFFF
_MUL = 0x45D9F3B
_TWO64 = 1 << 64


@dataclass(frozen=True)
class Ratios:
    """Split shares that add up to one."""

    train: float
    val: float
    test: float

    def cumulative(self) -> tuple[float, float]:
        return self.train, self.train + self.val

    def as_dict(self) -> dict[str, float]:
        return {"train": self.train, "val": self.val, "test": self.test}


def salts(seed: int) -> tuple[int, int, int, int]:
    """Four 32-bit salts derived from ``seed`` (stable across platforms and versions)."""
    return tuple(  # type: ignore[return-value]
        xxhash.xxh64_intdigest(f"blase-split:{int(seed)}:{j}".encode()) & _MASK for j in range(4)
    )


# -- numpy reference ----------------------------------------------------------------------


def _mix32_np(x: np.ndarray) -> np.ndarray:
    x = ((x >> np.uint64(16)) ^ x) * np.uint64(_MUL) & np.uint64(_MASK)
    x = ((x >> np.uint64(16)) ^ x) * np.uint64(_MUL) & np.uint64(_MASK)
    return (x >> np.uint64(16)) ^ x


def row_hash(index: np.ndarray | Sequence[int], seed: int) -> np.ndarray:
    """The 64-bit split hash of global row indices (numpy twin of :func:`row_hash_sql`).

    Parameters
    ----------
    index:
        Non-negative row indices.
    seed:
        The split seed.

    Returns
    -------
    numpy.ndarray
        ``uint64`` hashes, one per index.
    """
    idx = np.asarray(index, dtype=np.uint64)
    k1, k2, k3, k4 = (np.uint64(k) for k in salts(seed))
    lo = idx & np.uint64(_MASK)
    hi = idx >> np.uint64(32)
    u1 = _mix32_np(_mix32_np(lo ^ k1) ^ (hi ^ k2))
    u2 = _mix32_np(_mix32_np(lo ^ k3) ^ (hi ^ k4))
    return (u1 << np.uint64(32)) | u2


# -- SQL ------------------------------------------------------------------------------------


def _mix32_steps(col: str, out: str) -> list[tuple[str, str]]:
    """Projection steps computing ``mix32(col)`` into ``out`` (one column per step, so no
    expression repeats its input textually)."""
    a, b = f"{out}_a", f"{out}_b"
    return [
        (a, f"((xor({col} >> 16, {col})) * {_MUL}) & {_MASK}"),
        (b, f"((xor({a} >> 16, {a})) * {_MUL}) & {_MASK}"),
        (out, f"xor({b} >> 16, {b})"),
    ]


def row_hash_sql(index_col: str, seed: int) -> list[tuple[str, str]]:
    """Projection steps that add ``__h`` (UBIGINT), the split hash of ``index_col``.

    Each ``(name, expression)`` step may use the columns of the steps before it; wrap each
    in its own ``SELECT *, expression AS name FROM (...)`` level.
    """
    k1, k2, k3, k4 = salts(seed)
    steps: list[tuple[str, str]] = [
        ("__lo", f"({index_col} & {_MASK})"),
        ("__hi", f"({index_col} >> 32)"),
        ("__x1", f"xor(__lo, {k1})"),
        ("__x3", f"xor(__lo, {k3})"),
    ]
    steps += _mix32_steps("__x1", "__m1")
    steps += _mix32_steps("__x3", "__m3")
    steps += [("__y1", f"xor(__m1, xor(__hi, {k2}))"), ("__y3", f"xor(__m3, xor(__hi, {k4}))")]
    steps += _mix32_steps("__y1", "__u1")
    steps += _mix32_steps("__y3", "__u2")
    steps.append(("__h", "(CAST(__u1 AS UBIGINT) << 32) | CAST(__u2 AS UBIGINT)"))
    return steps


def key_hash_sql(key_expr: str, seed: int) -> str:
    """Expression of the split hash of a key column (UBIGINT)."""
    return f"md5_number_lower(CAST({key_expr} AS VARCHAR) || {sql_quote('|' + str(int(seed)))})"


def _threshold(share: float) -> int | None:
    """Integer threshold of a cumulative share on the 2**64 hash range (None: everything)."""
    if share >= 1.0 - 1e-12:
        return None
    return min(_TWO64 - 1, math.floor(share * _TWO64))


def split_case_sql(ratios: Ratios) -> str:
    """``CASE`` expression giving 0 (train), 1 (val) or 2 (test) from ``__h``."""
    c1, c2 = ratios.cumulative()
    t1, t2 = _threshold(c1), _threshold(c2)
    parts = []
    parts.append("WHEN TRUE THEN 0" if t1 is None else f"WHEN __h < CAST({t1} AS UBIGINT) THEN 0")
    if ratios.val > 0:
        parts.append(
            "WHEN TRUE THEN 1" if t2 is None else f"WHEN __h < CAST({t2} AS UBIGINT) THEN 1"
        )
    return "CASE " + " ".join(parts) + " ELSE 2 END"


def stratified_cuts(n: int, ratios: Ratios) -> tuple[int, int]:
    """Ranks (1-based, inclusive) that end the train and val parts of a class of ``n`` rows."""
    c1, c2 = ratios.cumulative()
    k1 = math.floor(n * c1 + 0.5)
    k2 = math.floor(n * c2 + 0.5) if ratios.test > 0 else n
    return min(k1, n), min(max(k2, k1), n)


def sql_literal(value: Any) -> str:
    """A SQL literal for a label value (string, bool, int or float)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"CAST({sql_quote(repr(value))} AS DOUBLE)"
    return sql_quote(str(value))


def stratified_case_sql(
    label_col: str, cuts: dict[Any, tuple[tuple[int, int] | None, tuple[int, int] | None]]
) -> str:
    """``CASE`` giving the split of a row from per-class ``(h, index)`` threshold pairs.

    ``cuts[value] = (train_end, val_end)``, each the ``(h, index)`` of the last row of that
    part or ``None`` when the part is empty.
    """

    def upto(pair: tuple[int, int] | None) -> str:
        if pair is None:
            return "FALSE"
        h, i = pair
        return f"(__h < CAST({h} AS UBIGINT) OR (__h = CAST({h} AS UBIGINT) AND __idx <= {i}))"

    whens = []
    for value, (end1, end2) in cuts.items():
        inner = f"CASE WHEN {upto(end1)} THEN 0 WHEN {upto(end2)} THEN 1 ELSE 2 END"
        whens.append(f"WHEN {label_col} = {sql_literal(value)} THEN {inner}")
    return "CASE " + " ".join(whens) + " ELSE 2 END" if whens else "2"
