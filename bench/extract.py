"""Throughput of Blase's Extract against the readers it could have been.

Reads a flights-like CSV (made by ``bench/etl_data.py`` if missing; it has a few ragged
lines, so every reader runs in its skip-bad-rows mode) into Arrow record batches, all
columns, and prints MB/s of CSV per reader and Blase's speed relative to each:

- Blase ``Extract.batches`` with ``bad_rows="skip"`` (ragged lines dropped and counted);
- DuckDB's record-batch reader on the same file, with the same options (``store_rejects``,
  the same null tokens), at Blase's batch size and at DuckDB's default of 1,000,000 rows;
- DuckDB with plain ``ignore_errors=true`` (what one would write by hand);
- ``pyarrow.csv.open_csv`` streaming with an ``invalid_row_handler`` that skips;
- ``pandas.read_csv(chunksize=...)`` with ``on_bad_lines="skip"``.

Each reader runs ``--repeat`` times, interleaved, on a warm file; the table gives the best
and the median run (on a shared machine the spread is large). ``--memory`` is Blase's budget.

    python bench/extract.py --size-gb 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from etl_data import write_flights_csv

NULLS = ["", "NA", "N/A", "null", "NaN"]


def blase_extract(path: Path, memory: str) -> Callable[[], int]:
    from blase.extract import CSVOptions, Extract

    def run() -> int:
        ex = Extract(path, CSVOptions(bad_rows="skip"))
        n = sum(b.num_rows for b in ex.batches(memory=memory))
        assert ex.stats is not None and ex.stats.rows_in == n + ex.stats.rows_rejected
        run.batch_rows = ex.stats.batch_rows  # type: ignore[attr-defined]
        return n

    return run


def duckdb_reader(path: Path, options: str, rows: Callable[[], int]) -> Callable[[], int]:
    import duckdb

    def run() -> int:
        con = duckdb.connect(config={"preserve_insertion_order": True})
        nulls = "[" + ", ".join(f"'{v}'" for v in NULLS) + "]"
        reader = con.sql(
            f"SELECT * FROM read_csv('{path}', nullstr={nulls}{options})"
        ).to_arrow_reader(rows())
        n = sum(b.num_rows for b in reader)
        con.close()
        return n

    return run


def pyarrow_stream(path: Path) -> Callable[[], int]:
    import pyarrow.csv as pacsv

    def run() -> int:
        parse = pacsv.ParseOptions(invalid_row_handler=lambda row: "skip")
        convert = pacsv.ConvertOptions(null_values=NULLS, strings_can_be_null=True)
        read = pacsv.ReadOptions(block_size=16 << 20)
        reader = pacsv.open_csv(
            path, read_options=read, parse_options=parse, convert_options=convert
        )
        return sum(b.num_rows for b in reader)

    return run


def pandas_chunks(path: Path) -> Callable[[], int]:
    import pandas as pd

    def run() -> int:
        n = 0
        for chunk in pd.read_csv(
            path, chunksize=1_000_000, on_bad_lines="skip", na_values=NULLS, keep_default_na=True
        ):
            n += len(chunk)
        return n

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument(
        "--file", default=None, help="CSV to read (default .bench/flights_<size>gb.csv)"
    )
    parser.add_argument("--memory", default="2GB", help="Blase's memory budget")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-pandas", action="store_true")
    args = parser.parse_args(argv)

    size_tag = f"{args.size_gb:g}".replace(".", "_")
    path = Path(args.file or f".bench/flights_{size_tag}gb.csv")
    if not path.exists():
        print(f"writing {path} ...", flush=True)
        write_flights_csv(path, int(args.size_gb * 1e9))
    size = path.stat().st_size
    with open(path, "rb") as f:  # warm the page cache
        while f.read(64 << 20):
            pass

    blase = blase_extract(path, args.memory)
    blase_rows = lambda: getattr(blase, "batch_rows", 262_144)  # noqa: E731
    readers: dict[str, Callable[[], int]] = {
        "Blase Extract.batches (skip)": blase,
        "DuckDB reader, same options": duckdb_reader(path, ", store_rejects=true", blase_rows),
        "DuckDB reader, same options, 1M rows": duckdb_reader(
            path, ", store_rejects=true", lambda: 1_000_000
        ),
        "DuckDB reader, ignore_errors": duckdb_reader(path, ", ignore_errors=true", blase_rows),
        "pyarrow open_csv stream": pyarrow_stream(path),
    }
    if not args.skip_pandas:
        readers["pandas read_csv chunks"] = pandas_chunks(path)
    times: dict[str, list[float]] = {name: [] for name in readers}
    rows: dict[str, int] = {}
    for rep in range(args.repeat):
        for name, run in readers.items():
            started = time.perf_counter()
            rows[name] = run()
            seconds = time.perf_counter() - started
            times[name].append(seconds)
            print(
                f"  run {rep + 1}: {name:40s} {size / 1e6 / seconds:7.0f} MB/s",
                file=sys.stderr,
                flush=True,
            )

    blase_name = "Blase Extract.batches (skip)"
    print(
        f"\n{path} ({size / 1e6:,.0f} MB), {os.cpu_count()} CPUs, {args.repeat} runs each; "
        f"Blase budget {args.memory}, {getattr(blase, 'batch_rows', '?')} rows per batch\n"
    )
    print("| reader | rows | best s | best MB/s | median MB/s | Blase / this (best) | (median) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    best = {name: min(t) for name, t in times.items()}
    median = {name: statistics.median(t) for name, t in times.items()}
    for name, seconds in best.items():
        ratio = best[name] / best[blase_name]
        ratio_median = median[name] / median[blase_name]
        print(
            f"| {name} | {rows[name]:,} | {seconds:.2f} | {size / 1e6 / seconds:,.0f} "
            f"| {size / 1e6 / median[name]:,.0f} | {ratio:.2f}x | {ratio_median:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
