"""Extract -> Transform -> Prepare against a pandas two-pass pipeline, and schema suggestion.

Usage::

    python bench/etl.py --sizes 1 4 --memory 1GB          # writes .bench/flights_<N>gb.csv once

Each pipeline runs in its own child process so its peak RSS (VmHWM) is its own. Prints one
table per size plus a summary of the targets of issue [2/7]:

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
from blase.extract import Extract, CSVOptions
from blase.transform import Transform, Impute, Scale, OneHot, DatetimeParts, Drop
from blase.prepare import Prepare
from blase.steps import current_peak_rss

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
                  "rejected": r1.rows_rejected}))
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


def _child(code: str, *args: str) -> dict:
    env = {**os.environ, "BLASE_PROGRESS": "0"}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1.0], help="CSV sizes in GB")
    parser.add_argument("--memory", default="1GB")
    parser.add_argument("--dir", type=Path, default=ROOT / ".bench")
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--skip-schema", action="store_true")
    parser.add_argument("--schema-only", action="store_true", help="time schema suggestion only")
    parser.add_argument("--schema-repeat", type=int, default=3,
                        help="fresh processes timing count(*) then schema suggestion; the median ratio counts")
    args = parser.parse_args()

    from etl_data import write_flights_csv

    args.dir.mkdir(parents=True, exist_ok=True)
    rows_out = []
    for size in args.sizes:
        csv = args.dir / f"flights_{size:g}gb.csv"
        if not csv.exists():
            print(f"writing {csv} ...", file=sys.stderr)
            write_flights_csv(csv, int(size * 1e9), seed=0)
        mb = csv.stat().st_size / 1e6
        row = {"size_gb": size, "mb": mb}
        if not args.schema_only:
            with tempfile.TemporaryDirectory(dir=args.dir) as work:
                row["blase"] = _child(_BLASE_CHILD, str(csv), work, args.memory)
        if not (args.skip_pandas or args.schema_only):
            with tempfile.TemporaryDirectory(dir=args.dir) as work:
                row["pandas"] = _child(_PANDAS_CHILD, str(csv), work)
        if not args.skip_schema:
            row["schema"] = [_child(_SCHEMA_CHILD, str(csv)) for _ in range(args.schema_repeat)]
        rows_out.append(row)
        _print_row(row, args.memory)
    _print_summary(rows_out, args.memory)


def _print_row(row: dict, memory: str) -> None:
    print(f"\n## {row['size_gb']:g} GB CSV ({row['mb']:.0f} MB), --memory {memory}\n")
    if "blase" in row:
        _print_pipelines(row)
    if "schema" in row:
        runs = row["schema"]
        ratios = sorted(s["schema"] / s["count_scan"] for s in runs)
        each = ", ".join(f"{s['schema']:.1f} s vs {s['count_scan']:.1f} s" for s in runs)
        print(f"schema suggestion vs DuckDB count(*), {len(runs)} fresh processes ({each}): "
              f"median {statistics.median(ratios):.2f}x (best {ratios[0]:.2f}x, worst {ratios[-1]:.2f}x)")


def _print_pipelines(row: dict) -> None:
    b = row["blase"]
    t = b["times"]
    print(f"{b['rows']:,} rows kept, {b['rejected']} rejected\n")
    print("| pipeline | extract s | transform s | prepare s | total s | MB/s | peak RSS GB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| Blase | {t['extract']:.1f} | {t['transform']:.1f} | {t['prepare']:.1f} | {t['total']:.1f} | "
          f"{row['mb'] / t['total']:.0f} | {b['peak_rss'] / 1e9:.2f} |")
    if "pandas" in row:
        p = row["pandas"]
        print(f"| pandas read_csv(chunksize), 2 passes | | | | {p['times']['total']:.1f} | "
              f"{row['mb'] / p['times']['total']:.0f} | {p['peak_rss'] / 1e9:.2f} |")
        print(f"\nBlase speed-up over pandas: {p['times']['total'] / t['total']:.2f}x")


def _print_summary(rows: list[dict], memory: str) -> None:
    if len(rows) < 2 or "blase" not in rows[0]:
        return
    first, last = rows[0]["blase"]["peak_rss"], rows[-1]["blase"]["peak_rss"]
    print(f"\npeak RSS growth {rows[0]['size_gb']:g} GB -> {rows[-1]['size_gb']:g} GB: "
          f"{(last / first - 1) * 100:+.1f}% (budget {memory})")


if __name__ == "__main__":
    main()
