"""The profile of a source: one full DuckDB pass for the cheap statistics and a sample for
the expensive ones (see :mod:`blase.schema`)."""

from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from blase._duck import confinement_error, connect, sql_ident
from blase.errors import DataError
from blase.schema._report import (
    FLOAT_TYPES,
    ColumnReport,
    SchemaReport,
    is_num,
    is_text,
    is_time,
    plain,
)
from blase.schema._suggest import kind_of, label_candidates, label_checks, suggest

logger = logging.getLogger(__name__)

# -- reading --------------------------------------------------------------------------------


def _source_reader(source: str | os.PathLike[str], con: Any) -> tuple[Any, Any]:
    """The :class:`blase.extract.Extract` of ``source``, and a function returning a DuckDB
    table expression for it, fresh on each call: some sources (Arrow, SQLite) can be scanned
    once per expression. The source is resolved and sniffed once."""
    from blase.extract import Extract

    # a profile tolerates malformed rows: it describes the data that can be read
    reader = Extract(source).with_bad_rows("skip")
    return reader, lambda: reader.sql_source(con)


def _estimate_rows(source: str | os.PathLike[str]) -> int | None:
    """Rows of a Parquet source (exact, from metadata) or a text file (from its size)."""
    from blase._sample import data_files, estimate_rows

    try:
        return estimate_rows(data_files(source))
    except Exception:  # an estimate only; the sampling pass below is the fallback
        logger.debug("cannot estimate rows of %s", source, exc_info=True)
    return None


# -- analysis -------------------------------------------------------------------------------


def suggest_schema(
    source: str | os.PathLike[str],
    *,
    label: str | None = None,
    memory: int | str | None = None,
    sample_rows: int = 100_000,
) -> SchemaReport:
    """Profile a source and suggest a kind and a transform for each column.

    Parameters
    ----------
    source:
        A file (CSV, Parquet, JSON/NDJSON, ...) or folder of Parquet files; read through
        :class:`blase.extract.Extract` (malformed rows skipped).
    label:
        The label column, when known: enables leakage checks and the class-imbalance warning,
        and keeps the label out of the suggested transform.
    memory:
        Memory budget (``"2GB"``, bytes, ``"auto"``/None).
    sample_rows:
        Rows sampled for quantiles, skew, outliers, top values and leakage.

    Returns
    -------
    SchemaReport

    Raises
    ------
    DataError
        When the source cannot be read or ``label`` is not one of its columns.
    """
    import duckdb

    path = os.fspath(source)
    parquet = ".parquet" in path.lower() or Path(path).is_dir()  # NaN-safe costs ~20 % on CSV
    con = connect(memory, tmp_dir=Path(tempfile.gettempdir()) / "blase-schema", nan_safe=parquet)
    try:
        try:
            reader, fresh = _source_reader(source, con)
            described = con.execute(f"DESCRIBE SELECT * FROM {fresh()}").fetchall()
        except duckdb.Error as exc:
            outside = confinement_error(exc)
            raise DataError(
                f"cannot read {source}: {outside or exc}".splitlines()[0],
                hint="copy the data it needs into the project (e.g. data/)" if outside
                else "check the path and the file's format",
            ) from None
        dtypes = {r[0]: str(r[1]) for r in described}
        if label is not None and label not in dtypes:
            import difflib

            close = difflib.get_close_matches(label, list(dtypes), n=1)
            raise DataError(
                f"label column '{label}' is not in {source}",
                hint=f"did you mean '{close[0]}'?"
                if close
                else f"columns are: {', '.join(dtypes)}",
            )
        try:
            full, sample = _scan(con, fresh, dtypes, source, sample_rows)
        except duckdb.Error as exc:
            raise DataError(
                f"cannot scan {source}: {str(exc).splitlines()[0]}",
                hint="check that the file is complete and in the format its name says",
            ) from exc
        if not full["__rows"]:
            # a column of no values is not "constant", and no kind can be told from it
            raise DataError(
                f"{source} has no rows: nothing to profile",
                hint="profile a file that holds data (add rows, or point at another file)",
            )
        con.register("__sample", sample)
        sampled = _sample_stats(con, dtypes) if sample.num_rows else {n: {} for n in dtypes}
        columns = [_column(name, dtype, full, sampled[name]) for name, dtype in dtypes.items()]
        report = SchemaReport(
            source=os.fspath(source),
            rows=full["__rows"],
            sample_rows=sample.num_rows,
            label=label,
            columns=columns,
        )
        suggest(report)
        notes = reader.type_notes()
        for col in report.columns:
            if col.name in notes:  # a stray string in a numeric column: say what extract does
                col.warnings.append(notes[col.name])
        label_checks(con, report)
        label_candidates(report)
        return report
    finally:
        con.close()


