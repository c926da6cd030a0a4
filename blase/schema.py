"""Schema suggestion: what each column is, and the transform that would suit it.

:func:`suggest_schema` reads a source once and proposes, per column, a kind (continuous,
discrete, categorical_low, categorical_high, boolean, datetime, text, identifier, constant),
statistics, and suggestions with a one-line reason each (impute, scale, encode, drop), plus
label candidates and warnings (identifiers, likely leakage, constant columns, outliers,
class imbalance). :meth:`SchemaReport.to_transform_config` turns the suggestions into valid
``transform:`` entries of ``blase.yaml``, and :func:`write_suggestions` writes them there.

Cost: exactly one full pass over the data. It is one DuckDB aggregate query that computes,
for every column at once, the row count, non-null count, approximate distinct count, min,
max, mean and standard deviation (a ``SUMMARIZE``-style scan; mean and standard deviation
from shifted sums, see :func:`_scan`). The expensive parts (quantiles, skew, outliers, top
values, mean text length, leakage, date parsing of text) run on a sample of about
``sample_rows`` rows: a big plain CSV is sampled by position before the pass (64 evenly
spaced byte ranges, ~1 % of the file, :mod:`blase._sample`); other sources keep a Bernoulli
sample in the same pass (rows whose hash falls under a threshold set from the row count,
which Parquet metadata gives exactly and a CSV's size estimates). A source whose size cannot
be estimated beforehand (e.g. a database table) gets a second, sampling pass (``USING SAMPLE
reservoir``).
"""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import logging
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase._duck import connect, sql_ident, sql_quote
from blase.errors import DataError

__all__ = [
    "LOW_CARDINALITY",
    "ColumnReport",
    "SchemaReport",
    "Suggestion",
    "suggest_schema",
    "write_suggestions",
]

logger = logging.getLogger(__name__)

#: Categorical columns with at most this many distinct values are one-hot encoded.
LOW_CARDINALITY = 20
#: A text column whose mean length is above this is free text, not a category.
TEXT_MEAN_LENGTH = 30
#: Minority class share under which the label counts as imbalanced.
IMBALANCE_SHARE = 0.10
#: Share of sampled values beyond 1.5 IQR of the quartiles above which a column has outliers.
OUTLIER_SHARE = 0.02

_INT = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
}
_FLOAT = {"FLOAT", "DOUBLE"}
_LABEL_NAMES = re.compile(
    r"^(target|label|labels|class|y|outcome|response|churn|churned)$|"
    r"(^|_)(target|label|class|outcome)($|_)",
    re.IGNORECASE,
)
_ID_NAMES = re.compile(r"(^|_)(id|uuid|guid|key|index|idx)$|^id_|^(id|uuid|guid)$", re.IGNORECASE)


def _is_int(t: str) -> bool:
    return t in _INT


def _is_num(t: str) -> bool:
    return t in _INT or t in _FLOAT or t.startswith("DECIMAL")


def _is_time(t: str) -> bool:
    return t.startswith(("DATE", "TIMESTAMP", "TIME"))


def _is_text(t: str) -> bool:
    return t == "VARCHAR" or t.startswith("ENUM")


