"""The ETL benchmark's Polars pipeline, as a Polars user would write it today.

    python bench/etl_polars.py FLIGHTS.csv WORK_DIR     # prints one JSON line

The same operations as the Blase pipeline of bench/etl.py: drop ``tail_number``, datetime
parts (month, day of week, hour), impute the numeric columns with their mean, standard-scale
them, one-hot ``carrier``, ``origin`` and ``dest`` (the 50 most frequent values each, the rest
in one ``__other__`` column), then a hashed 80/10/10 split on ``with_row_index``, written as
float32 features plus the label by ``sink_parquet`` on the streaming engine, one folder per
split (``PartitionBy`` on the split column). A lazy ``scan_csv`` throughout; the statistics
(means, standard deviations, category counts) come from a first streaming pass, as they must
before the one-hot columns can be named. Run by bench/etl.py in a child process of its own,
so the peak RSS (VmHWM) it reports is the pipeline's.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import polars as pl

NUMERIC = ["distance", "dep_delay", "arr_delay", "taxi_out", "air_time"]
CATEGORICAL = ["carrier", "origin", "dest"]
DATETIME = "flight_date"
LABEL = "delayed"
TOP = 50


def scan(csv: str) -> pl.LazyFrame:
    """The CSV, lazily: ``NA`` is null, ragged lines are cut or padded, unparsable values null."""
    return pl.scan_csv(csv, null_values="NA", try_parse_dates=True, ignore_errors=True,
                       truncate_ragged_lines=True)


def statistics(lf: pl.LazyFrame) -> tuple[dict[str, float], dict[str, float], dict[str, list[str]]]:
    """Pass 1: mean and standard deviation of each numeric column, the top categories."""
    moments = lf.select(
        [pl.col(c).cast(pl.Float64).mean().alias(f"{c}.mean") for c in NUMERIC]
        + [pl.col(c).cast(pl.Float64).std(ddof=0).alias(f"{c}.std") for c in NUMERIC]
    )
    counts = [lf.group_by(c).len().filter(pl.col(c).is_not_null()) for c in CATEGORICAL]
    frames = pl.collect_all([moments, *counts], engine="streaming")
    row = frames[0].row(0, named=True)
    mean = {c: float(row[f"{c}.mean"]) for c in NUMERIC}
    std = {c: max(float(row[f"{c}.std"] or 0.0), 1e-12) for c in NUMERIC}
    top = {c: f.sort(["len", c], descending=[True, False]).head(TOP)[c].cast(pl.String).to_list()
           for c, f in zip(CATEGORICAL, frames[1:], strict=True)}
    return mean, std, top


def features(lf: pl.LazyFrame, mean: dict[str, float], std: dict[str, float],
             top: dict[str, list[str]]) -> pl.LazyFrame:
    """Pass 2's transform: every feature float32, the label, and the split of each row."""
    date = pl.col(DATETIME).cast(pl.Datetime)
    exprs = [date.dt.month().alias("month"), (date.dt.weekday() - 1).alias("dayofweek"),
             date.dt.hour().alias("hour")]
    exprs += [((pl.col(c).cast(pl.Float64).fill_null(mean[c]) - mean[c]) / std[c]).alias(c) for c in NUMERIC]
    for c in CATEGORICAL:
        exprs += [(pl.col(c) == v).fill_null(False).alias(f"{c}_{v}") for v in top[c]]
        exprs.append((~pl.col(c).is_in(top[c])).fill_null(True).alias(f"{c}___other__"))
    bucket = pl.col("index").hash(seed=0) % 10
    split = pl.when(bucket < 8).then(pl.lit("train")).when(bucket < 9).then(pl.lit("val")).otherwise(pl.lit("test"))
    return (
        lf.drop("tail_number")
        .with_row_index("index")
        .select([e.cast(pl.Float32) for e in exprs] + [pl.col(LABEL).cast(pl.Int64), split.alias("split")])
    )


def peak_rss() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))


def main(csv: str, work: Path) -> dict:
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    lf = scan(csv)
    mean, std, top = statistics(lf)
    times["stats"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    out = work / "polars"
    features(lf, mean, std, top).sink_parquet(pl.PartitionBy(out, key="split", include_key=False),
                                              engine="streaming", mkdir=True)
    times["write"] = time.perf_counter() - t1
    times["total"] = time.perf_counter() - t0
    peak = peak_rss()
    rows = pl.scan_parquet(out / "**" / "*.parquet").select(pl.len()).collect().item()
    return {"times": times, "peak_rss": peak, "rows": rows, "polars": pl.__version__,
            "splits": sorted(p.name for p in out.iterdir())}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], Path(sys.argv[2]))))
