"""Benchmark Train on a shared CPU: the automatic thread count against torch's default.

Run from the repository root::

    python bench/threads.py            # 60k x 20 rows, 2 epochs of the built-in MLP
    python bench/threads.py --rows 20000

The same small training (binary task, MLP [64, 32], batch 256, CPU) runs four times:
alone and next to one competing busy process (a Python busy loop in a subprocess), each
with ``train.threads`` unset (Blase picks from the cores free, see
:func:`blase.resources.choose_threads`) and with torch's default (one thread per core, the
behaviour before). Each run is a fresh process so nothing carries over; the table shows
the wall time of ``Train.fit`` and the thread count used. Under two minutes on 2 cores.

Prints a table; nothing here is a test.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUSY_LOOP = "import time\nend = time.time() + 600\nwhile time.time() < end:\n    pass\n"

CHILD = r"""
import json, logging, sys, time
sys.path.insert(0, {repo!r})
import torch
from blase.train import Train
threads = {threads!r}
cfg = {{"model": "mlp", "hidden": [64, 32], "epochs": {epochs}, "batch_size": 256,
        "lr": 1e-3, "device": "cpu", "threads": threads}}
t = time.perf_counter()
result = Train(cfg).fit({shards!r}, {out!r})
print(json.dumps({{"seconds": time.perf_counter() - t, "threads": result.details["threads"],
                   "reason": result.details["threads_reason"]}}))
"""


def _write_shards(root: Path, rows: int) -> None:
    spec = importlib.util.spec_from_file_location("bench_train", REPO / "bench" / "train.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.write_shards(root, rows, 20, max(1, rows // 10))


def _one(shards: Path, out: Path, threads: int | None, epochs: int) -> dict:
    code = CHILD.format(repo=str(REPO), threads=threads, epochs=epochs, shards=str(shards), out=str(out))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"training failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=60_000)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    table: list[tuple[str, str, int, float, str]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="blase-bench-threads-") as tmp:
        shards = Path(tmp) / "shards"
        _write_shards(shards, args.rows)
        for neighbour in (False, True):
            busy = subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) if neighbour else None
            try:
                if busy is not None:
                    time.sleep(1.0)  # let the neighbour reach its loop
                for label, threads in (("auto (threads unset)", None), ("torch default", cores)):
                    r = _one(shards, Path(tmp) / f"m-{neighbour}-{threads}", threads, args.epochs)
                    where = "1 busy process" if neighbour else "alone"
                    table.append((where, label, r["threads"], r["seconds"], r["reason"]))
                    print(f"  {where}, {label}: {r['seconds']:.1f}s on {r['threads']} thread(s)",
                          file=sys.stderr)
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{args.rows} rows x 20 features, MLP [64, 32], batch 256, {args.epochs} epochs; "
          f"{cores} cores, {platform.machine()}, torch default {cores} threads; "
          f"load average at the end {load:.2f}; {time.perf_counter() - started:.0f}s in all\n")
    print("| CPU | threads setting | threads used | train time | why |")
    print("| --- | --- | ---: | ---: | --- |")
    for where, label, n, seconds, reason in table:
        print(f"| {where} | {label} | {n} | {seconds:.1f} s | {reason} |")


if __name__ == "__main__":
    main()