def _scan(
    con: Any, fresh: Any, dtypes: dict[str, str], source: Any, sample_rows: int
) -> tuple[dict, Any]:
    """The one full pass (per-column aggregates) and the sample.

    A big plain CSV is sampled by position first (:func:`blase._sample.byte_range_sample`,
    ~1 % of the file); any other source keeps a hash-picked sample inside the pass, which
    on the flights CSV cost 0.7x a ``count(*)`` scan (hashing every column of every row and
    packing the picked ones)."""
    import pyarrow as pa

    from blase._sample import byte_range_sample

    sample = None
    if isinstance(source, (str, os.PathLike)):
        sample = byte_range_sample(con, source, fresh(), sample_rows)
    # mean and std come from sums of (x - c) and (x - c)^2 (3x cheaper than avg + stddev_samp),
    # c a centre taken from rows read before the pass, so the sums do not cancel
    ahead = sample if sample is not None else _arrow(con.sql(f"SELECT * FROM {fresh()} LIMIT 2048"))
    centres = _centres(con, ahead, dtypes)
    # A CSV sampled by position rarely holds NaN (the text 'NaN' reads as null): its floats
    # skip the per-row NaN guard (5 % of the pass), and a column whose max comes back NaN
    # (DuckDB orders NaN above every number) is computed again with it below.
    guard = sample is None
    aggs = ["count(*) AS __rows"]
    derived = []  # computed once per row in the inner query
    for i, (name, t) in enumerate(dtypes.items()):
        c = sql_ident(name)
        aggs += [f"count({c}) AS n{i}", f"approx_count_distinct({c}) AS d{i}"]
        if is_num(t):
            more, per_row = _moment_aggs(i, c, t, centres[name], nan_guard=guard)
            aggs += more
            derived += per_row
        elif t == "BOOLEAN":
            aggs += [f"avg({c}::INTEGER) AS mu{i}"]
        elif is_time(t):
            aggs += [f"min({c}) AS lo{i}", f"max({c}) AS hi{i}"]
    estimate = None if sample is not None else _estimate_rows(source)
    inline = estimate is not None
    if inline:
        # oversample a little (the estimate may be low), then trim by hash to sample_rows
        share = min(1.0, 1.25 * sample_rows / max(1, estimate))
        cut = min((1 << 64) - 1, int(share * (1 << 64)))
        derived.append(f"hash({', '.join(sql_ident(n) for n in dtypes)}) AS __blase_h")
        fields = ", ".join(f"{sql_ident(n)} := {sql_ident(n)}" for n in dtypes)
        aggs.append(
            f"list(struct_pack({fields}, __h := __blase_h)) FILTER "
            f"(WHERE __blase_h < CAST({cut} AS UBIGINT)) AS __sample"
        )
    rel = fresh()
    scanned = f"(SELECT *, {', '.join(derived)} FROM {rel})" if derived else rel
    table = _arrow(con.sql(f"SELECT {', '.join(aggs)} FROM {scanned}"))
    full = {
        name: table.column(name)[0].as_py() for name in table.column_names if name != "__sample"
    }
    full["__names"] = list(dtypes)
    redo = [
        (i, name, t)
        for i, (name, t) in enumerate(dtypes.items())
        if not guard and t in FLOAT_TYPES and _is_nan(full.get(f"hi{i}"))
    ]
    if redo:
        logger.info("schema: NaN in %s; computing their statistics again", [n for _, n, _ in redo])
        aggs, derived = [], []
        for i, name, t in redo:
            more, per_row = _moment_aggs(i, sql_ident(name), t, centres[name], nan_guard=True)
            aggs += more
            derived += per_row
        again = _arrow(
            con.sql(
                f"SELECT {', '.join(aggs)} FROM (SELECT *, {', '.join(derived)} FROM {fresh()})"
            )
        )
        full.update({name: again.column(name)[0].as_py() for name in again.column_names})
    for i, name in enumerate(dtypes):
        if f"s1_{i}" in full:
            full[f"mu{i}"], full[f"sd{i}"] = _moments(
                centres[name],
                full.pop(f"s1_{i}"),
                full.pop(f"s2_{i}"),
                full[f"n{i}"] - (full.get(f"nan{i}") or 0),
            )
    if inline:
        cell = table.column("__sample")[0]
        structs = cell.values if cell.is_valid else None
        sample = (
            pa.Table.from_batches([pa.RecordBatch.from_struct_array(structs)])
            if structs is not None and len(structs)
            else None
        )
        if sample is None:
            sample = _arrow(con.sql(f"SELECT * FROM {fresh()} LIMIT 0"))
        elif sample.num_rows > sample_rows:
            import numpy as np
            import pyarrow.compute as pc

            keep = pc.sort_indices(sample, sort_keys=[("__h", "ascending")])[:sample_rows]
            sample = sample.take(np.sort(keep.to_numpy()))  # the lowest hashes, in row order
        if "__h" in sample.column_names:
            sample = sample.drop(["__h"])
    elif sample is None:
        logger.info("schema: size of %s unknown beforehand; sampling in a second pass", source)
        sample = _arrow(
            con.sql(
                f"SELECT * FROM {fresh()} USING SAMPLE reservoir({int(sample_rows)} ROWS) REPEATABLE (42)"
            )
        )
    return full, sample


