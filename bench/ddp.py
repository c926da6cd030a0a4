"""Benchmark distributed training (DDP through torchrun, and Ray Train) against the local path, on CPU.

Run from the repository root::

    python bench/ddp.py                 # 400k x 32 float32 rows, 3 epochs
    python bench/ddp.py --rows 100000   # quicker
    python bench/ddp.py --device cuda   # on a GPU machine: local vs nccl, one process per GPU

The same binary shards and the same built-in MLP are trained by ``Train.fit`` four ways, side by
side in one run: in this process with 1 and with 2 torch threads (the local path), through
``train.distributed`` with 1 and 2 gloo processes of 1 thread each, and (with the ray extra)
through ``launcher: ray``, Ray Train's TorchTrainer of 1 and 2 workers on a local Ray started
first (``ray.init`` is not in the wall times). Columns: training samples/s
(the median epoch, all processes' rows; from ``history.json``), the wall time of ``fit``
(including torchrun's start and the workers' imports), the final val accuracy, and the
samples/s ratio against the faster local run. ``batch_size`` is per
process, so 2 processes step on twice the rows.

Prints a table; nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.train import write_shards  # noqa: E402
from blase.train import Train  # noqa: E402


def fit(shards: Path, out: Path, *, threads: int, nproc: int | None, epochs: int,
        batch: int, device: str, launcher: str = "torchrun") -> dict[str, float]:
    cfg: dict[str, object] = {"model": "mlp", "hidden": [64, 32], "epochs": epochs, "lr": 1e-3,
                              "batch_size": batch, "device": device, "threads": threads,
                              "refit": False}
    if nproc is not None:
        backend = "nccl" if device == "cuda" else "gloo"
        cfg["distributed"] = {"nproc_per_node": nproc, "backend": backend, "launcher": launcher}
    start = time.perf_counter()
    Train(cfg, seed=0).fit(shards, out)
    wall = time.perf_counter() - start
    history = json.loads((out / "history.json").read_text())
    return {
        "samples_per_s": statistics.median(e["samples_per_s"] for e in history),
        "wall_s": wall,
        "val_accuracy": history[-1]["val_accuracy"],
    }


def _start_ray(device: str) -> bool:
    """A local Ray for the Ray Train rows (False without the ray extra)."""
    try:
        import ray
        import ray.train.torch
    except ImportError:
        print("  (no Ray Train: the ray extra is not installed; its rows are left out)", file=sys.stderr)
        return False
    start = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), num_gpus=None if device == "cuda" else 0,
             include_dashboard=False, log_to_driver=False)
    print(f"  ray.init: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=400_000)
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--no-ray", action="store_true", help="leave out the Ray Train rows")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("BLASE_PROGRESS", "0")
    with tempfile.TemporaryDirectory(prefix="blase-ddp-bench-") as tmp:
        root = Path(tmp)
        write_shards(root / "shards", args.rows, args.features, args.rows // 10)
        ways = [("local, 1 thread", 1, None), ("local, 2 threads", 2, None),
                ("DDP gloo, 1 process x 1 thread", 1, 1), ("DDP gloo, 2 processes x 1 thread", 1, 2)]
        if args.device == "cuda":
            import torch

            gpus = torch.cuda.device_count()
            ways = [("local, 1 GPU", 1, None), (f"DDP nccl, {gpus} process(es), 1 GPU each", 1, gpus)]
        if not args.no_ray and _start_ray(args.device):
            n = 1 if args.device == "cuda" else 2
            ways += [(f"Ray Train {'nccl' if n == 1 else 'gloo'}, 1 worker x 1 thread", 1, 1),
                     *([("Ray Train gloo, 2 workers x 1 thread", 1, 2)] if n == 2 else [])]
        results = {}
        for name, threads, nproc in ways:
            results[name] = fit(root / "shards", root / name.replace(" ", "_"), threads=threads,
                                nproc=nproc, epochs=args.epochs, batch=args.batch,
                                device=args.device, launcher="ray" if name.startswith("Ray") else "torchrun")
            print(f"  {name}: {results[name]}", file=sys.stderr)
    local = max(r["samples_per_s"] for (name, _, nproc), r in zip(ways, results.values(), strict=True)
                if nproc is None)
    print(f"\n{args.rows:,} x {args.features} rows, MLP [64, 32], batch {args.batch:,} per "
          f"process, {args.epochs} epochs, {os.cpu_count()} CPU cores\n")
    print("| how | processes x threads | samples/s | vs the best local | wall s (with start) | val accuracy |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, threads, nproc in ways:
        r = results[name]
        print(f"| {name} | {nproc or 1} x {threads} | {r['samples_per_s']:,.0f} | "
              f"{r['samples_per_s'] / local:.2f} | {r['wall_s']:.1f} | "
              f"{r['val_accuracy']:.4f} |")


if __name__ == "__main__":
    main()
