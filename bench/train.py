"""Benchmark Train: shard feed efficiency, MLP samples/s, tracking overhead, GPU when present.

Run from the repository root::

    python bench/train.py            # 2M x 32 float32 shards (256 MB)
    python bench/train.py --quick    # 400k rows

Rows of the table:

- feed: batches/s of :class:`~blase.prepare.ShardDataset` over warm (page-cached) shards,
  against the same batches cut from the same arrays held in RAM as torch tensors (shuffled:
  the same per-shard permutation, gathered; in order: slices, copied like the shard reader
  copies). Efficiency is the ratio (target >= 0.9).
- train: samples/s of one epoch of the built-in MLP through ``Train.fit`` on CPU, against a
  bare loop (same model, optimizer and batches, data already in RAM, no checks).
- tracking: ``Train.fit`` samples/s with an active Track (batch loss every 50 steps) against
  none; runs alternate and the median counts (overhead target < 2%).
- GPU (only when CUDA is available): samples/s in float32 and mixed precision, and the share
  of the epoch spent waiting for the next batch.

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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from blase.prepare import Manifest, ShardDataset, ShardInfo  # noqa: E402
from blase.train import Train  # noqa: E402

ROWS: list[tuple[str, str, str]] = []
SHARD_ROWS = 262_144


def row(what: str, value: str, note: str = "") -> None:
    ROWS.append((what, value, note))
    print(f"  {what}: {value} {note}", file=sys.stderr)


def write_shards(root: Path, n: int, d: int, n_val: int) -> tuple[np.ndarray, np.ndarray]:
    """Binary shards like Prepare writes; returns the train arrays (for the in-RAM baseline)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n + n_val, d), dtype=np.float32)
    w = rng.standard_normal(d).astype(np.float32)
    y = ((X @ w + 0.5 * rng.standard_normal(n + n_val).astype(np.float32)) > 0).astype(np.int64)
    shards: dict[str, list[ShardInfo]] = {}
    for split, (a, b) in {"train": (0, n), "val": (n, n + n_val)}.items():
        (root / split).mkdir(parents=True)
        infos = []
        for i, start in enumerate(range(a, b, SHARD_ROWS)):
            stop = min(start + SHARD_ROWS, b)
            f, lf = f"{split}/shard-{i:05d}.npy", f"{split}/shard-{i:05d}.labels.npy"
            np.save(root / f, X[start:stop])
            np.save(root / lf, y[start:stop])
            infos.append(
                ShardInfo(file=f, labels_file=lf, rows=stop - start, hash="-", labels_hash="-")
            )
        shards[split] = infos
    manifest = Manifest(
        task="binary",
        label="y",
        label_dtype="BIGINT",
        label_mapping={"0": 0, "1": 1},
        classes=[0, 1],
        features=[f"f{i}" for i in range(d)],
        dtypes={f"f{i}": "FLOAT" for i in range(d)},
        n_features=d,
        y_dtype="int64",
        counts={"train": n, "val": n_val, "test": 0},
        class_counts={"train": {"0": int((y[:n] == 0).sum()), "1": int((y[:n] == 1).sum())}},
        shards=shards,
        seed=0,
        split={"train": 0.99, "val": 0.01, "test": 0.0},
        stratify=False,
        key=None,
        shard_rows=SHARD_ROWS,
        source="bench",
        source_hash="-",
        created_at="-",
    )
    (root / "manifest.json").write_text(json.dumps(manifest.to_json()))
    return X[:n], y[:n]


def bench_feed(root: Path, X: np.ndarray, y: np.ndarray, batch: int) -> None:
    """ShardDataset (memory-mapped, warm) against the same batches cut from RAM the same way."""
    for shuffle in (True, False):
        ds = ShardDataset(root, "train", batch_size=batch, shuffle=shuffle, seed=0)
        for _ in ds:  # warm the page cache
            pass
        best_ds = 0.0
        for _ in range(3):
            t = time.perf_counter()
            n = sum(1 for _ in ds)
            best_ds = max(best_ds, n / (time.perf_counter() - t))
        best_ram = 0.0
        for _ in range(3):
            t = time.perf_counter()
            n = 0
            for i in ds.shard_order():
                lo = i * SHARD_ROWS
                rows = ds.shards[i].rows
                xs, ys = X[lo : lo + rows], y[lo : lo + rows]
                perm = ds._rng(i).permutation(rows) if shuffle else None
                for start in range(0, rows, batch):
                    if perm is None:
                        xb, yb = (
                            np.array(xs[start : start + batch]),
                            np.array(ys[start : start + batch]),
                        )
                    else:
                        idx = np.sort(perm[start : start + batch])
                        xb, yb = xs[idx], ys[idx]
                    pair = (torch.from_numpy(xb), torch.from_numpy(yb))
                    n += len(pair) // 2
            best_ram = max(best_ram, n / (time.perf_counter() - t))
        kind = "shuffled" if shuffle else "in order"
        row(
            f"feed {kind}: ShardDataset (mmap, warm), batch {batch}",
            f"{best_ds:,.0f} batches/s",
            f"{best_ds * batch / 1e6:,.1f}M rows/s",
        )
        row(
            f"feed {kind}: same batches from arrays in RAM",
            f"{best_ram:,.0f} batches/s",
            f"{best_ram * batch / 1e6:,.1f}M rows/s",
        )
        row(f"feed {kind}: efficiency", f"{best_ds / best_ram:.2f}", "(target >= 0.9)")
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    t = time.perf_counter()
    views = [(Xt[s : s + batch], yt[s : s + batch]) for s in range(0, len(X), batch)]
    n = len(views)
    row(
        "feed: slicing tensors in RAM as views (no copy)",
        f"{n / (time.perf_counter() - t):,.0f} batches/s",
        "upper bound: nothing is read",
    )