def _moment_aggs(
    i: int, c: str, t: str, centre: float, *, nan_guard: bool
) -> tuple[list[str], list[str]]:
    """``(aggregates, per-row expressions)`` of numeric column ``i`` (SQL ``c``, type ``t``):
    min, max and the shifted sums (see :func:`_moments`); with ``nan_guard`` a float's NaN
    counts as missing (NULL once per row, not a FILTER on each aggregate: 2.5x) and is counted."""
    v, aggs, per_row = c, [], []
    if nan_guard and t in FLOAT_TYPES:
        v = f"__blase_v{i}"
        per_row.append(f"CASE WHEN isnan({c}) THEN NULL ELSE {c} END AS {v}")
        aggs.append(f"count({c}) - count({v}) AS nan{i}")
    per_row.append(f"{v}::DOUBLE - {centre!r} AS __blase_d{i}")
    aggs += [
        f"min({v}) AS lo{i}",
        f"max({v}) AS hi{i}",
        f"sum(__blase_d{i}) AS s1_{i}",
        f"sum(__blase_d{i} * __blase_d{i}) AS s2_{i}",
    ]
    return aggs, per_row


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _centres(con: Any, rows: Any, dtypes: dict[str, str]) -> dict[str, float]:
    """The mean of each numeric column over ``rows`` (0.0 where it has no number)."""
    numeric = [n for n, t in dtypes.items() if is_num(t)]
    if not numeric or rows.num_rows == 0:
        return dict.fromkeys(numeric, 0.0)
    con.register("__blase_ahead", rows)
    try:
        means = con.execute(
            "SELECT "
            + ", ".join(
                f"avg(CASE WHEN isnan({sql_ident(n)}::DOUBLE) THEN NULL ELSE {sql_ident(n)}::DOUBLE END)"
                for n in numeric
            )
            + " FROM __blase_ahead"
        ).fetchall()[0]
    finally:
        con.unregister("__blase_ahead")
    return {
        n: float(m) if m is not None and math.isfinite(m) else 0.0
        for n, m in zip(numeric, means, strict=True)
    }


