"""Benchmark Track: metric throughput, listing many runs, reader latency, SIGKILL loss window.

Compares with MLflow's local file store when ``mlflow`` (or ``mlflow-skinny``) is importable.
Run from the repository root::

    python bench/track.py            # full sizes
    python bench/track.py --quick    # smaller sizes

Prints a table; nothing here is a test.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from blase.track import Track, list_runs, load_run  # noqa: E402

ROWS: list[tuple[str, str, str]] = []


def row(what: str, value: str, note: str = "") -> None:
    ROWS.append((what, value, note))
    print(f"  {what}: {value} {note}", file=sys.stderr)


def make_project(base: Path, name: str) -> Path:
    root = base / name
    root.mkdir()
    (root / "blase.yaml").write_text(f"project: {name}\n")
    return root


def bench_throughput(base: Path, n: int) -> None:
    proj = make_project(base, "throughput")
    run = Track("tight-loop", project=proj).start()
    log = run.log_metric
    t0 = time.perf_counter()
    for i in range(n):
        log("loss", 0.5, i)
    t1 = time.perf_counter()
    run.end()
    t2 = time.perf_counter()
    row(f"Blase log_metric, {n:,} points (tight loop)", f"{n / (t1 - t0):,.0f} pts/s", "calls only")
    row(
        f"Blase log_metric, {n:,} points incl. final flush",
        f"{n / (t2 - t0):,.0f} pts/s",
        "end() included",
    )


def bench_mlflow_throughput(base: Path, n: int) -> None:
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow 3 keeps it opt-in
    try:
        import mlflow
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient
    except ImportError:
        row("MLflow log_metric", "skipped", "mlflow not importable")
        return
    uri = (base / "mlruns").as_uri()
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    exp = client.create_experiment("throughput")
    with mlflow.start_run(experiment_id=exp) as active:
        t0 = time.perf_counter()
        for i in range(n):
            mlflow.log_metric("loss", 0.5, step=i)
        t1 = time.perf_counter()
        run_id = active.info.run_id
    row(
        f"MLflow file store log_metric, {n:,} points",
        f"{n / (t1 - t0):,.0f} pts/s",
        "one call per point",
    )
    batch_n = n * 25
    ts = int(time.time() * 1000)
    t0 = time.perf_counter()
    for start in range(0, batch_n, 1000):
        metrics = [Metric("loss2", 0.5, ts, i) for i in range(start, min(start + 1000, batch_n))]
        client.log_batch(run_id, metrics=metrics)
    t1 = time.perf_counter()
    row(
        f"MLflow file store log_batch, {batch_n:,} points",
        f"{batch_n / (t1 - t0):,.0f} pts/s",
        "batches of 1,000",
    )


def bench_listing(base: Path, n_runs: int) -> None:
    proj = make_project(base, "many")
    t0 = time.perf_counter()
    for i in range(n_runs):
        with Track(
            f"r{i}",
            project=proj,
            params={"lr": 0.001 * (i % 10), "opt": "adam"},
            sample_resources=False,
        ) as run:
            run.log_metric("acc", i / n_runs)
            run.log_metric("loss", 1 - i / n_runs)
    row(f"Blase create {n_runs:,} small runs", f"{time.perf_counter() - t0:.2f} s", "setup")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        runs = list_runs([proj])
        times.append(time.perf_counter() - t0)
    assert len(runs) == n_runs
    row(f"Blase list_runs, {n_runs:,} runs", f"{min(times) * 1000:.0f} ms", "best of 3")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        runs = list_runs(
            [proj], where="metrics.acc > 0.5 and params.lr < 0.005", sort="-acc", limit=10
        )
        times.append(time.perf_counter() - t0)
    row(
        f"Blase list_runs with where+sort (DuckDB), {n_runs:,} runs",
        f"{min(times) * 1000:.0f} ms",
        "best of 3",
    )

    blase = shutil.which("blase")
    if blase is None:
        row("`blase runs` wall time", "skipped", "no `blase` command on PATH")
    else:
        for label, path in ((f"{n_runs:,}-run", proj), ("1-run", _one_run_project(base))):
            walls = []
            for _ in range(3):
                t0 = time.perf_counter()
                proc = subprocess.run([blase, "runs"], cwd=path, capture_output=True, text=True)
                walls.append(time.perf_counter() - t0)
            note = (
                "best of 3"
                if proc.returncode == 0
                else f"exit {proc.returncode}: {proc.stderr.strip()[:60]}"
            )
            row(f"`blase runs` wall time, {label} project", f"{min(walls) * 1000:.0f} ms", note)

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        import mlflow
        from mlflow.tracking import MlflowClient
    except ImportError:
        row("MLflow search_runs", "skipped", "mlflow not importable")
        return
    uri = (base / "mlruns-list").as_uri()
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    exp = client.create_experiment("many")
    t0 = time.perf_counter()
    for i in range(n_runs):
        with mlflow.start_run(experiment_id=exp):
            mlflow.log_params({"lr": 0.001 * (i % 10), "opt": "adam"})
            mlflow.log_metrics({"acc": i / n_runs, "loss": 1 - i / n_runs})
    row(f"MLflow create {n_runs:,} small runs", f"{time.perf_counter() - t0:.2f} s", "setup")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        found = client.search_runs([exp], max_results=n_runs)
        times.append(time.perf_counter() - t0)
    assert len(found) == n_runs
    row(f"MLflow search_runs, {n_runs:,} runs", f"{min(times) * 1000:.0f} ms", "best of 3")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        client.search_runs(
            [exp],
            "metrics.acc > 0.5 and params.opt = 'adam'",
            max_results=10,
            order_by=["metrics.acc DESC"],
        )
        times.append(time.perf_counter() - t0)
    row(
        f"MLflow search_runs with filter+order, {n_runs:,} runs",
        f"{min(times) * 1000:.0f} ms",
        "best of 3",
    )


def _one_run_project(base: Path) -> Path:
    proj = make_project(base, "small")
    with Track("only", project=proj, sample_resources=False) as run:
        run.log_metric("acc", 0.5)
    return proj


def bench_reader_latency(base: Path, trials: int) -> None:
    proj = make_project(base, "latency")
    lags = []
    with Track("live", project=proj, sample_resources=False) as run:
        for k in range(trials):
            time.sleep(0.05 + 0.013 * k)  # land at different points of the flush cycle
            t0 = time.perf_counter()
            run.log_metric("tick", k)
            while load_run(run.run_id, [proj], history=False).metric_counts.get("tick", 0) <= k:
                time.sleep(0.002)
            lags.append(time.perf_counter() - t0)
    row(
        "Reader sees a new point after",
        f"median {statistics.median(lags) * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms",
        f"{trials} trials, flush every 0.25 s",
    )


_KILLED = textwrap.dedent(
    """
    import sys, time
    from blase.track import Track
    with Track("victim", project=sys.argv[1]) as run:
        print(run.run_id, flush=True)
        i = 0
        while True:
            run.log_metric("t", time.time(), step=i)
            i += 1
    """
)


def bench_sigkill(base: Path) -> None:
    proj = make_project(base, "killed")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED, str(proj)], stdout=subprocess.PIPE, env=env, text=True
    )
    run_id = proc.stdout.readline().strip()
    time.sleep(2.0)
    killed_at = time.time()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    detail = load_run(run_id, [proj])
    last = detail.metrics["t"]
    row(
        "SIGKILL: points lost (kill time - last stored point)",
        f"{(killed_at - last) * 1000:.0f} ms",
        f"status {detail.status}, {detail.metric_counts['t']:,} points kept",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    n_points = 200_000 if args.quick else 2_000_000
    n_mlflow = 500 if args.quick else 2_000
    n_runs = 200 if args.quick else 1_000
    with tempfile.TemporaryDirectory(prefix="blase-bench-") as tmp:
        base = Path(tmp)
        print("throughput ...", file=sys.stderr)
        bench_throughput(base, n_points)
        bench_mlflow_throughput(base, n_mlflow)
        print("listing ...", file=sys.stderr)
        bench_listing(base, n_runs)
        print("reader latency ...", file=sys.stderr)
        bench_reader_latency(base, 20)
        print("sigkill ...", file=sys.stderr)
        bench_sigkill(base)
    w1 = max(len(r[0]) for r in ROWS)
    w2 = max(len(r[1]) for r in ROWS)
    print(f"| {'measure':<{w1}} | {'result':<{w2}} | note")
    print(f"|{'-' * (w1 + 2)}|{'-' * (w2 + 2)}|------")
    for what, value, note in ROWS:
        print(f"| {what:<{w1}} | {value:<{w2}} | {note}")


if __name__ == "__main__":
    main()
