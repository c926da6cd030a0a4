"""Flatten a generated NDJSON file of nested orders to Parquet: Blase against DuckDB.

- Blase: the `nested_json` source (schema pass, then rows) into Parquet under `--memory`,
  then the `flatten` operation (`max_depth: 2`, `lists: length`) into flat Parquet: what
  `blase run --to transform` does with the `json` template's first step.
- DuckDB: one `COPY (SELECT ... FROM read_json(...)) TO 'flat.parquet'` with the same
  flattening written in SQL over the structs, with `memory_limit` set to the same budget.

Each runs in its own process (peak RSS is that process's maximum resident set, and CPU time
its user + system time, from `wait4`), `--repeat` times, alternating; the table gives the
median times. On a shared machine the CPU time is the fairer measure.

    python bench/nested_json.py --size-gb 1 --memory 512MB
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from jsongen import write

BLASE = """
import sys, shutil
from blase.extract import Extract, PluginOptions
from blase.contrib._flatten import Flatten
from blase.transform import Transform
src, work, memory = sys.argv[1:4]
Extract(src, PluginOptions(), format="nested_json").to_parquet(work + "/extract", memory=memory)
tf = Transform([Flatten(max_depth=2, lists="length")])
tf.fit(work + "/extract", memory=memory)
tf.write(work + "/extract", work + "/flat", memory=memory)
"""

DUCKDB = """
import sys, duckdb
src, work, memory = sys.argv[1:4]
con = duckdb.connect(config={"memory_limit": memory, "threads": 2, "temp_directory": work + "/tmp"})
con.execute(f'''COPY (SELECT order_id, placed_at,
    customer.id AS "customer.id", customer.tier AS "customer.tier", customer.age AS "customer.age",
    customer.address.country AS "customer.address.country", customer.address.city AS "customer.address.city",
    len(items) AS items, payment.method AS "payment.method", payment.installments AS "payment.installments",
    shipping.method AS "shipping.method", shipping.days AS "shipping.days", coupon, returned
  FROM read_json('{src}', format='newline_delimited'))
  TO '{work}/flat.parquet' (FORMAT parquet)''')
"""


def run(code: str, src: Path, memory: str) -> tuple[float, int, int, float]:
    """Seconds, peak RSS bytes, output rows and CPU seconds of one run of ``code`` in a fresh
    process."""
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="bench-json-") as work:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code, str(src), work, memory])
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        if status != 0:
            raise SystemExit(f"run failed ({status})")
        flat = Path(work) / "flat"
        files = sorted(flat.glob("*.parquet")) if flat.is_dir() else [Path(work) / "flat.parquet"]
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    return seconds, usage.ru_maxrss * 1024, rows, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--memory", default="512MB")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--data", default=None, help="the NDJSON file (made if missing)")
    args = parser.parse_args()
    src = Path(args.data or f"{tempfile.gettempdir()}/orders-{args.size_gb:g}gb.ndjson")
    if not src.exists():
        t = time.perf_counter()
        n = write(str(src), size_bytes=int(args.size_gb * (1 << 30)))
        print(f"wrote {n:,} orders ({src.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t:.0f}s")
    results: dict[str, list[tuple[float, int, int, float]]] = {"blase": [], "duckdb": []}
    for _ in range(args.repeat):
        for name, code in (("blase", BLASE), ("duckdb", DUCKDB)):
            results[name].append(run(code, src, args.memory))
    size = src.stat().st_size / 1e6
    print(f"\n{size:,.0f} MB NDJSON, memory budget {args.memory}, median of {args.repeat}")
    print("| reader | rows | seconds | CPU seconds | MB/s | peak RSS |\n| --- | --- | --- | --- | --- | --- |")
    base = statistics.median(r[0] for r in results["duckdb"])
    cpu_base = statistics.median(r[3] for r in results["duckdb"])
    for name, rows in results.items():
        secs, cpu = statistics.median(r[0] for r in rows), statistics.median(r[3] for r in rows)
        rss = max(r[1] for r in rows)
        rel = f" ({secs / base:.2f}x)" if name != "duckdb" else ""
        cpu_rel = f" ({cpu / cpu_base:.2f}x)" if name != "duckdb" else ""
        print(f"| {name} | {rows[0][2]:,} | {secs:.1f}{rel} | {cpu:.1f}{cpu_rel} | {size / secs:.0f} | "
              f"{rss / 2**20:,.0f} MB |")


if __name__ == "__main__":
    main()
