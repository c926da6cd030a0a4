"""Benchmark the Ray executor of the data steps against the local executor (wall time), on CPU.

Run from the repository root::

    python bench/ray_executor.py                  # 8 CSV files + one Parquet file, 1.6M rows each
    python bench/ray_executor.py --rows 400000    # quicker

One project, two sources of the same rows: a folder of 8 CSV files (extract splits it by file)
and one Parquet file of 16 row groups (split by runs of row groups). For each source the
pipeline runs extract, transform (impute, scale, one-hot) and prepare (stratified) with
``executor: local`` and then ``executor: ray`` on a local Ray of all cores started first
(``ray.init`` is timed on its own, not in the steps), ``--no-cache`` both times. The table gives
each step's wall time, the ratio ray/local, and whether the extract parts and the shards are the
same bytes (they must be).

Prints a table; nothing here is a test.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.cloud import _table  # noqa: E402
from blase.pipeline import Pipeline, step_records  # noqa: E402
from blase.project import Project  # noqa: E402

STEPS = ("extract", "transform", "prepare")
TRANSFORM = ("transform=[{op: impute, strategy: median}, {op: scale, method: standard}, "
             "{op: onehot, columns: [c1, c2]}]")


def write_data(root: Path, rows: int) -> None:
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


def run(root: Path, source: str, executor: str) -> tuple[dict[str, float], dict[str, dict[str, str]]]:
    overrides = [f"data.source={source}", "data.label=y", TRANSFORM, "prepare.stratify=true",
                 f"executor={executor}"]
    result = Pipeline(root, overrides=overrides).run(to_step="prepare", cache=False)
    assert result.status == "finished", result.status
    records = step_records(Project(root), result.run_id)
    files = {s: {f: h for f, h in records[s]["files"].items() if f != "manifest.json"} for s in STEPS}
    return {s: result.steps[s].seconds for s in STEPS}, files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_600_000)
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

if __name__ == "__main__":
    main()
