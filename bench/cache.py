"""The step cache on flights-like CSVs: a cache-hit re-run against the first run.

Usage::

    python bench/cache.py --sizes 1 4          # writes .bench/flights_<N>gb.csv once

For each size it makes a project under ``.bench/cache_<N>gb/`` whose ``data/flights.csv``
links to the CSV (label ``delayed``; transform: drop tail_number, datetime parts, impute
mean, scale standard, onehot max_categories 50; train 1 epoch), then times
``Pipeline.run()`` twice in one process: the first run computes every step, the second finds
every step but ``deploy`` (never cached: each deploy is a new version) in the store. It also
times what the cache adds to a first run: computing the keys (the raw file hashed once through
the stat cache), hashing and publishing the outputs, and looking entries up.

Prints one table; the targets of issue [4/7] are a re-run under 5% of the first run, and a
small hashing overhead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

CONFIG = """project: cachebench
seed: 0
memory: 2GB
data:
  source: data/flights.csv
  label: delayed
  bad_rows: skip
transform:
  - op: drop
    columns: [tail_number]
  - op: datetime
    columns: [flight_date]
    parts: [month, dayofweek, hour]
  - op: impute
    strategy: mean
  - op: scale
    method: standard
  - op: onehot
    max_categories: 50
prepare:
  split: {train: 0.8, val: 0.1, test: 0.1}
train:
  model: mlp
  hidden: [32]
  epochs: 1
  batch_size: 4096
  device: cpu
evaluate:
  plots: false
deploy:
  onnx: false
track:
  sample_resources: false
"""


class Timer:
    """Wraps callables and adds up the seconds spent in them."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        return timed


def csv_for(size_gb: int) -> Path:
    from etl_data import write_flights_csv

    path = ROOT / ".bench" / f"flights_{size_gb}gb.csv"
    if not path.exists() or path.stat().st_size < size_gb * 10**9:
        print(f"writing {path} ...", flush=True)
        write_flights_csv(path, size_gb * 10**9)
    return path


def make_project(size_gb: int, csv: Path) -> Path:
    root = ROOT / ".bench" / f"cache_{size_gb}gb"
    shutil.rmtree(root, ignore_errors=True)
    (root / "data").mkdir(parents=True)
    (root / "scripts").mkdir()
    (root / "blase.yaml").write_text(CONFIG)
    os.symlink(csv, root / "data" / "flights.csv")
    return root


def bench(size_gb: int) -> dict[str, float]:
    import blase.cache
    from blase.cache import StepStore
    from blase.pipeline import Pipeline
    from blase.project import Project

    csv = csv_for(size_gb)
    root = make_project(size_gb, csv)
    project = Project(root)
    overhead = Timer()
    blase.cache.step_key = overhead.wrap(blase.cache.step_key)
    StepStore.publish = overhead.wrap(StepStore.publish)
    StepStore.lookup = overhead.wrap(StepStore.lookup)

    started = time.perf_counter()
    first = Pipeline(project).run()
    first_s = time.perf_counter() - started
    first_overhead = overhead.seconds
    assert not first.cached, first.cached

    overhead.seconds = 0.0
    started = time.perf_counter()
    second = Pipeline(project).run()
    second_s = time.perf_counter() - started
    assert set(second.cached) == {"extract", "transform", "prepare", "train", "evaluate"}, second.reasons
    return {
        "size_gb": csv.stat().st_size / 1e9,
        "rows": first.steps["extract"].rows_out,
        "first_s": first_s,
        "rerun_s": second_s,
        "deploy_s": second.steps["deploy"].seconds,
        "ratio": second_s / first_s,
        "overhead_s": first_overhead,
        "overhead_share": first_overhead / first_s,
        "rerun_lookup_s": overhead.seconds,
        "store_gb": sum(e.size for e in StepStore(project).entries()) / 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1], help="CSV sizes in GB")
    args = parser.parse_args()
    rows = []
    for size in args.sizes:
        print(f"{size} GB ...", flush=True)
        rows.append(bench(size))
    head = ("CSV", "rows", "first run", "cached re-run", "re-run / first", "cache overhead in first run",
            "key+verify in re-run", "store")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print(
            f"| {r['size_gb']:.2f} GB | {r['rows']:,} | {r['first_s']:.1f} s | {r['rerun_s']:.2f} s "
            f"(deploy {r['deploy_s']:.2f} s) | {r['ratio']:.2%} | {r['overhead_s']:.1f} s "
            f"({r['overhead_share']:.1%}) | {r['rerun_lookup_s']:.2f} s | {r['store_gb']:.2f} GB |"
        )


if __name__ == "__main__":
    main()
