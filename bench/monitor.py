"""Benchmark: ``Monitor.check`` on large new data vs a bare DuckDB ``count(*)`` of the same file.

A tiny model is trained and deployed on a small slice of the flights data
(:func:`bench.etl_data.write_flights_csv`), then each size of new data is checked. Every
measurement runs in its own child process, which reports its wall time and peak RSS (VmHWM
from ``/proc/self/status``), so the sizes do not share a heap. Targets: the check takes at
most 3x the ``count(*)`` scan, and its peak RSS stays within the memory budget at every size.

With ``--profile`` a third measurement gives context: a plain one-pass DuckDB profile of
every column (``count``, ``approx_count_distinct``, ``min`` and ``max`` of each, one query).
``count(*)`` parses no column; such a profile parses all of them (a check parses each column
it compares), so it shows how much of the 3x the parse alone takes. The flights data has one
datetime column (``flight_date``), which a check does not compare unless ``monitor.include``
names it (``--compare-datetimes``): by default the monitor does not parse it, while the
profile parses every column.

    python bench/monitor.py --sizes 1 4 --memory 2GB
    python bench/monitor.py --sizes 0.2 --repeat 3 --project .bench/monitor-project-123
    python bench/monitor.py --sizes 1 4 --repeat 5 --profile
    python bench/monitor.py --sizes 1 4 --repeat 5 --compare-datetimes

Prints a table; the data files are cached in ``--data-dir`` (default ``.bench/``). With
``--repeat N`` the two measurements alternate N times and the table shows their medians (on
a shared machine the load changes between runs); ``--project`` reuses a project an earlier
run trained instead of training a new one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

CONFIG = """project: flights
seed: 0
memory: {memory}
data: {{source: data/train.csv, label: delayed, bad_rows: skip}}
transform:
  - {{op: drop, columns: [tail_number, flight_date, arr_delay]}}
  - {{op: impute, strategy: median}}
  - {{op: scale, method: standard}}
  - {{op: onehot, max_categories: 20}}