def _plain(value: Any) -> Any:
    """A JSON-friendly version of a value from DuckDB."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (_dt.date, _dt.datetime, _dt.time, _dt.timedelta)):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return value


@dataclass
class Suggestion:
    """One proposed action for a column: ``action`` is impute, scale, log1p, encode, datetime or
    drop; ``detail`` the method (median, robust, onehot, ...); ``reason`` a line for people."""

    action: str
    detail: str
    reason: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {"action": self.action, "detail": self.detail, "reason": self.reason}
        if self.params:
            out["params"] = self.params
        return out


@dataclass
class ColumnReport:
    """What :func:`suggest_schema` found about one column."""

    name: str
    dtype: str
    kind: str
    null_share: float
    cardinality: int
    stats: dict[str, Any] = field(default_factory=dict)
    suggestions: list[Suggestion] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def suggestion(self, action: str) -> Suggestion | None:
        return next((s for s in self.suggestions if s.action == action), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "kind": self.kind,
            "null_share": self.null_share,
            "cardinality": self.cardinality,
            "stats": self.stats,
            "suggestions": [s.to_json() for s in self.suggestions],
            "warnings": list(self.warnings),
        }


@dataclass
class SchemaReport:
    """The result of :func:`suggest_schema`."""

    source: str
    rows: int
    sample_rows: int
    label: str | None
    columns: list[ColumnReport]
    label_candidates: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def column(self, name: str) -> ColumnReport:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with stable keys: ``source``, ``rows``, ``sample_rows``, ``label``,
        ``columns``, ``label_candidates``, ``warnings``."""
        return {
            "source": self.source,
            "rows": self.rows,
            "sample_rows": self.sample_rows,
            "label": self.label,
            "columns": [c.to_json() for c in self.columns],
            "label_candidates": list(self.label_candidates),
            "warnings": list(self.warnings),
        }

    def to_transform_config(self) -> list[dict[str, Any]]:
        """The suggestions as ``transform:`` entries of ``blase.yaml``.

        Order: drop, impute (per strategy), datetime, log1p, scale (per method), hash,
        ordinal, onehot. The label column is never transformed. One-hot comes last because
        prepare stores a final one-hot compactly (a code per row instead of a float per
        category); the encoders act on different columns, so their order changes nothing else.
        """
        groups: dict[tuple[str, str, str], list[str]] = {}
        extra: dict[tuple[str, str, str], dict[str, Any]] = {}
        order = {"drop": 0, "impute": 1, "datetime": 2, "log1p": 3, "scale": 4, "encode": 5}
        for col in self.columns:
            if col.name == self.label:
                continue
            dropped = col.suggestion("drop") is not None
            for s in col.suggestions:
                if dropped and s.action != "drop":
                    continue
                params = json.dumps(s.params, sort_keys=True)
                key = (s.action, s.detail, params)
                groups.setdefault(key, []).append(col.name)
                extra[key] = s.params
        steps: list[dict[str, Any]] = []
        for key in sorted(groups, key=lambda k: (order.get(k[0], 9), k[1] == "onehot", k[1], k[2])):
            action, detail, _ = key
            cols = groups[key]
            if action == "drop":
                step: dict[str, Any] = {"op": "drop", "columns": cols}
            elif action == "impute":
                step = {"op": "impute", "strategy": detail, "columns": cols}
            elif action == "scale":
                step = {"op": "scale", "method": detail, "columns": cols}
            elif action == "log1p":
                step = {"op": "log1p", "columns": cols}
            elif action == "datetime":
                step = {"op": "datetime", "columns": cols}
            elif action == "encode":
                step = {"op": detail, "columns": cols}
            else:  # pragma: no cover - every action above is handled
                continue
            step.update(extra[key])
            steps.append(step)
        return steps


# -- reading --------------------------------------------------------------------------------


def _source_reader(source: str | os.PathLike[str], con: Any) -> Any:
    """A function returning a DuckDB table expression for ``source`` (through Extract when it
    is available), fresh on each call: some sources (Arrow, SQLite) can be scanned once per
    expression. The source is resolved and sniffed once."""
    try:
        from blase.extract import Extract  # written alongside; optional here
    except ImportError:
        Extract = None
    if Extract is not None and hasattr(Extract, "sql_source"):
        # a profile tolerates malformed rows: it describes the data that can be read
        reader = Extract(source).with_bad_rows("skip")
        return lambda: reader.sql_source(con)
    text = os.fspath(source)
    p = Path(text)
    if not p.exists() and not any(ch in text for ch in "*?["):
        raise DataError(f"source {text} does not exist", hint="check data.source in blase.yaml")
    lower = text.lower()
    if p.is_dir():
        expr = f"read_parquet({sql_quote(str(p / '**' / '*.parquet'))})"
    elif lower.endswith(".parquet"):
        expr = f"read_parquet({sql_quote(text)})"
    elif lower.endswith((".json", ".ndjson", ".jsonl", ".json.gz", ".ndjson.gz", ".jsonl.gz")):
        expr = f"read_json_auto({sql_quote(text)})"
    else:
        expr = f"read_csv_auto({sql_quote(text)})"
    return lambda: expr


