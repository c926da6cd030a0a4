"""Where XGBoost's memory goes when Blase trains it out of core: resident memory by phase.

Runs the ``xgboost`` model plugin's own steps (its DataIter over the shards, its matrices, its
parameters) on a prepared shards folder, one phase at a time, while a thread samples the
process's ``/proc/self/status`` every 50 ms: ``RssAnon`` (heap: what the process itself holds)
and ``RssFile`` (file pages mapped in: XGBoost's memory-mapped cache pages, and the shards'
``.npy`` files while they are read; the kernel can drop these under pressure, but they count in
RSS). Printed: a table of the peak of each by phase, beside the per-row state XGBoost keeps
whatever the matrix mode (its external memory pages only hold ``X``; labels, gradients, the
prediction cache and the row partition stay in memory for every training row).

    python bench/xgb_memory.py SHARDS --memory 1GB --rounds 3
    python bench/xgb_memory.py SHARDS --memory 1GB --rounds 3 --batch-mb 32 --nthread 1

SHARDS is a prepare step's output folder (``manifest.json`` and ``train/``), e.g. the one
``python bench/gbdt.py --rss-check`` makes.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import threading
import time
from pathlib import Path

PAGE_FIELDS = ("VmRSS", "RssAnon", "RssFile", "VmHWM")


def status() -> dict[str, int]:
    """The process's memory fields (bytes) from /proc/self/status."""
    out: dict[str, int] = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in PAGE_FIELDS:
                out[key] = int(value.split()[0]) * 1024
    return out


