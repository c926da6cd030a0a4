"""How long the xgboost plugin takes to build its external-memory matrices from the shards,
before and after a change, in fresh processes alternated (the box is shared: compare within a try).

Each try runs, in a child process per version of Blase (``--baseline-rev REV`` exported with
``git archive`` as bench/etl.py does, then this checkout), the plugin's own train and val
``ExtMemQuantileDMatrix`` built from SHARDS, then XGBoost's in-memory ``QuantileDMatrix`` pair
from the same rows already loaded as arrays (the anchor of bench/gbdt.py); it prints the
seconds of each and how many times the shards were read (``TrainingData.chunks`` calls).

    python bench/xgb_build.py SHARDS --tries 5 --baseline-rev main

SHARDS is a prepare step's output folder (``manifest.json`` and the shards).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

CHILD = r"""
import inspect, json, sys, tempfile, time
from pathlib import Path
import xgboost as xgb
from blase.model import FitContext, TrainingData, model_kind

shards = sys.argv[1]
reads = []
real = TrainingData.chunks
TrainingData.chunks = lambda self, split, rows=65_536: (reads.append(split), real(self, split, rows))[1]
data = TrainingData(shards)
kind = model_kind("xgboost", {"external_memory": True})
with tempfile.TemporaryDirectory() as tmp:
    ctx = FitContext(out_dir=Path(tmp) / "m", seed=42, tmp_dir=Path(tmp), memory=2 << 30)
    mode = ({"cache": Path(tmp)} if "cache" in inspect.signature(kind._matrix).parameters
            else {"external": True})  # the keyword before and after this branch
    start = time.perf_counter()
    train = kind._matrix(data, "train", ctx, **mode)
    val = kind._matrix(data, "val", ctx, ref=train, **mode)
    ours = time.perf_counter() - start
    del train, val
n_reads = len(reads)
x, y = data.matrix("train")
xv, yv = data.matrix("val")
start = time.perf_counter()
q = xgb.QuantileDMatrix(x, y, max_bin=256)
xgb.QuantileDMatrix(xv, yv, max_bin=256, ref=q)
anchor = time.perf_counter() - start
print(json.dumps({"blase": ours, "in_memory": anchor, "reads": n_reads}))
"""


def build_once(shards: Path, pythonpath: Path | None) -> dict:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), *filter(None, [env.get("PYTHONPATH")])])
    done = subprocess.run([sys.executable, "-c", CHILD, str(shards)], capture_output=True, text=True, env=env,
                          cwd=pythonpath or ROOT, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shards", type=Path)
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--baseline-rev", metavar="REV", help="also Blase as of this git revision, alternated")
    parser.add_argument("--dir", type=Path, default=ROOT / ".bench", help="where the baseline export goes")
    args = parser.parse_args(argv)
    versions: list[tuple[str, Path | None]] = []
    if args.baseline_rev:
        from etl import baseline_checkout

        sha, path = baseline_checkout(args.baseline_rev, args.dir.resolve())
        versions.append((f"before ({sha[:8]})", path))
    versions.append(("this checkout", None))
    got: dict[str, list[dict]] = {label: [] for label, _ in versions}
    for attempt in range(args.tries):
        order = versions if attempt % 2 == 0 else versions[::-1]
        for label, path in order:
            got[label].append(build_once(args.shards.resolve(), path))
            r = got[label][-1]
            print(f"  try {attempt + 1} {label}: Blase {r['blase']:.2f} s, in memory {r['in_memory']:.2f} s, "
                  f"{r['reads']} reads of the shards", flush=True)
    print("\n| Blase | tries | train + val matrices, external memory (median s) | in memory from arrays (median s) "
          "| ratio of medians | per-try ratios (min / median / max) | reads of the shards |")
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: |")
    for label, runs in got.items():
        ours = statistics.median(r["blase"] for r in runs)
        theirs = statistics.median(r["in_memory"] for r in runs)
        each = [r["blase"] / r["in_memory"] for r in runs]
        print(f"| {label} | {len(runs)} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f}x | "
              f"{min(each):.2f}x / {statistics.median(each):.2f}x / {max(each):.2f}x | {runs[0]['reads']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
