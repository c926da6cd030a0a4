"""Benchmark the Ray executor of the data steps against the local executor (wall time), on CPU.

Run from the repository root::

    python bench/ray_executor.py                  # 8 CSV files + one Parquet file, 1.6M rows each
    python bench/ray_executor.py --rows 400000    # quicker
    python bench/ray_executor.py --only big-csv   # one CSV file over half of ray.task_memory

One project, two sources of the same rows: a folder of 8 CSV files (extract splits it by file)
and one Parquet file of 16 row groups (split by runs of row groups). For each source the
pipeline runs extract, transform (impute, scale, one-hot) and prepare (stratified) with
``executor: local`` and then ``executor: ray`` on a local Ray of all cores started first
(``ray.init`` is timed on its own, not in the steps), ``--no-cache`` both times. The table gives
each step's wall time, the ratio ray/local, and whether the extract parts and the shards are the
same bytes (they must be).

``--only big-csv`` (also run by default, after the first table): one CSV file of
``--big-rows`` rows, over half of ``ray.task_memory: 64MB``, extracted three ways in one run:
``executor: local``; ``executor: ray`` as before this file could be cut ("fallback": a task
holds a whole file, so it was read in the driver process; reproduced here by refusing every
cut, the code path a CSV with quoted line breaks still takes); and ``executor: ray`` cutting
it at line starts into ranges of 16 MB (a quarter of a task's memory), one task each.

Prints tables; nothing here is a test.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.cloud import _table  # noqa: E402
from blase.pipeline import Pipeline, step_records  # noqa: E402
from blase.project import Project  # noqa: E402

STEPS = ("extract", "transform", "prepare")
TRANSFORM = ("transform=[{op: impute, strategy: median}, {op: scale, method: standard}, "
             "{op: onehot, columns: [c1, c2]}]")


def write_data(root: Path, rows: int) -> Any:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    cols = {f"x{i}": rng.normal(size=rows) for i in range(8)}
    cols["x0"][rng.random(rows) < 0.05] = np.nan
    cols["c1"] = rng.choice(["a", "b", "c", "d"], rows)
    cols["c2"] = rng.choice([f"k{i}" for i in range(12)], rows)
    cols["y"] = (cols["x1"] + rng.normal(size=rows) > 0).astype(np.int64)
    table = pa.table(cols)
    (root / "data" / "csv").mkdir(parents=True)
    step = -(-rows // 8)
    for i in range(8):
        pcsv.write_csv(table.slice(i * step, step), root / "data" / "csv" / f"part-{i}.csv")
    pq.write_table(table, root / "data" / "all.parquet", row_group_size=-(-rows // 16))
    return table


def run(root: Path, source: str, executor: str) -> tuple[dict[str, float], dict[str, dict[str, str]]]:
    overrides = [f"data.source={source}", "data.label=y", TRANSFORM, "prepare.stratify=true",
                 f"executor={executor}"]
    result = Pipeline(root, overrides=overrides).run(to_step="prepare", cache=False)
    assert result.status == "finished", result.status
    records = step_records(Project(root), result.run_id)
    files = {s: {f: h for f, h in records[s]["files"].items() if f != "manifest.json"} for s in STEPS}
    return {s: result.steps[s].seconds for s in STEPS}, files


def big_csv(root: Path, rows: int, repeat: int = 2) -> None:
    """Extract one CSV file over half of a task's memory: local, Ray before (read in the driver)
    and Ray now (cut at line starts), side by side."""
    from unittest import mock

    import pyarrow.csv as pcsv

    from blase.extract import Extract
    from blase.extract._csv_split import CutRefused, line_spans

    csv = root / "data" / "big.csv"
    pcsv.write_csv(write_data(root / "big", rows), csv)
    sets = ["data.source=data/big.csv", "data.label=y", "ray.task_memory=64MB"]

    def extract(executor: str) -> tuple[float, dict[str, str], dict, int]:
        result = Pipeline(root, overrides=[*sets, f"executor={executor}"]).run(to_step="extract", cache=False)
        assert result.status == "finished", result.status
        files = step_records(Project(root), result.run_id)["extract"]["files"]
        step = result.steps["extract"]
        return step.seconds, files, step.details, step.peak_rss_bytes or 0

    def refuse(*_: object, **__: object) -> None:
        raise CutRefused("refused for the benchmark")

    def before() -> tuple[float, dict[str, str], dict, int]:
        with mock.patch("blase.extract._parts.line_spans", refuse):
            return extract("ray")

    runs: dict[str, list] = {"local": [], "before": [], "now": []}
    for _ in range(repeat):  # alternated, so the box's load falls on each alike
        runs["local"].append(extract("local"))
        runs["before"].append(before())
        runs["now"].append(extract("ray"))
    pinned = Extract(csv)
    pinned.schema()  # pins the dialect the step reads with
    start = time.perf_counter()
    spans = line_spans(csv, pinned._csv_plan, 16 << 20)
    check = time.perf_counter() - start
    size = csv.stat().st_size / 1e6
    local_files = runs["local"][0][1]
    names = {"local": "local executor", "before": "ray, before: read in the driver", "now": "ray, now: cut at line starts"}
    table = []
    for key, results in runs.items():
        best = min(r[0] for r in results)
        tasks = results[0][2].get("tasks", "-")
        same = all(r[1] == local_files for r in results)
        table.append([names[key], tasks, " / ".join(f"{r[0]:.2f}" for r in results), f"{size / best:.1f}",
                      f"{best / min(r[0] for r in runs['local']):.2f}", f"{max(r[3] for r in results) / 1e6:.0f}",
                      "yes" if same else "NO"])
    _table(f"extract of one {size:.0f} MB CSV file ({rows:,} rows x 11 columns), ray.task_memory 64MB "
           f"(ranges of 16 MB), {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at the end; "
           f"the cut check alone: {check:.2f} s for {len(spans)} ranges",
           ["executor", "tasks", "extract s (each run)", "MB/s (best)", "vs local (best)", "driver peak RSS MB",
            "same bytes as local"], table)

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_600_000)
    ap.add_argument("--big-rows", type=int, default=600_000, help="rows of the one CSV file of --only big-csv")
    ap.add_argument("--only", choices=["files", "big-csv"], default=None, help="run one of the two tables")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("BLASE_PROGRESS", "0")
    import ray

    from blase.scaffold import create_project

    start = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    ray_init = time.perf_counter() - start
    rows = []
    with tempfile.TemporaryDirectory(prefix="blase-ray-bench-") as tmp:
        root = create_project(Path(tmp) / "proj").root
        if args.only == "big-csv":
            print(f"ray.init {ray_init:.1f} s (not in the steps)")
            big_csv(root, args.big_rows)
            return
        write_data(root, args.rows)
        for source, split in (("data/csv/*.csv", "8 files"), ("data/all.parquet", "16 row groups")):
            local, local_files = run(root, source, "local")
            on_ray, ray_files = run(root, source, "ray")
            print(f"  {source}: local {local}, ray {on_ray}", file=sys.stderr)
            for step in STEPS:
                same = "yes" if local_files[step] == ray_files[step] else "NO"
                rows.append((f"{source} ({split})", step, local[step], on_ray[step], same))
    _table(f"{args.rows:,} rows x 11 columns, {os.cpu_count()} CPU cores; ray.init {ray_init:.1f} s (not in the steps)",
           ["source", "step", "local s", "ray s", "ray / local", "same bytes"],
           [[source, step, f"{a:.2f}", f"{b:.2f}", f"{b / a:.2f}", same] for source, step, a, b, same in rows])
    if args.only is None:
        with tempfile.TemporaryDirectory(prefix="blase-ray-bench-") as tmp:
            big_csv(create_project(Path(tmp) / "proj").root, args.big_rows)

if __name__ == "__main__":
    main()