def _estimate_rows(source: str | os.PathLike[str]) -> int | None:
    """Rows of a Parquet source (exact, from metadata) or a CSV file (from its size)."""
    p = Path(os.fspath(source))
    try:
        if p.is_dir() or p.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            files = sorted(p.rglob("*.parquet")) if p.is_dir() else [p]
            return sum(pq.read_metadata(f).num_rows for f in files) if files else None
        if p.is_file() and p.suffix.lower() in (".csv", ".tsv", ".txt"):
            with open(p, "rb") as f:
                head = f.read(1 << 20)
            lines = head.count(b"\n")
            if lines < 2:
                return max(1, lines)
            return int(p.stat().st_size / (len(head) / lines)) + 1
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
        :class:`blase.extract.Extract` when available, else with DuckDB's readers.
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
            fresh = _source_reader(source, con)
            described = con.execute(f"DESCRIBE SELECT * FROM {fresh()}").fetchall()
        except duckdb.Error as exc:
            raise DataError(
                f"cannot read {source}: {exc}".splitlines()[0],
                hint="check the path and the file's format",
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
        _suggest(report)
        _label_checks(con, report)
        _label_candidates(report)
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
    aggs = ["count(*) AS __rows"]
    derived = []  # computed once per row in the inner query
    for i, (name, t) in enumerate(dtypes.items()):
        c = sql_ident(name)
        aggs += [f"count({c}) AS n{i}", f"approx_count_distinct({c}) AS d{i}"]
        if _is_num(t):
            v = c
            if t in _FLOAT:
                # NaN is missing: keep it out of the moments (DuckDB orders NaN above every
                # number) by making it NULL once, not with a FILTER on each aggregate (2.5x)
                v = f"__blase_v{i}"
                derived.append(f"CASE WHEN isnan({c}) THEN NULL ELSE {c} END AS {v}")
                aggs += [f"count({c}) - count({v}) AS nan{i}"]
            derived.append(f"{v}::DOUBLE - {centres[name]!r} AS __blase_d{i}")
            aggs += [
                f"min({v}) AS lo{i}",
                f"max({v}) AS hi{i}",
                f"sum(__blase_d{i}) AS s1_{i}",
                f"sum(__blase_d{i} * __blase_d{i}) AS s2_{i}",
            ]
        elif t == "BOOLEAN":
            aggs += [f"avg({c}::INTEGER) AS mu{i}"]
        elif _is_time(t):
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


def _centres(con: Any, rows: Any, dtypes: dict[str, str]) -> dict[str, float]:
    """The mean of each numeric column over ``rows`` (0.0 where it has no number)."""
    numeric = [n for n, t in dtypes.items() if _is_num(t)]
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
    numeric = [n for n, t in dtypes.items() if _is_num(t)]
    other = [n for n, t in dtypes.items() if not _is_num(t)]
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
            p01, p25, p50, p75, p99 = (_plain(v) for v in q)
            out[n]["quantiles"] = {"p01": p01, "p25": p25, "p50": p50, "p75": p75, "p99": p99}
            out[n]["skew"] = _plain(skew) if skew is not None else 0.0
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
        text = [n for n in other if _is_text(dtypes[n])]
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
                out[n]["__mean_length"] = _plain(length)
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
    if dtype in _FLOAT:
        stats["nans"] = nans
    if _is_num(dtype):
        stats.update(
            {
                k: _plain(full.get(f"{p}{idx}"))
                for k, p in (("min", "lo"), ("max", "hi"), ("mean", "mu"), ("std", "sd"))
            }
        )
    elif dtype == "BOOLEAN":
        stats["mean"] = _plain(full.get(f"mu{idx}"))
    elif _is_time(dtype):
        stats.update({"min": _plain(full.get(f"lo{idx}")), "max": _plain(full.get(f"hi{idx}"))})
    if _is_text(dtype):
        stats["mean_length"] = sampled.pop("__mean_length", None)
    parses_as_time = sampled.pop("__parses_as_time", False)
    stats.update(sampled)
    col = ColumnReport(name, dtype, "continuous", null_share, distinct, stats)
    col.kind = _kind(col, parses_as_time)
    return col


def _kind(col: ColumnReport, parses_as_time: bool) -> str:
    t, card, nonnull = col.dtype, col.cardinality, col.stats["count"]
    if card <= 1:
        return "constant"
    if t == "BOOLEAN":
        return "boolean"
    if _is_time(t):
        return "datetime"
    long_text = _is_text(t) and (col.stats.get("mean_length") or 0) > TEXT_MEAN_LENGTH
    if long_text and card > LOW_CARDINALITY:
        return "text"  # before identifiers: free text is unique per row too
    unique = nonnull > 50 and card >= 0.95 * nonnull
    id_name = bool(_ID_NAMES.search(col.name))
    if (_is_int(t) or _is_text(t)) and (
        unique or (id_name and nonnull > 0 and card >= 0.5 * nonnull)
    ):
        return "identifier"
    if _is_num(t):
        if card == 2 and col.stats.get("min") == 0 and col.stats.get("max") == 1:
            return "boolean"
        return "discrete" if _is_int(t) else "continuous"
    if _is_text(t):
        if card > LOW_CARDINALITY and parses_as_time:
            return "datetime"
        return "categorical_low" if card <= LOW_CARDINALITY else "categorical_high"
    return "categorical_high" if card > LOW_CARDINALITY else "categorical_low"


def _suggest(report: SchemaReport) -> None:
    for col in report.columns:
        s = col.stats
        if col.name == report.label:
            continue
        kind = col.kind
        if kind == "identifier":
            col.warnings.append("identifier: (almost) unique per row, no use as a feature")
            col.suggestions.append(
                Suggestion(
                    "drop",
                    "drop",
                    "an identifier carries no signal that generalises; "
                    "use it as data.key for splitting instead",
                )
            )
            continue
        if kind == "constant":
            col.warnings.append("constant: a single value in every row")
            col.suggestions.append(
                Suggestion("drop", "drop", "a constant column carries no information")
            )
            continue
        if kind == "text":
            col.warnings.append("free text: too many distinct long values to encode as categories")
            col.suggestions.append(
                Suggestion(
                    "drop",
                    "drop",
                    "free text needs a text model; drop it or "
                    "derive features with a user transform",
                )
            )
            continue
        skew = float(s.get("skew") or 0.0)
        if col.null_share > 0:
            if kind in ("continuous", "discrete"):
                strategy = "median" if abs(skew) > 1 else "mean"
                shape = (
                    f"skewed (skew {skew:.1f}), so the median"
                    if strategy == "median"
                    else ("roughly symmetric, so the mean")
                )
                why = f"{col.null_share:.1%} missing; {shape}"
            else:
                strategy = "most_frequent"
                why = f"{col.null_share:.1%} missing in a {kind.replace('_', ' ')} column"
            col.suggestions.append(Suggestion("impute", strategy, why))
        if kind in ("continuous", "discrete"):
            outliers = float(s.get("outlier_share") or 0.0)
            if outliers > OUTLIER_SHARE:
                col.warnings.append(
                    f"outliers: {outliers:.1%} of sampled values lie beyond 1.5 IQR"
                )
            lo = s.get("min")
            if skew > 2 and lo is not None and lo >= 0:
                col.suggestions.append(
                    Suggestion(
                        "log1p",
                        "log1p",
                        f"heavy positive skew ({skew:.1f}) on "
                        "non-negative values: log1p makes it closer to symmetric",
                    )
                )
                col.suggestions.append(Suggestion("scale", "standard", "standardise after log1p"))
            elif outliers > OUTLIER_SHARE:
                col.suggestions.append(
                    Suggestion(
                        "scale",
                        "robust",
                        f"{outliers:.1%} outliers: median/IQR scaling is not pulled by them",
                    )
                )
            else:
                col.suggestions.append(
                    Suggestion("scale", "standard", "numeric without strong skew or outliers")
                )
        elif kind == "categorical_low":
            col.suggestions.append(
                Suggestion("encode", "onehot", f"{col.cardinality} categories: one column each")
            )
        elif kind == "categorical_high":
            if col.cardinality <= 1000:
                col.suggestions.append(
                    Suggestion(
                        "encode",
                        "onehot",
                        f"{col.cardinality} categories: keep "
                        "the 20 most frequent, the rest as 'other'",
                        {"max_categories": LOW_CARDINALITY},
                    )
                )
            else:
                n = min(1024, 1 << max(4, math.ceil(math.log2(col.cardinality / 8))))
                col.suggestions.append(
                    Suggestion(
                        "encode",
                        "hash",
                        f"{col.cardinality:,} categories: hash them into {n} columns",
                        {"n_features": n},
                    )
                )
        elif kind == "datetime":
            col.suggestions.append(
                Suggestion(
                    "datetime",
                    "datetime",
                    "dates become numeric parts (year, month, day, day of week)",
                )
            )


def _label_checks(con: Any, report: SchemaReport) -> None:
    """Leakage and class imbalance, on the sample."""
    if report.label is None or report.sample_rows == 0:
        return
    label = report.column(report.label)
    y = sql_ident(label.name)
    classification = label.kind in (
        "boolean",
        "categorical_low",
        "categorical_high",
        "constant",
    ) or (label.kind == "discrete" and label.cardinality <= LOW_CARDINALITY)
    if classification:
        counts = con.execute(
            f"SELECT count(*) FROM __sample WHERE {y} IS NOT NULL GROUP BY {y} ORDER BY 1"
        ).fetchall()
        total = sum(r[0] for r in counts)
        if counts and total and len(counts) >= 2:
            minority = counts[0][0] / total
            if minority < IMBALANCE_SHARE:
                report.warnings.append(
                    f"class imbalance: the rarest class of '{label.name}' is {minority:.1%} of rows; "
                    "consider stratify: true and class_weights: balanced"
                )
            base = counts[-1][0] / total
        else:
            base = 1.0
    for col in report.columns:
        if col.name == label.name or col.suggestion("drop") is not None:
            continue
        c = sql_ident(col.name)
        reason = None
        if classification and base < 0.95:
            # per-value purity over values seen at least twice (unique values are trivially pure)
            got = con.execute(
                f"WITH g AS (SELECT {c} AS v, {y} AS t, count(*) AS n FROM __sample "
                f"WHERE {c} IS NOT NULL AND {y} IS NOT NULL GROUP BY ALL), "
                f"v AS (SELECT v, sum(n) AS n, max(n) AS top FROM g GROUP BY v HAVING sum(n) >= 2) "
                f"SELECT sum(top), sum(n), (SELECT sum(n) FROM g) FROM v"
            ).fetchall()[0]
            pure, covered, seen = (float(x or 0) for x in got)
            if covered >= 0.5 * max(seen, 1) and covered > 0 and pure / covered >= 0.99:
                reason = f"each value of '{col.name}' almost fixes the label (purity {pure / covered:.1%})"
        elif not classification and _is_num(label.dtype) and _is_num(col.dtype):
            r = con.execute(f"SELECT corr({c}::DOUBLE, {y}::DOUBLE) FROM __sample").fetchall()[0][0]
            if r is not None and not math.isnan(r) and abs(r) > 0.95:
                reason = f"correlation with the label is {r:.3f}"
        if reason:
            col.warnings.append(f"likely leakage: {reason}")
            col.suggestions = [
                Suggestion(
                    "drop",
                    "drop",
                    f"likely leakage: {reason}; check it is known "
                    "at prediction time before keeping it",
                )
            ]
            report.warnings.append(f"column '{col.name}' may leak the label: {reason}")


def _label_candidates(report: SchemaReport) -> None:
    out = []
    for col in report.columns:
        if col.kind in ("identifier", "constant", "text") or any(
            "leakage" in w for w in col.warnings
        ):
            continue
        named = bool(_LABEL_NAMES.search(col.name))
        low = 2 <= col.cardinality <= LOW_CARDINALITY and col.kind in (
            "boolean",
            "categorical_low",
            "discrete",
        )
        given = col.name == report.label
        if not (named or low or given):
            continue
        reasons = ["given as the label"] if given else []
        if named:
            reasons.append("its name suggests a target")
        if low:
            reasons.append(f"{col.cardinality} distinct values (a classification target)")
        elif named and col.kind in ("continuous", "discrete"):
            reasons.append("numeric (a regression target)")
        out.append(
            {"name": col.name, "score": 4 * given + 2 * named + low, "reason": "; ".join(reasons)}
        )
    out.sort(key=lambda d: (-d["score"], d["name"]))
    report.label_candidates = out
    for col in report.columns:
        if col.warnings and col.kind in ("identifier", "constant"):
            report.warnings.append(f"column '{col.name}': {col.warnings[0]}")


# -- writing into blase.yaml ----------------------------------------------------------------


def write_suggestions(config_path: str | os.PathLike[str], report: SchemaReport) -> Path:
    """Put the suggested ``transform:`` (and ``data.label``, when the report has one) into
    ``blase.yaml``, keeping the rest of the file as it is.

    The top-level ``transform:`` block is replaced textually (or appended when there is none),
    so comments and layout elsewhere survive; comments inside the old ``transform:`` block are
    lost. ``data.label`` is set in place in a block-style ``data:`` mapping. When the file
    uses a layout this cannot edit safely (e.g. a flow-style ``data: {...}``), the file is
    loaded and dumped again instead, which drops its comments. The result is validated before
    it replaces the file, and the write is atomic.

    Raises
    ------
    blase.errors.ConfigError
        When the edited file would not be a valid configuration.
    """
    import yaml

    from blase.config import config_from_text

    path = Path(config_path)
    text = path.read_text(encoding="utf-8")
    steps = report.to_transform_config()
    block = yaml.safe_dump({"transform": steps}, sort_keys=False, default_flow_style=False)
    try:
        new = _replace_top_block(text, "transform", block)
        if report.label is not None:
            new = _set_data_label(new, report.label)
        config_from_text(new, file=path.name)
    except (ValueError, yaml.YAMLError):
        data = yaml.safe_load(text) or {}
        data["transform"] = steps
        if report.label is not None:
            data.setdefault("data", {})["label"] = report.label
        new = yaml.safe_dump(data, sort_keys=False)
        logger.warning("rewrote %s as a whole (comments were not kept)", path)
    config_from_text(new, file=path.name)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, path)
    return path


