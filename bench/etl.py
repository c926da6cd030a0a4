"""Extract -> Transform -> Prepare against pandas and Polars pipelines, and schema suggestion.

Usage::

    python bench/etl.py --sizes 1 4 --memory 1GB          # writes .bench/flights_<N>gb.csv once
    python bench/etl.py --sizes 1 4 --baseline-rev 3132469^   # also Blase as of that commit

Each pipeline runs in its own child process so its peak RSS (VmHWM) is its own: Blase (this
checkout), optionally Blase at ``--baseline-rev`` (its ``blase/`` exported with ``git archive``
into ``.bench/rev-<sha>/`` and put first on the child's ``PYTHONPATH``, so before and after
run on one machine in one run), a pandas two-pass pipeline and a Polars lazy/streaming one
(bench/etl_polars.py; skipped with a note when Polars is not installed). Prints one table per
size, a table of all pipelines across sizes, and a summary of the targets of issue [2/7]:

* Blase peak RSS <= 1.3 GB with ``--memory 1GB`` at every size, growing < 10% from 1 to 4 GB;
* Blase >= 2x faster than pandas ``read_csv(chunksize=...)`` with two passes, with less memory;
* schema suggestion <= 3x a bare DuckDB ``count(*)`` scan of the same file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

NUMERIC = ["distance", "dep_delay", "arr_delay", "taxi_out", "air_time"]
CATEGORICAL = ["carrier", "origin", "dest"]
DATETIME = "flight_date"
LABEL = "delayed"

_BLASE_CHILD = r"""
import json, sys, time
from pathlib import Path
import blase
from blase.extract import Extract, CSVOptions
from blase.transform import Transform, Impute, Scale, OneHot, DatetimeParts, Drop
from blase.prepare import Prepare

def current_peak_rss():  # VmHWM, read here: the --baseline-rev code may keep it elsewhere
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM"))

csv, work, memory = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
times = {}
t0 = time.perf_counter()
ex = Extract(csv, CSVOptions(bad_rows="skip"))
r1 = ex.to_parquet(work / "extract", memory=memory)
times["extract"] = time.perf_counter() - t0
t1 = time.perf_counter()
tf = Transform([
    Drop(columns=["tail_number"]),
    DatetimeParts(columns=["flight_date"], parts=["month", "dayofweek", "hour"]),
    Impute(strategy="mean"),
    Scale(method="standard"),
    OneHot(columns=["carrier", "origin", "dest"], max_categories=50),
], exclude=["delayed"])
r2 = tf.run(work / "extract", work / "transform", memory=memory, write_data=False)  # fit: state only
times["transform"] = time.perf_counter() - t1
t2 = time.perf_counter()
r3 = Prepare(label="delayed", seed=0).run(work / "extract", work / "prepare", memory=memory, transform=tf)
times["prepare"] = time.perf_counter() - t2
times["total"] = time.perf_counter() - t0
print(json.dumps({"times": times, "peak_rss": current_peak_rss(), "rows": r3.rows_out,
                  "rejected": r1.rows_rejected, "blase": blase.__file__}))
"""

_PANDAS_CHILD = r"""
import json, sys, time
import numpy as np
import pandas as pd
from pathlib import Path

csv, work = sys.argv[1], Path(sys.argv[2])
NUMERIC = ["distance", "dep_delay", "arr_delay", "taxi_out", "air_time"]
CATEGORICAL = ["carrier", "origin", "dest"]
CHUNK = 500_000
read = dict(chunksize=CHUNK, on_bad_lines="skip", na_values=["NA"], parse_dates=["flight_date"])
t0 = time.perf_counter()
# pass 1: statistics
n = 0; s = {c: 0.0 for c in NUMERIC}; ss = {c: 0.0 for c in NUMERIC}; cnt = {c: 0 for c in NUMERIC}
cats = {c: {} for c in CATEGORICAL}
for chunk in pd.read_csv(csv, **read):
    n += len(chunk)
    for c in NUMERIC:
        col = chunk[c].astype("float64")
        s[c] += col.sum(); ss[c] += (col * col).sum(); cnt[c] += col.count()
    for c in CATEGORICAL:
        for k, v in chunk[c].value_counts().items():
            cats[c][k] = cats[c].get(k, 0) + int(v)
