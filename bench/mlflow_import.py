"""Time bench/ui.py's import of runs into MLflow's SQLite store against the import of an earlier revision.

Both versions of ``bench/ui.py`` (this tree's and ``git show REV:bench/ui.py``) write the same
generated runs into a fresh store that ``mlflow`` created, one after the other, ``--repeat``
times; prints wall and CPU seconds (CPU time is what a loaded box distorts least). Run from the
repository root::

    python bench/mlflow_import.py --runs 2000 --baseline-rev 4bd8218
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=400)
    ap.add_argument("--baseline-rev", default="4bd8218", help="the revision whose bench/ui.py is the baseline")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="blase-bench-mlflow-import-"))
    try:
        old_src = work / "ui_baseline.py"
        old_src.write_text(subprocess.run(["git", "show", f"{args.baseline_rev}:bench/ui.py"], cwd=REPO, check=True,
                                          capture_output=True, text=True).stdout)
        versions = {f"{args.baseline_rev} (baseline)": load("ui_baseline", old_src),
                    "this tree": load("ui_now", REPO / "bench" / "ui.py")}
        now = versions["this tree"]
        runs = now.make_runs(args.runs, 50, 100, 3)
        rows: dict[str, list[tuple[float, float]]] = {name: [] for name in versions}
        for _ in range(args.repeat):
            for name, module in versions.items():  # alternated: both see the same load
                out = Path(tempfile.mkdtemp(dir=work))
                c0, t = os.times(), time.perf_counter()
                module.write_mlflow(out / "mlflow.db", out / "artifacts", runs, 50, 100, 3)
                wall, c1 = time.perf_counter() - t, os.times()
                rows[name].append((wall, c1.user - c0.user + c1.system - c0.system))
                shutil.rmtree(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_avg = os.getloadavg()[0]
    print(f"\nMLflow import of {args.runs:,} runs x 50 metrics x 100 points ({args.runs * 5000:,} metric rows), "
          f"{os.cpu_count()} cores, load average {load_avg:.1f} at the end, Python {sys.version.split()[0]}\n")
    print("| bench/ui.py | wall s (each run) | CPU s (each run) |")
    print("| --- | ---: | ---: |")
    for name, times in rows.items():
        print(f"| {name} | {' / '.join(f'{w:.1f}' for w, _ in times)} | {' / '.join(f'{c:.1f}' for _, c in times)} |")


if __name__ == "__main__":
    main()
