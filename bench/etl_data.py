"""A flights-like CSV of any size, for the Extract / Transform / Prepare benchmarks.

Rows are generated in vectorised chunks (seeded numpy, ~1e6 rows each), turned into CSV
lines with Arrow compute kernels and appended to the file, so a 1 GB file takes seconds and
little memory. Missing values are written as ``NA``; every ``malformed_every`` rows one line
is ragged (an extra field or a missing one), as real exports tend to have.

    python bench/etl_data.py --size-gb 1 --out .bench/flights_1gb.csv

Columns: ``flight_date`` (``YYYY-MM-DD HH:MM:SS``), ``carrier`` (20 values), ``origin`` and
``dest`` (300 airports), ``tail_number`` (~50k values), ``distance``, ``dep_delay``,
``arr_delay``, ``taxi_out``, ``air_time`` (numeric, some ``NA``), ``cancelled`` (0/1) and the
label ``delayed`` (0/1 from the arrival delay plus noise).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["COLUMNS", "write_flights_csv"]

COLUMNS = [
    "flight_date",
    "carrier",
    "origin",
    "dest",
    "tail_number",
    "distance",
    "dep_delay",
    "arr_delay",
    "taxi_out",
    "air_time",
    "cancelled",
    "delayed",
]

CHUNK_ROWS = 1_000_000
_START = np.datetime64("2019-01-01T00:00:00", "s")
_SPAN_S = 5 * 365 * 24 * 3600

_rng_names = np.random.default_rng(12345)
CARRIERS = np.array(
    ["".join(c) for c in _rng_names.choice(list("ABCDEFGHJKLMNOPQRSTUVWXYZ9"), (20, 2))]
)
AIRPORTS = np.array(
    ["".join(c) for c in _rng_names.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), (300, 3))]
)


def _with_na(values: np.ndarray, rng: np.random.Generator, share: float) -> pa.Array:
    """Strings of ``values`` rounded to one decimal, with ``share`` of them ``NA``."""
    arr = pa.array(np.round(values, 1))
    mask = pa.array(rng.random(len(values)) < share)
    strings = pc.cast(arr, pa.string())
    return pc.if_else(mask, pa.scalar("NA"), strings)


def _chunk(rng: np.random.Generator, n: int, first_row: int, malformed_every: int) -> pa.Array:
    """``n`` CSV lines (each ending in a newline) as one Arrow string array."""
    seconds = np.sort(rng.integers(0, _SPAN_S, n))
    dates = pa.array(_START + seconds.astype("timedelta64[s]"))
    distance = rng.gamma(2.0, 400.0, n).astype(np.int64) + 50
    dep_delay = rng.normal(5.0, 25.0, n) + rng.exponential(10.0, n)
    arr_delay = dep_delay + rng.normal(-2.0, 10.0, n)
    taxi_out = rng.gamma(3.0, 5.0, n)
    air_time = distance / 7.5 + rng.normal(0.0, 10.0, n)
    cancelled = (rng.random(n) < 0.02).astype(np.int64)
    delayed = ((arr_delay + rng.normal(0.0, 8.0, n)) > 15.0).astype(np.int64)
    tails = rng.integers(0, 50_000, n)
    tail_number = pc.binary_join_element_wise(
        pa.scalar("N"), pc.cast(pa.array(tails + 10_000), pa.string()), pa.scalar("")
    )
    fields = [
        pc.cast(dates, pa.string()),
        pa.array(CARRIERS[rng.integers(0, len(CARRIERS), n)]),
        pa.array(AIRPORTS[rng.integers(0, len(AIRPORTS), n)]),
        pa.array(AIRPORTS[rng.integers(0, len(AIRPORTS), n)]),
        tail_number,
        pc.cast(pa.array(distance), pa.string()),
        _with_na(dep_delay, rng, 0.02),
        _with_na(arr_delay, rng, 0.03),
        _with_na(taxi_out, rng, 0.01),
        _with_na(air_time, rng, 0.03),
        pc.cast(pa.array(cancelled), pa.string()),
        pc.cast(pa.array(delayed), pa.string()),
    ]
    # Ragged lines: an extra field on odd-numbered malformed rows, a missing last field on even.
    rows = np.arange(first_row, first_row + n)
    bad = (
        (rows % malformed_every == malformed_every // 2)
        if malformed_every > 0
        else np.zeros(n, bool)
    )
    extra = pc.if_else(
        pa.array(bad & (rows // max(malformed_every, 1) % 2 == 1)),
        pa.scalar("oops"),
        pa.scalar(None, pa.string()),
    )
    short = pa.array(bad & (rows // max(malformed_every, 1) % 2 == 0))
    fields[-1] = pc.if_else(short, pa.scalar(None, pa.string()), fields[-1])
    line = pc.binary_join_element_wise(*fields, extra, pa.scalar(","), null_handling="skip")
    return pc.binary_join_element_wise(line, pa.scalar("\n"), pa.scalar(""))


def _text(lines: pa.Array) -> memoryview:
    """The bytes of a null-free string array's values, back to back (its data buffer)."""
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[
        lines.offset : lines.offset + len(lines) + 1
    ]
    return memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]]


def write_flights_csv(
    path: str | os.PathLike[str],
    size_bytes: int,
    seed: int = 0,
    malformed_every: int = 1_000_000,
    chunk_rows: int = CHUNK_ROWS,
) -> int:
    """Write a flights-like CSV of at least ``size_bytes`` bytes (whole lines) to ``path``.

    Parameters
    ----------
    path:
        The file to write (parent folders are created; written to a temporary name first).
    size_bytes:
        Stop after the first chunk line that takes the file to this size.
    seed:
        Seed of the numpy generator: the same seed and size give the same bytes.
    malformed_every:
        One ragged line per this many rows (0: none).
    chunk_rows:
        Rows generated per vectorised chunk.

    Returns
    -------
    int
        The number of data rows written (malformed ones included).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    rng = np.random.default_rng(seed)
    written = rows = 0
    with open(tmp, "wb") as f:
        header = (",".join(COLUMNS) + "\n").encode()
        f.write(header)
        written += len(header)
        while written < size_bytes:
            lines = _chunk(rng, chunk_rows, rows, malformed_every)
            text = _text(lines)
            if written + len(text) > size_bytes:
                # Keep only the lines needed to reach the size.
                lengths = pc.binary_length(lines).to_numpy()
                keep = int(np.searchsorted(np.cumsum(lengths), size_bytes - written)) + 1
                lines = lines.slice(0, min(keep, len(lines)))
                text = _text(lines)
            f.write(text)
            written += len(text)
            rows += len(lines)
    os.replace(tmp, path)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=1.0, help="file size in GB (1e9 bytes)")
    parser.add_argument("--out", default=".bench/flights_1gb.csv", help="CSV file to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--malformed-every", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = write_flights_csv(
        args.out, int(args.size_gb * 1e9), seed=args.seed, malformed_every=args.malformed_every
    )
    seconds = time.perf_counter() - started
    size = Path(args.out).stat().st_size
    print(
        f"wrote {args.out}: {rows:,} rows, {size / 1e6:,.0f} MB in {seconds:.1f}s "
        f"({size / 1e6 / seconds:,.0f} MB/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