mean = {c: s[c] / cnt[c] for c in NUMERIC}
std = {c: max((ss[c] / cnt[c] - mean[c] ** 2) ** 0.5, 1e-12) for c in NUMERIC}
top = {c: [k for k, _ in sorted(cats[c].items(), key=lambda kv: (-kv[1], kv[0]))[:50]] for c in CATEGORICAL}
# pass 2: transform, split, write float32 shards
out = work / "pandas"; out.mkdir(parents=True, exist_ok=True)
rows = 0
for i, chunk in enumerate(pd.read_csv(csv, **read)):
    y = chunk.pop("delayed").to_numpy(np.int64)
    feats = {}
    d = chunk["flight_date"]
    feats["month"], feats["dayofweek"], feats["hour"] = d.dt.month, d.dt.dayofweek, d.dt.hour
    for c in NUMERIC:
        feats[c] = (chunk[c].astype("float64").fillna(mean[c]) - mean[c]) / std[c]
    frame = pd.DataFrame(feats)
    for c in CATEGORICAL:
        col = chunk[c].where(chunk[c].isin(top[c]), "__other__")
        dummies = pd.get_dummies(pd.Categorical(col, categories=top[c] + ["__other__"]), prefix=c)
        dummies.index = frame.index
        frame = pd.concat([frame, dummies], axis=1)
    X = frame.to_numpy(np.float32)
    idx = np.arange(rows, rows + len(X), dtype=np.uint64)
    h = (idx * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)
    u = h.astype(np.float64) / float(1 << 24)
    for name, mask in (("train", u < 0.8), ("val", (u >= 0.8) & (u < 0.9)), ("test", u >= 0.9)):
        np.save(out / f"{name}-{i:05d}.npy", X[mask]); np.save(out / f"{name}-{i:05d}.labels.npy", y[mask])
    rows += len(X)
total = time.perf_counter() - t0
with open("/proc/self/status") as f:
    peak = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM"))