class Sampler:
    """Peaks of RssAnon, RssFile and VmRSS per named phase, sampled by a thread."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval, self.phase = interval, "start"
        self.peaks: dict[str, dict[str, int]] = {}
        self.seconds: dict[str, float] = {}
        self._stop = threading.Event()
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval)

    def sample(self) -> None:
        now = status()
        peak = self.peaks.setdefault(self.phase, {k: 0 for k in ("VmRSS", "RssAnon", "RssFile")})
        for key in peak:
            peak[key] = max(peak[key], now.get(key, 0))

    def enter(self, phase: str) -> None:
        self.sample()
        now = time.perf_counter()
        self.seconds[self.phase] = self.seconds.get(self.phase, 0.0) + now - self._started
        self._started, self.phase = now, phase
        self.sample()

    def stop(self) -> None:
        self.enter("end")
        self._stop.set()
        self._thread.join()


def trim() -> None:
    import ctypes

    ctypes.CDLL("libc.so.6").malloc_trim(0)


def subset(shards: Path, k: int) -> Path:
    """A shards folder (in a temporary folder) whose train split is the first ``k`` train
    shards of ``shards`` (links to the same files; val and test as they are)."""
    import json

    manifest = json.loads((shards / "manifest.json").read_text())
    manifest["shards"]["train"] = manifest["shards"]["train"][:k]
    manifest["counts"]["train"] = sum(s["rows"] for s in manifest["shards"]["train"])
    out = Path(tempfile.mkdtemp(prefix="xgb-memory-shards-"))
    for split in ("train", "val", "test"):
        (out / split).symlink_to(shards / split)
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shards", type=Path)
    parser.add_argument("--memory", default="1GB", help="Blase's memory budget")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--external", choices=("auto", "true", "false"), default="true")
    parser.add_argument("--batch-mb", type=int, default=None,
                        help="DataIter batch size in MB of float32 (default: the plugin's, budget / 8)")
    parser.add_argument("--nthread", type=int, default=None)
    parser.add_argument("--max-bin", type=int, default=256)
    parser.add_argument("--no-val", action="store_true", help="no val matrix (no early stopping)")
    parser.add_argument("--train-shards", type=int, default=None,
                        help="only the first K train shards (a smaller training set from the same shards)")
    parser.add_argument("--trim", action="store_true",
                        help="glibc malloc_trim after each matrix (is the heap held, or only not given back?)")
    args = parser.parse_args(argv)

    sampler = Sampler()
    import numpy as np
    import xgboost as xgb

    import blase.contrib.xgboost as plugin
    from blase.model import FitContext, TrainingData, model_kind
    from blase.resources import memory_budget

    budget = memory_budget(args.memory)
    shards = subset(args.shards, args.train_shards) if args.train_shards else args.shards
    data = TrainingData(shards)
    rows, n_features = data.rows("train"), data.n_features
    options = {"n_estimators": args.rounds, "early_stopping_rounds": None, "max_bin": args.max_bin,
               "external_memory": {"auto": "auto", "true": True, "false": False}[args.external]}
    if args.nthread:
        options["n_jobs"] = args.nthread
    kind = model_kind("xgboost", options)
    if args.batch_mb:  # the plugin sizes batches from the budget; this overrides it for the table
        original = plugin.ShardIter.__init__

        def sized(self, data, split, cache_prefix, *, batch_bytes):
            original(self, data, split, cache_prefix, batch_bytes=args.batch_mb << 20)

        plugin.ShardIter.__init__ = sized  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="xgb-memory-") as tmp:
        ctx = FitContext(out_dir=Path(tmp) / "m", seed=42, memory=budget, tmp_dir=Path(tmp))
        pages = Path(tmp) if kind._external(data, budget) else None  # the cache goes to tmp
        sampler.enter("imports (numpy, xgboost, blase)")
        sampler.enter("train matrix (sketch + quantised pages)")
        train = kind._matrix(data, "train", ctx, cache=pages)
        gc.collect()
        if args.trim:
            trim()
        evals = []
        if not args.no_val and data.rows("val"):
            sampler.enter("val matrix (train's cuts)")
            evals = [(kind._matrix(data, "val", ctx, cache=pages, ref=train), "val")]
            gc.collect()
            if args.trim:
                trim()
        sampler.enter(f"boosting ({args.rounds} rounds)")
        booster = xgb.train(kind._params(data, 42), train, num_boost_round=args.rounds, evals=evals,
                            verbose_eval=False)
        sampler.enter("save")
        booster.save_model(str(Path(tmp) / "model.ubj"))
        cache = sum(f.stat().st_size for f in Path(tmp).glob("xgb-*"))
        sampler.stop()
    hwm = status()["VmHWM"]
    state = sampler.peaks.get(f"boosting ({args.rounds} rounds)", {}).get("RssAnon", 0) - \
        max(p["RssAnon"] for k, p in sampler.peaks.items() if "matrix" in k)
    print(f"train rows {rows:,} x {n_features} features: float32 matrix {rows * n_features * 4 / 1e9:.2f} GB; "
          f"budget {args.memory}; matrix: {'external memory' if pages is not None else 'quantised in memory'}; "
          f"batches {args.batch_mb or kind._batch_bytes(data, budget) >> 20} MB; nthread {args.nthread or 'all'}; "
          f"XGBoost's disk cache {cache / 1e9:.2f} GB")
    print(f"heap added by boosting over the matrices' peak: {state / 1e9:.2f} GB = {state / rows:.0f} B per train row "
          f"(labels and matrices already held; the plugin counts {plugin.ROW_STATE_BYTES} B a row)")
    print()
    print("| phase | seconds | peak RSS | peak RssAnon (heap) | peak RssFile (mapped files) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for phase, peak in sampler.peaks.items():
        if phase in ("start", "end"):
            continue
        print(f"| {phase} | {sampler.seconds.get(phase, 0):.1f} | {peak['VmRSS'] / 1e9:.2f} GB | "
              f"{peak['RssAnon'] / 1e9:.2f} GB | {peak['RssFile'] / 1e9:.2f} GB |")
    print(f"| whole process (VmHWM) | | {hwm / 1e9:.2f} GB | | |")
    del np
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
