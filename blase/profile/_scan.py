"""One DuckDB pass over data: rows per key of every monitored column, and a sample of rows.

Every column is grouped by a cheap per-row expression (the unscaled bin of a number, the raw
value of a category) and the key is made from each *distinct* value afterwards, so the work
per row is a parse, a little arithmetic and one hash-table update per column
(``GROUP BY GROUPING SETS``, spilled to disk under the memory budget). Mapping categories
onto the reference's (a string lookup) and clamping bins run once per group, not per row.

The sample rides in the same pass as one more grouping set: the chosen rows packed into
one JSON text (``to_json(struct_pack(...))``, read back with ``from_json`` to the columns'
own types, exactly), NULL for every other row. Grouping on a mostly-NULL text column costs
a fraction of grouping on a struct, whose every field is hashed and compared on every row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from blase._duck import sql_ident, sql_quote

__all__ = ["ColumnKeys", "grouped_counts"]

#: ``{column: (per-row SQL, SQL of the key from its alias)}`` (see :func:`grouped_counts`).
ColumnKeys = dict[str, tuple[str, Callable[[str], str]]]

#: DuckDB's ``grouping_id`` takes fewer than 64 columns: wider data is scanned in chunks.
MAX_GROUPING_SETS = 63


def grouped_counts(
    con: Any, relation: str, keys: ColumnKeys, *, sample: str | None = None,
    sample_columns: list[str] | None = None,
) -> dict[str, Any]:
    """Rows per key of every column in one scan of ``relation``.

    Parameters
    ----------
    con:
        The DuckDB connection that can read ``relation``.
    relation:
        A FROM-clause expression.
    keys:
        ``{column: (scan, key)}``: ``scan`` is the SQL grouped on for each row, ``key(alias)``
        the SQL of the key from the grouped value's alias (run once per distinct value).
    sample:
        A SQL condition choosing the rows to return whole (e.g. ``random() < 0.01``).
    sample_columns:
        The columns of those rows.

    Returns
    -------
    dict
        ``{column: {key: rows}}`` (the NULL key counts nulls) and, with ``sample``,
        ``"__sample__"``: the rows meeting it (``sample_columns``, their types kept) as an
        Arrow table, each repeated as often as it occurs.

        More than :data:`MAX_GROUPING_SETS` columns (64 pixels of an image, wide sensor
        data) take one scan per chunk of 62 columns; the sample rides in the first.
    """
    names = list(keys)
    if len(names) + (sample is not None) <= MAX_GROUPING_SETS:
        return _grouped_counts_once(con, relation, keys, sample=sample, sample_columns=sample_columns)
    out: dict[str, Any] = {}
    width = MAX_GROUPING_SETS - 1
    # several scans: a source that streams once (a source plugin's, an Arrow stream) is read
    # into a temporary table first (DuckDB spills it to disk under its memory limit)
    con.execute(f"CREATE OR REPLACE TEMP TABLE __blase_scanned AS SELECT * FROM {relation}").fetchall()
    relation = "__blase_scanned"
    for start in range(0, len(names), width):
        chunk = {name: keys[name] for name in names[start : start + width]}
        out.update(_grouped_counts_once(
            con, relation, chunk, sample=sample if start == 0 else None,
            sample_columns=sample_columns if start == 0 else None,
        ))
    return out


def _grouped_counts_once(
    con: Any, relation: str, keys: ColumnKeys, *, sample: str | None = None,
    sample_columns: list[str] | None = None,
) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    names = list(keys)
    aliases = [f"__k{i}" for i in range(len(names))]
    scans = [f"{scan} AS {a}" for (scan, _), a in zip(keys.values(), aliases, strict=True)]
    mapped = [f"{key(a)} AS {a}" for (_, key), a in zip(keys.values(), aliases, strict=True)]
    group_cols = list(aliases)
    if sample is not None and sample_columns:
        idents = [sql_ident(c) for c in sample_columns]
        described = con.execute(f"DESCRIBE SELECT {', '.join(idents)} FROM {relation}").fetchall()
        structure = json.dumps({row[0]: row[1] for row in described})
        packed = f"to_json(struct_pack({', '.join(f'{i} := {i}' for i in idents)}))"
        scans.append(f"CASE WHEN {sample} THEN CAST({packed} AS VARCHAR) END AS __smp")
        mapped.append(f"from_json(__smp, {sql_quote(structure)}) AS __smp")
        group_cols.append("__smp")
    if not group_cols:
        return {}
    grouped = (f"SELECT grouping_id({', '.join(group_cols)}) AS __g, {', '.join(group_cols)}, count(*) AS __n "
               f"FROM (SELECT {', '.join(scans)} FROM {relation}) "
               f"GROUP BY GROUPING SETS ({', '.join(f'({c})' for c in group_cols)})")
    # several grouped values can make one key (categories new to the reference, clamped bins)
    table = con.sql(f"SELECT __g, {', '.join(mapped)}, CAST(sum(__n) AS BIGINT) AS __n "
                    f"FROM ({grouped}) GROUP BY ALL").to_arrow_table()
    width = len(group_cols)
    full = (1 << width) - 1
    g = table["__g"].to_numpy()
    n = table["__n"].to_numpy()
    out: dict[str, Any] = {}
    for i, name in enumerate(names):
        idx = np.flatnonzero(g == full ^ (1 << (width - 1 - i)))
        keys_col = table[aliases[i]].take(pa.array(idx)).to_pylist()
        out[name] = dict(zip(keys_col, n[idx].tolist(), strict=True))
    if "__smp" in group_cols:
        picked = table.filter(pa.array(g == full ^ 1))
        picked = picked.filter(pc.is_valid(picked["__smp"]))
        struct = picked["__smp"].combine_chunks()
        repeat = np.repeat(np.arange(len(picked)), picked["__n"].to_numpy())
        flat = pa.Table.from_arrays(struct.flatten(), names=[f.name for f in struct.type])
        out["__sample__"] = flat.take(pa.array(repeat))
    return out