def bare_loop(X: np.ndarray, y: np.ndarray, d: int, batch: int, hidden: list[int]) -> float:
    """One epoch of the same MLP on in-RAM tensors, shuffled, no checks: samples/s."""
    from blase.train import build_builtin_model

    torch.manual_seed(0)
    model = build_builtin_model("mlp", d, 1, hidden=hidden)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    yf = y.astype(np.float32)
    perm = np.random.default_rng(0).permutation(len(X))
    t = time.perf_counter()
    for start in range(0, len(X), batch):
        idx = np.sort(perm[start : start + batch])
        xb, yb = torch.from_numpy(X[idx]), torch.from_numpy(yf[idx])
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(xb).reshape(-1), yb)
        loss.backward()
        opt.step()
    return len(X) / (time.perf_counter() - t)


class TimedTrack:
    """Forwards to a Track and adds up the time spent inside its calls."""

    def __init__(self, run: object) -> None:
        self._run = run
        self.active = True
        self.seconds = 0.0

    def __getattr__(self, name: str) -> object:
        target = getattr(self._run, name)
        if not callable(target):
            return target

        def timed(*args: object, **kwargs: object) -> object:
            t = time.perf_counter()
            try:
                return target(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t

        return timed


def fit_samples_per_s(
    root: Path, out: Path, cfg: dict, track: object = None
) -> tuple[float, float]:
    r = Train(cfg, seed=0).fit(root, out, track=track)
    final = r.details["final"]
    return final["samples_per_s"], final["data_wait_share"]


def bench_train(
    root: Path, base: Path, X: np.ndarray, y: np.ndarray, batch: int, repeats: int
) -> None:
    from blase.track import Track

    d = X.shape[1]
    hidden = [64, 32]
    cfg = {"model": "mlp", "hidden": hidden, "epochs": 1, "batch_size": batch, "device": "cpu"}
    bare = statistics.median(bare_loop(X, y, d, batch, hidden) for _ in range(repeats))
    ours = []
    proj = base / "proj"
    proj.mkdir()
    (proj / "blase.yaml").write_text("project: bench\n")
    tracked = []
    for i in range(repeats):
        ours.append(fit_samples_per_s(root, base / f"off{i}", cfg)[0])
        with Track("bench", project=proj, sample_resources=False) as run:
            tracked.append(fit_samples_per_s(root, base / f"on{i}", cfg, track=run)[0])
    off, on = statistics.median(ours), statistics.median(tracked)
    with Track("bench-timed", project=proj, sample_resources=False) as run:
        timed = TimedTrack(run)
        r = Train(cfg, seed=0).fit(root, base / "timed", track=timed)
    share = timed.seconds / r.details["final"]["train_seconds"]
    row(
        f"train CPU: bare loop, in-RAM, MLP {hidden}, batch {batch}",
        f"{bare:,.0f} samples/s",
        f"{torch.get_num_threads()} torch threads",
    )
    row(
        "train CPU: Train.fit over ShardDataset",
        f"{off:,.0f} samples/s",
        f"{off / bare:.2f} of bare",
    )
    row(
        "train CPU: Train.fit with Track (every 50 steps)",
        f"{on:,.0f} samples/s",
        f"{100 * (1 - on / off):+.1f}% against off (median of alternating runs)",
    )
    row("tracking: time inside Track calls / epoch time", f"{100 * share:.3f}%", "(target < 2%)")


def bench_gpu(root: Path, base: Path, batch: int) -> None:
    if not torch.cuda.is_available():
        row("GPU", "skipped", "no CUDA device here")
        return
    name = torch.cuda.get_device_name(0)
    for amp in (False, True):
        for workers in (0, 2):
            cfg = {
                "model": "mlp",
                "hidden": [256, 256],
                "epochs": 2,
                "batch_size": batch,
                "device": "cuda",
                "mixed_precision": amp,
            }
            r = Train(cfg, seed=0, num_workers=workers).fit(root, base / f"gpu{amp}{workers}")
            last = r.details["final"]
            what = (
                f"train {name}: MLP [256, 256], {'AMP fp16' if amp else 'fp32'}, {workers} workers"
            )
            row(
                what,
                f"{last['samples_per_s']:,.0f} samples/s",
                f"waiting for data {100 * last['data_wait_share']:.0f}% of the epoch",
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="400k rows instead of 2M")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (0: torch's default); 1 keeps a busy machine's numbers stable",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("BLASE_PROGRESS", "0")
    if args.threads:
        torch.set_num_threads(args.threads)
    n = args.rows or (400_000 if args.quick else 2_000_000)
    with tempfile.TemporaryDirectory(prefix="blase-bench-train-") as tmp:
        base = Path(tmp)
        root = base / "shards"
        print(f"writing {n:,} x {args.features} float32 shards ...", file=sys.stderr)
        X, y = write_shards(root, n, args.features, n_val=max(n // 100, 1000))
        bench_feed(root, X, y, args.batch)
        bench_train(root, base, X, y, args.batch, args.repeats)
        bench_gpu(root, base, 4096)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\n{n:,} rows x {args.features} features, {os.cpu_count()} CPUs, "
        f"load average {load:.1f}, torch {torch.__version__}\n"
    )
    w = max(len(r[0]) for r in ROWS)
    v = max(len(r[1]) for r in ROWS)
    print(f"| {'what':<{w}} | {'value':>{v}} | note |")
    print(f"|{'-' * (w + 2)}|{'-' * (v + 2)}|------|")
    for what, value, note in ROWS:
        print(f"| {what:<{w}} | {value:>{v}} | {note} |")


if __name__ == "__main__":
    main()