train: {{model: mlp, hidden: [16], epochs: 1, batch_size: 2048, lr: 0.01}}
deploy: {{name: flights, onnx: false}}
"""


def _peak_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def child(kind: str, project: str, data: str, memory: str) -> None:
    """One measurement in this (fresh) process; prints a JSON line."""
    from blase.project import find_project

    proj = find_project(project)
    started = time.perf_counter()
    extra = {}
    if kind == "count":
        from blase._duck import connect
        from blase.extract import CSVOptions, Extract

        extract = Extract(data, CSVOptions(bad_rows="skip"), project=proj)
        con = connect(memory, tmp_dir=proj.tmp_dir)
        extra["rows"] = con.execute(f"SELECT count(*) FROM {extract.sql_source(con)}").fetchone()[0]
    elif kind == "profile":
        from blase._duck import connect, sql_ident
        from blase.extract import CSVOptions, Extract

        extract = Extract(data, CSVOptions(bad_rows="skip"), project=proj)
        con = connect(memory, tmp_dir=proj.tmp_dir)
        relation = extract.sql_source(con)
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
        aggs = ", ".join(f"{f}({sql_ident(c)})" for c in cols
                         for f in ("count", "approx_count_distinct", "min", "max"))
        con.execute(f"SELECT count(*), {aggs} FROM {relation}").fetchall()
    else:
        from blase.monitor import Monitor

        config = None
        if kind == "monitor-datetimes":  # datetime columns compared too (monitor.include)
            from blase.deploy import resolve_model
            from blase.monitor import load_profile

            profile = load_profile(resolve_model(proj, "flights").path)
            dated = [c for c, p in profile.columns.items() if p.datetime]
            config = proj.config().monitor.model_copy(update={"include": dated})
        result = Monitor("flights", project=proj, memory=memory, bad_rows="skip", plots=False,
                         config=config).check(data)
        extra = {"rows": result.rows, "drift_share": result.drift_share, "sample": result.sample_rows,
                 "prediction_test": result.prediction.test if result.prediction else None}
    print(json.dumps({"seconds": time.perf_counter() - started, "peak_rss": _peak_rss(), **extra}))


def _run_child(kind: str, project: Path, data: Path, memory: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(project), str(data), memory],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1.0, 4.0], help="new data sizes in GB")
    parser.add_argument("--memory", default="2GB", help="memory budget of the check")
    parser.add_argument("--train-mb", type=float, default=20.0, help="size of the training slice (MB)")
    parser.add_argument("--data-dir", default=str(HERE.parent / ".bench"))
    parser.add_argument("--repeat", type=int, default=1, help="alternate the two measurements N times (medians)")
    parser.add_argument("--project", help="reuse this bench project (trained by an earlier run)")
    parser.add_argument("--compare-datetimes", action="store_true",
                        help="compare datetime columns too (monitor.include; by default they are not)")
    parser.add_argument("--profile", action="store_true",
                        help="also time a one-pass DuckDB profile of every column (context, not a target)")
    parser.add_argument("--child", nargs=4, metavar=("KIND", "PROJECT", "DATA", "MEMORY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0

    from bench.etl_data import write_flights_csv
    from blase.pipeline import Pipeline
    from blase.resources import memory_budget
    from blase.scaffold import create_project

    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    if args.project:
        project_root = Path(args.project).resolve()
    else:
        project = create_project(data_dir / f"monitor-project-{int(time.time())}", example=False)
        write_flights_csv(project.root / "data" / "train.csv", int(args.train_mb * 1e6), seed=1)
        (project.root / "blase.yaml").write_text(CONFIG.format(memory=args.memory))
        started = time.perf_counter()
        Pipeline(project).run()
        project_root = project.root
        print(f"trained and deployed the model on a {args.train_mb:g} MB slice in "
              f"{time.perf_counter() - started:.1f}s ({project_root})")

    budget = memory_budget(args.memory)
    rows = []
    for size in args.sizes:
        path = data_dir / f"flights_{size:g}gb.csv"
        if not path.is_file():
            t = time.perf_counter()
            write_flights_csv(path, int(size * 1e9), seed=0)
            print(f"wrote {path} in {time.perf_counter() - t:.0f}s")
        counts, profiles, checks = [], [], []
        for _ in range(max(1, args.repeat)):
            counts.append(_run_child("count", project_root, path, args.memory))
            if args.profile:
                profiles.append(_run_child("profile", project_root, path, args.memory))
            checks.append(_run_child("monitor-datetimes" if args.compare_datetimes else "monitor",
                                     project_root, path, args.memory))
        c = statistics.median(r["seconds"] for r in counts)
        m = statistics.median(r["seconds"] for r in checks)
        p = statistics.median(r["seconds"] for r in profiles) if profiles else float("nan")
        ratios = sorted(b["seconds"] / a["seconds"] for a, b in zip(counts, checks, strict=True))
        rows.append((size, checks[0]["rows"], c, p, m, m / c, ratios, max(r["peak_rss"] for r in counts),
                     max(r["peak_rss"] for r in checks), checks[0]["sample"]))
    runs = f"; medians of {args.repeat} alternating runs" if args.repeat > 1 else ""
    if args.compare_datetimes:
        runs += "; datetime columns compared (monitor.include)"
    print(f"\nmemory budget {args.memory} ({budget / 1e6:,.0f} MB); 3x target on time, budget on peak RSS{runs}")
    print(f"{'size':>6} {'rows':>12} {'count(*) s':>10} {'profile s':>13} {'monitor s':>10} {'ratio':>6} "
          f"{'pairs (min-max)':>15} {'count RSS MB':>12} {'monitor RSS MB':>14} {'scored rows':>11} {'ok':>4}")
    for size, n, c, p, m, ratio, ratios, crss, mrss, sample in rows:
        ok = ratio <= 3.0 and mrss <= budget
        prof = f"{p:>5.1f} ({p / c:.2f}x)" if p == p else f"{'-':>13}"
        print(f"{size:>5g}G {n:>12,} {c:>10.1f} {prof:>13} {m:>10.1f} {ratio:>6.2f} "
              f"{f'{ratios[0]:.2f}-{ratios[-1]:.2f}':>15} {crss / 1e6:>12,.0f} "
              f"{mrss / 1e6:>14,.0f} {sample:>11,} {'yes' if ok else 'NO':>4}")
    print("ratio: median monitor / median count(*); pairs: monitor / count(*) of each alternating pair")
    return 0


if __name__ == "__main__":
    sys.exit(main())
