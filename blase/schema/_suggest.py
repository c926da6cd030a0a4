"""Kinds, suggestions, leakage checks and label candidates from a profiled source."""

from __future__ import annotations

import math
from typing import Any

from blase._duck import sql_ident
from blase._labels import label_variants, variants_message
from blase.schema._report import (
    ID_NAMES,
    IMBALANCE_SHARE,
    LABEL_NAMES,
    LOW_CARDINALITY,
    MANY_CATEGORIES,
    OUTLIER_SHARE,
    TEXT_ID_SHARE,
    TEXT_MEAN_LENGTH,
    TIME_NAMES,
    ColumnReport,
    SchemaReport,
    Suggestion,
    is_int,
    is_num,
    is_text,
    is_time,
)


def kind_of(col: ColumnReport, parses_as_time: bool) -> str:
    t, card, nonnull = col.dtype, col.cardinality, col.stats["count"]
    if card <= 1:
        return "constant"
    if t == "BOOLEAN":
        return "boolean"
    if is_time(t):
        return "datetime"
    long_text = is_text(t) and (col.stats.get("mean_length") or 0) > TEXT_MEAN_LENGTH
    if long_text and card > LOW_CARDINALITY:
        return "text"  # before identifiers: free text is unique per row too
    unique = nonnull > 50 and card >= 0.95 * nonnull
    # a text column that is nearly unique per row (car models, ticket numbers) names rows: its
    # 20 most frequent values, one-hot, would cover a sliver of them
    nearly_unique = (
        is_text(t) and nonnull > 50 and card > LOW_CARDINALITY and card >= TEXT_ID_SHARE * nonnull
    )
    id_name = bool(ID_NAMES.search(col.name))
    if unique and is_int(t) and not id_name and not _row_counter(col):
        unique = False  # a quantity with a value per row (an income, a year per row): a feature
    if (is_int(t) or is_text(t)) and (
        unique or nearly_unique or (id_name and nonnull > 0 and card >= 0.5 * nonnull)
    ):
        return "identifier"
    if is_num(t):
        if card == 2 and col.stats.get("min") == 0 and col.stats.get("max") == 1:
            return "boolean"
        return "discrete" if is_int(t) else "continuous"
    if is_text(t):
        if card > LOW_CARDINALITY and parses_as_time:
            return "datetime"
        return "categorical_low" if card <= LOW_CARDINALITY else "categorical_high"
    return "categorical_high" if card > LOW_CARDINALITY else "categorical_low"


def _row_counter(col: ColumnReport) -> bool:
    """Whether an integer column unique per row numbers the rows: its values fill a run of
    consecutive integers (0..n-1, 1001..1400) and its name is not a time's (a run of years is
    an annual series, whose year is the trend)."""
    low, high = col.stats.get("min"), col.stats.get("max")
    if low is None or high is None or TIME_NAMES.search(col.name):
        return False
    return float(high) - float(low) + 1 <= 1.05 * col.cardinality


#: Kinds whose columns are dropped: ``{kind: (warning, reason)}``.
_DROPPED = {
    "identifier": (
        "identifier: (almost) unique per row, no use as a feature",
        "an identifier carries no signal that generalises; use it as data.key for splitting instead",
    ),
    "constant": (
        "constant: a single value in every row",
        "a constant column carries no information",
    ),
    "text": (
        "free text: too many distinct long values to encode as categories",
        "free text needs a text model; drop it or derive features with a user transform",
    ),
}


#: A "constant" column with no value at all (every row null, or a header-only column).
_EMPTY = ("empty: no value in any row (every row is null)", "an empty column carries no information")


def suggest(report: SchemaReport) -> None:
    for col in report.columns:
        s = col.stats
        if col.name == report.label:
            continue
        kind = col.kind
        if kind in _DROPPED:
            warning, reason = _DROPPED[kind] if col.cardinality or kind != "constant" else _EMPTY
            col.warnings.append(warning)
            col.suggestions.append(Suggestion("drop", "drop", reason))
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
                why = (f"{col.cardinality} categories: one column each" if col.cardinality <= MANY_CATEGORIES
                       else f"{col.cardinality} categories: keep the {MANY_CATEGORIES - 1} most frequent, "
                       "the rest as 'other'")
                col.suggestions.append(
                    Suggestion("encode", "onehot", why, {"max_categories": MANY_CATEGORIES})
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
            parts = s.get("varying_parts")
            if parts is None:
                why = "dates become numeric parts (year, month, day, day of week)"
                params: dict[str, Any] = {}
            else:
                why = (f"dates become the parts that vary ({', '.join(parts) or 'none'}), "
                       "scaled with the numeric columns")
                params = {"parts": list(parts)}
            if parts == []:
                col.suggestions.append(Suggestion("drop", "drop", "no date part varies in the data"))
                continue
            col.suggestions.append(Suggestion("datetime", "datetime", why, params))


def label_checks(con: Any, report: SchemaReport) -> None:
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
                    "`--write` sets prepare.stratify: true (every split gets its share of each "
                    "class); train.class_weights: balanced would raise the rare classes' recall "
                    "at some cost in accuracy"
                )
                report.settings["prepare.stratify"] = True
            base = counts[-1][0] / total
        else:
            base = 1.0
        if is_text(label.dtype):
            values = [r[0] for r in con.execute(
                f"SELECT DISTINCT {y} FROM __sample WHERE {y} IS NOT NULL LIMIT 10000").fetchall()]
            variants = label_variants(values)
            if variants:
                report.warnings.append(variants_message(label.name, variants, report.source))
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
        elif not classification and is_num(label.dtype) and is_num(col.dtype):
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


def label_candidates(report: SchemaReport) -> None:
    out = []
    for col in report.columns:
        if col.kind in ("identifier", "constant", "text") or any(
            "leakage" in w for w in col.warnings
        ):
            continue
        named = bool(LABEL_NAMES.search(col.name))
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
