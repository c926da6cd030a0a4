"""The pipeline builder's previews against a notebook's quick look, on flights-like CSVs.

Usage::

    python bench/ui_builder.py --sizes-mb 20 200      # writes .bench/flights_<N>mb.csv once

For each size it makes a project under ``.bench/ui_builder_<N>mb/`` (transform: drop
tail_number, impute mean, scale standard, onehot max_categories 20) and times, in one process:

- **builder: source** -- ``Builder.preview_source``: ``SAMPLE_ROWS`` rows sampled from the whole
  file (a reservoir under 64 MB, 64 evenly spaced blocks above: the **sample** column), 20 shown;
- **source, first rows** -- the same with the page's "first rows" toggle (the first rows only);
- **builder: after op 4** -- ``Builder.preview_transform``: the four operations fitted and
  applied by DuckDB on that sample, read from the CSV (a fresh builder);
- **after an edit** -- the same preview again: the sample is kept while the file and the
  ``data:`` settings stay the same, so only the fit and apply run (what the page asks after
  each change of an operation);
- **builder: check + save** -- ``Builder.save``: the comment-keeping render, ``blase check``
  (the CSV header read) and the atomic write;
- **anchor: pandas + sklearn, sample** -- ``pd.read_csv(nrows=SAMPLE_ROWS)`` and a
  ``ColumnTransformer`` (SimpleImputer + StandardScaler, OneHotEncoder max_categories 20)
  ``fit_transform``: the quick look a notebook user takes;
- **full data: blase / pandas + sklearn** -- the same operations fitted on every row
  (``Pipeline.run(to_step="transform", cache=False)``: extract to Parquet, then the fit;
  and ``pd.read_csv`` + ``fit_transform``), to show what a preview does not wait for.

Each preview time is the median of ``--repeat`` runs. Prints one table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

CONFIG = """# the builder benchmark's project
project: uibench
memory: 2GB
data:
  source: data/flights.csv   # a flights-like CSV
  label: delayed
  bad_rows: skip
transform:
  - op: drop
    columns: [tail_number, flight_date]
  - op: impute
    strategy: mean
  - op: scale
    method: standard
  - op: onehot
    max_categories: 20
train:
  epochs: 1
"""
NUMERIC = ["distance", "dep_delay", "arr_delay", "taxi_out", "air_time", "cancelled"]
CATEGORICAL = ["carrier", "origin", "dest"]


def _project(size_mb: int) -> Path:
    from etl_data import write_flights_csv

    from blase.scaffold import create_project

    csv = ROOT / ".bench" / f"flights_{size_mb}mb.csv"
    if not csv.exists():
        write_flights_csv(csv, size_mb * 1024 * 1024)
    folder = ROOT / ".bench" / f"ui_builder_{size_mb}mb"
    if not (folder / "blase.yaml").exists():
        create_project(folder, example=False)
    (folder / "blase.yaml").write_text(CONFIG)
    link = folder / "data" / "flights.csv"
    if not link.exists():
        link.symlink_to(csv)
    return folder


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _sklearn(frame):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()), NUMERIC),
        ("cat", OneHotEncoder(max_categories=20, handle_unknown="infrequent_if_exist"), CATEGORICAL),
    ])
    return columns.fit_transform(frame)


def measure(size_mb: int, repeat: int) -> dict[str, Any]:
    import pandas as pd

    from blase.pipeline import Pipeline
    from blase.ui import Dashboard
    from blase.ui._builder import SAMPLE_ROWS, Builder

    folder = _project(size_mb)
    builder = Builder(Dashboard([folder]))
    project = builder.dashboard.projects[0]
    csv = folder / "data" / "flights.csv"
    state = builder.state(project)
    doc = state["doc"]
    out: dict[str, Any] = {"rows": sum(1 for _ in csv.open("rb")) - 1}
    data = doc["data"]  # the page sends the data: settings with every preview (bad_rows: skip here)
    out["source"] = _median(lambda: Builder(builder.dashboard).preview_source(project, "data/flights.csv", data),
                            repeat)
    out["after op 4"] = _median(lambda: Builder(builder.dashboard).preview_transform(project, doc, 3), repeat)
    out["again"] = _median(lambda: builder.preview_transform(project, doc, 3), repeat)
    out["source first"] = _median(lambda: Builder(builder.dashboard).preview_source(project, "data/flights.csv", data,
                                                                                   rows="first"), repeat)
    out["method"] = builder.preview_source(project, "data/flights.csv", data)["sample"]["method"]

    base = [state["base"]]

    def save() -> None:
        doc["train"]["epochs"] = 2 if doc["train"]["epochs"] == 1 else 1
        base[0] = builder.save(project, doc, base[0])["base"]

    out["check + save"] = _median(save, repeat)
    out["sklearn sample"] = _median(lambda: _sklearn(pd.read_csv(csv, nrows=SAMPLE_ROWS, na_values=["NA"],
                                                                on_bad_lines="skip")), repeat)
    started = time.perf_counter()
    Pipeline(project).run(to_step="transform", cache=False)
    out["blase full"] = time.perf_counter() - started
    started = time.perf_counter()
    _sklearn(pd.read_csv(csv, na_values=["NA"], on_bad_lines="skip"))
    out["sklearn full"] = time.perf_counter() - started
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    rows = [(size, measure(size, args.repeat)) for size in args.sizes_mb]
    head = ("CSV", "rows", "sample", "builder: source", "source, first rows", "builder: after op 4", "after an edit", "builder: check + save",
            "anchor: pandas + sklearn, sample", "full data: blase", "full data: pandas + sklearn")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for size, m in rows:
        cells = [f"{size} MB", f"{int(m['rows']):,}", str(m["method"])] + [f"{m[k]:.2f} s" for k in (
            "source", "source first", "after op 4", "again", "check + save", "sklearn sample", "blase full", "sklearn full")]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