def _moments(
    centre: float, s1: float | None, s2: float | None, n: int
) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation from the sums of (x - centre) and (x - centre)^2."""
    if not n or s1 is None:
        return None, None
    mean = centre + s1 / n
    if n < 2:
        return mean, None
    return mean, math.sqrt(max(0.0, (s2 - s1 * s1 / n) / (n - 1)))


def _arrow(rel: Any) -> Any:
    for name in ("to_arrow_table", "fetch_arrow_table", "arrow"):
        fn = getattr(rel, name, None)
        if fn is not None:
            return fn()
    raise AttributeError("this DuckDB cannot return Arrow tables")  # pragma: no cover


def _sample_stats(con: Any, dtypes: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Quantiles, skew, outlier share, top values and date parsing, for every column, in four
    queries over the sample (not one per column)."""
    out: dict[str, dict[str, Any]] = {name: {} for name in dtypes}
    numeric = [n for n, t in dtypes.items() if is_num(t)]
    other = [n for n, t in dtypes.items() if not is_num(t)]
    ok = lambda c: f"{c} IS NOT NULL AND NOT isnan({c}::DOUBLE)"  # noqa: E731
    if numeric:
        parts = []
        for n in numeric:
            c = sql_ident(n)
            parts += [
                f"quantile_cont({c}::DOUBLE, [0.01, 0.25, 0.5, 0.75, 0.99]) FILTER (WHERE {ok(c)})",
                f"skewness({c}::DOUBLE) FILTER (WHERE {ok(c)})",
            ]
        row = con.execute(f"SELECT {', '.join(parts)} FROM __sample").fetchall()[0]
        fences = {}
        for k, n in enumerate(numeric):
            q, skew = row[2 * k], row[2 * k + 1]
            if q is None:
                continue
            p01, p25, p50, p75, p99 = (plain(v) for v in q)
            out[n]["quantiles"] = {"p01": p01, "p25": p25, "p50": p50, "p75": p75, "p99": p99}
            out[n]["skew"] = plain(skew) if skew is not None else 0.0
            iqr = (p75 or 0.0) - (p25 or 0.0)
            out[n]["outlier_share"] = 0.0
            if iqr > 0:
                fences[n] = (p25 - 1.5 * iqr, p75 + 1.5 * iqr)
        if fences:
            parts = [
                f"avg(CASE WHEN {sql_ident(n)}::DOUBLE < {lo!r} OR {sql_ident(n)}::DOUBLE > {hi!r} "
                f"THEN 1.0 ELSE 0.0 END) FILTER (WHERE {ok(sql_ident(n))})"
                for n, (lo, hi) in fences.items()
            ]
            row = con.execute(f"SELECT {', '.join(parts)} FROM __sample").fetchall()[0]
            for n, share in zip(fences, row, strict=True):
                out[n]["outlier_share"] = round(float(share or 0.0), 6)
    if other:
        selects = [
            f"(SELECT {k} AS col, v, n, sum(n) OVER () AS total FROM (SELECT {sql_ident(n)}::VARCHAR AS v, "
            f"count(*) AS n FROM __sample WHERE {sql_ident(n)} IS NOT NULL GROUP BY v) "
            f"ORDER BY n DESC, v LIMIT 5)"
            for k, n in enumerate(other)
        ]
        for k, v, n, total in con.execute(" UNION ALL ".join(selects)).fetchall():
            out[other[k]].setdefault("top", []).append(
                {"value": v, "count": int(n), "share": round(n / max(1, total), 4)}
            )
        for n in other:
            out[n].setdefault("top", [])
        text = [n for n in other if is_text(dtypes[n])]
        if text:
            # mean length from the sample too: length() counts characters, 0.1x count(*) a column
            parts = [
                f"count({c}), count(try_cast({c} AS TIMESTAMP)), avg(length({c}::VARCHAR))"
                for c in map(sql_ident, text)
            ]
            row = con.execute(f"SELECT {', '.join(parts)} FROM __sample").fetchall()[0]
            for k, n in enumerate(text):
                seen, parsed, length = row[3 * k : 3 * k + 3]
                out[n]["__parses_as_time"] = bool(seen) and parsed >= 0.95 * seen
                out[n]["__mean_length"] = plain(length)
        dates = [n for n in other if is_time(dtypes[n])]
        if dates:
            from blase.transform import varying_parts

            # the parts a datetime transform would emit that vary (the others are no feature)
            for n, parts in varying_parts(con, "__sample", dates).items():
                out[n]["varying_parts"] = parts
    return out


def _column(name: str, dtype: str, full: dict[str, Any], sampled: dict[str, Any]) -> ColumnReport:
    idx = full["__names"].index(name)
    rows = int(full["__rows"])
    nans = int(full.get(f"nan{idx}") or 0)
    nulls = rows - int(full[f"n{idx}"])
    nonnull = rows - nulls - nans  # NaN counts as missing, as in pandas
    distinct = min(int(full[f"d{idx}"] or 0), nonnull)
    null_share = 0.0 if rows == 0 else round((nulls + nans) / rows, 6)
    stats: dict[str, Any] = {"count": nonnull, "nulls": nulls}
    if dtype in FLOAT_TYPES:
        stats["nans"] = nans
    if is_num(dtype):
        stats.update(
            {
                k: plain(full.get(f"{p}{idx}"))
                for k, p in (("min", "lo"), ("max", "hi"), ("mean", "mu"), ("std", "sd"))
            }
        )
    elif dtype == "BOOLEAN":
        stats["mean"] = plain(full.get(f"mu{idx}"))
    elif is_time(dtype):
        stats.update({"min": plain(full.get(f"lo{idx}")), "max": plain(full.get(f"hi{idx}"))})
    if is_text(dtype):
        stats["mean_length"] = sampled.pop("__mean_length", None)
    parses_as_time = sampled.pop("__parses_as_time", False)
    stats.update(sampled)
    col = ColumnReport(name, dtype, "continuous", null_share, distinct, stats)
    col.kind = kind_of(col, parses_as_time)
    return col