_TOP_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:")


def _top_blocks(lines: list[str]) -> list[tuple[str, int, int]]:
    """(key, first line, end line exclusive) of each top-level key; trailing comments and blank
    lines before the next key stay with the next key."""
    starts = [(m.group(1), i) for i, line in enumerate(lines) if (m := _TOP_KEY.match(line))]
    blocks = []
    for j, (key, i) in enumerate(starts):
        end = starts[j + 1][1] if j + 1 < len(starts) else len(lines)
        while end > i + 1 and (
            not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")
        ):
            end -= 1
        blocks.append((key, i, end))
    return blocks


def _replace_top_block(text: str, key: str, block: str) -> str:
    lines = text.splitlines(keepends=True)
    for k, start, end in _top_blocks(lines):
        if k == key:
            return "".join(lines[:start]) + block + "".join(lines[end:])
    sep = "" if not text or text.endswith("\n") else "\n"
    return text + sep + block


def _set_data_label(text: str, label: str) -> str:
    import yaml

    value = yaml.safe_dump(label, default_style=None).splitlines()[0]
    if value.endswith("..."):
        value = value[:-3].strip()
    lines = text.splitlines(keepends=True)
    for k, start, end in _top_blocks(lines):
        if k != "data":
            continue
        head = lines[start].split(":", 1)[1].split("#", 1)[0].strip()
        if head:  # flow style or a scalar: not editable line by line
            raise ValueError("data: is not a block mapping")
        indent = None
        for i in range(start + 1, end):
            line = lines[i]
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cur = len(line) - len(line.lstrip(" "))
            indent = cur if indent is None else indent
            if cur == indent and re.match(r"label\s*:", line.strip()):
                lines[i] = " " * cur + f"label: {value}\n"
                return "".join(lines)
        pad = " " * (indent or 2)
        lines.insert(start + 1, f"{pad}label: {value}\n")
        return "".join(lines)
    sep = "" if not text or text.endswith("\n") else "\n"
    return text + sep + f"data:\n  label: {value}\n"