print(json.dumps({"times": {"total": total}, "peak_rss": peak, "rows": rows}))
"""

_SCHEMA_CHILD = r"""
import json, sys, time
import duckdb
from blase.schema import suggest_schema
csv = sys.argv[1]
t0 = time.perf_counter()
n = duckdb.sql(f"SELECT count(*) FROM read_csv('{csv}', ignore_errors=true, nullstr='NA')").fetchall()[0][0]
scan = time.perf_counter() - t0
t1 = time.perf_counter()
report = suggest_schema(csv, label="delayed", memory="1GB")
schema = time.perf_counter() - t1
print(json.dumps({"count_scan": scan, "schema": schema, "rows": n}))
"""


def _child(code: str, *args: str, pythonpath: Path | None = None, script: Path | None = None) -> dict:
    """Run ``code`` (or ``script``) in a fresh interpreter, in a folder of its own (``-c`` puts
    the working folder first on ``sys.path``, and this checkout's ``blase/`` must not shadow a
    ``--baseline-rev`` one); its last stdout line is JSON."""
    env = {**os.environ, "BLASE_PROGRESS": "0"}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), *filter(None, [env.get("PYTHONPATH")])])
    argv = [sys.executable, str(script)] if script is not None else [sys.executable, "-c", code]
    with tempfile.TemporaryDirectory() as cwd:
        done = subprocess.run([*argv, *args], capture_output=True, text=True, env=env, cwd=cwd)
    if done.returncode != 0:
        raise SystemExit(f"child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def baseline_checkout(rev: str, folder: Path) -> tuple[str, Path]:
    """``blase/`` as of ``rev`` in ``folder/rev-<sha>`` (exported once, never a worktree:
    nothing in the repository changes): the short sha and the folder for ``PYTHONPATH``."""
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    target = folder / f"rev-{sha[:12]}"
    if not (target / "blase" / "__init__.py").is_file():
        tmp = folder / f".rev-{sha[:12]}-{os.getpid()}"
        tmp.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha, "blase"], cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
        tmp.rename(target)
    return sha[:12], target


def _polars_available() -> bool:
    done = subprocess.run([sys.executable, "-c", "import polars"], capture_output=True)
    return done.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1.0], help="CSV sizes in GB")
    parser.add_argument("--memory", default="1GB")
    parser.add_argument("--dir", type=Path, default=ROOT / ".bench")
    parser.add_argument("--baseline-rev", metavar="REV",
                        help="also run the Blase pipeline as of git revision REV (before/after in one run)")
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--skip-polars", action="store_true")
    parser.add_argument("--skip-schema", action="store_true")
    parser.add_argument("--schema-only", action="store_true", help="time schema suggestion only")
    parser.add_argument("--schema-repeat", type=int, default=3,
                        help="fresh processes timing count(*) then schema suggestion; the median ratio counts")
    args = parser.parse_args()
    args.dir = args.dir.resolve()

    from etl_data import write_flights_csv

    args.dir.mkdir(parents=True, exist_ok=True)
    baseline = baseline_checkout(args.baseline_rev, args.dir) if args.baseline_rev and not args.schema_only else None
    polars = not (args.skip_polars or args.schema_only) and _polars_available()
    rows_out = []
    for size in args.sizes:
        csv = args.dir / f"flights_{size:g}gb.csv"
        if not csv.exists():
            print(f"writing {csv} ...", file=sys.stderr)
            write_flights_csv(csv, int(size * 1e9), seed=0)
        row = {"size_gb": size, "mb": csv.stat().st_size / 1e6}
        if not args.schema_only:
            row |= _pipelines(csv, args, baseline, polars)
        if not args.skip_schema:
            row["schema"] = [_child(_SCHEMA_CHILD, str(csv)) for _ in range(args.schema_repeat)]
        rows_out.append(row)
        _print_row(row, args.memory, baseline)
    if not args.schema_only:
        _print_table(rows_out, baseline, polars_note=None if polars or args.skip_polars else "not installed")
    _print_summary(rows_out, args.memory)


def _pipelines(csv: Path, args: argparse.Namespace, baseline: tuple[str, Path] | None, polars: bool) -> dict:
    """Each pipeline on ``csv`` in a child process of its own, in a fresh work folder."""
    row: dict = {}
    runs: list[tuple[str, dict]] = [("blase", {"code": _BLASE_CHILD, "extra": (args.memory,)})]
    if baseline is not None:
        runs.append(("baseline", {"code": _BLASE_CHILD, "extra": (args.memory,), "pythonpath": baseline[1]}))
    if not args.skip_pandas:
        runs.append(("pandas", {"code": _PANDAS_CHILD, "extra": ()}))
    if polars:
        runs.append(("polars", {"code": "", "extra": (), "script": ROOT / "bench" / "etl_polars.py"}))
    for name, how in runs:
        with tempfile.TemporaryDirectory(dir=args.dir) as work:
            row[name] = _child(how["code"], str(csv), work, *how["extra"], pythonpath=how.get("pythonpath"),
                               script=how.get("script"))
    if baseline is not None and not row["baseline"]["blase"].startswith(str(baseline[1])):
        raise SystemExit(f"the baseline child imported {row['baseline']['blase']}, not the code of {baseline[0]}")
    return row


def _print_row(row: dict, memory: str, baseline: tuple[str, Path] | None) -> None:
    print(f"\n## {row['size_gb']:g} GB CSV ({row['mb']:.0f} MB), --memory {memory}\n")
    if "blase" in row:
        _print_pipelines(row, baseline)
    if "schema" in row:
        runs = row["schema"]
        ratios = sorted(s["schema"] / s["count_scan"] for s in runs)
        each = ", ".join(f"{s['schema']:.1f} s vs {s['count_scan']:.1f} s" for s in runs)
        print(f"schema suggestion vs DuckDB count(*), {len(runs)} fresh processes ({each}): "
              f"median {statistics.median(ratios):.2f}x (best {ratios[0]:.2f}x, worst {ratios[-1]:.2f}x)")


def _blase_line(label: str, b: dict, mb: float) -> str:
    t = b["times"]
    return (f"| {label} | {t['extract']:.1f} | {t['transform']:.1f} | {t['prepare']:.1f} | {t['total']:.1f} | "
            f"{mb / t['total']:.0f} | {b['peak_rss'] / 1e9:.2f} |")


def _print_pipelines(row: dict, baseline: tuple[str, Path] | None) -> None:
    b, mb = row["blase"], row["mb"]
    print(f"{b['rows']:,} rows kept, {b['rejected']} rejected\n")
    print("| pipeline | extract s | transform s | prepare s | total s | MB/s | peak RSS GB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(_blase_line("Blase", b, mb))
    if "baseline" in row:
        print(_blase_line(f"Blase @ {baseline[0] if baseline else '?'}", row["baseline"], mb))
    if "pandas" in row:
        p = row["pandas"]
        print(f"| pandas read_csv(chunksize), 2 passes | | | | {p['times']['total']:.1f} | "
              f"{mb / p['times']['total']:.0f} | {p['peak_rss'] / 1e9:.2f} |")
    if "polars" in row:
        q = row["polars"]
        print(f"| Polars {q['polars']} scan_csv, streaming (stats {q['times']['stats']:.1f} s) | | | | "
              f"{q['times']['total']:.1f} | {mb / q['times']['total']:.0f} | {q['peak_rss'] / 1e9:.2f} |")
    print()
    labels = {"baseline": f"Blase @ {baseline[0] if baseline else '?'}",
              "pandas": "pandas", "polars": "Polars"}
    for name, label in labels.items():
        if name in row:
            print(f"Blase speed-up over {label}: {row[name]['times']['total'] / b['times']['total']:.2f}x")


def _print_table(rows: list[dict], baseline: tuple[str, Path] | None, polars_note: str | None) -> None:
    """All pipelines across sizes: total seconds and peak RSS, one column each."""
    names = [("blase", "Blase")] + ([("baseline", f"Blase @ {baseline[0]}")] if baseline else [])
    names += [("pandas", "pandas"), ("polars", "Polars")]
    print("\n## all pipelines: total time, peak RSS\n")
    print("| CSV | " + " | ".join(f"{label} s" for _, label in names) + " | "
          + " | ".join(f"{label} GB" for _, label in names) + " |")
    print("| --- |" + " ---: |" * (2 * len(names)))
    for row in rows:
        times = [_cell(row, n, polars_note, lambda r: f"{r['times']['total']:.1f}") for n, _ in names]
        peaks = [_cell(row, n, polars_note, lambda r: f"{r['peak_rss'] / 1e9:.2f}") for n, _ in names]
        print(f"| {row['size_gb']:g} GB | " + " | ".join(times + peaks) + " |")


def _cell(row: dict, name: str, polars_note: str | None, show) -> str:
    if name in row:
        return show(row[name])
    return polars_note if name == "polars" and polars_note else "-"


def _print_summary(rows: list[dict], memory: str) -> None:
    if len(rows) < 2 or "blase" not in rows[0]:
        return
    first, last = rows[0]["blase"]["peak_rss"], rows[-1]["blase"]["peak_rss"]
    print(f"\npeak RSS growth {rows[0]['size_gb']:g} GB -> {rows[-1]['size_gb']:g} GB: "
          f"{(last / first - 1) * 100:+.1f}% (budget {memory})")


if __name__ == "__main__":
    main()
