"""What the run index holds per run, and how it reads, refreshes and saves it.

:class:`IndexedRun` is one run's summary, hashes and per-metric :class:`MetricStat` (latest,
minimum, maximum, number of points). A run is read from its folder as the readers of
:mod:`blase.track._reader` read it (never writing, never blocking the writer); a live
``metrics.csv`` from where the last read stopped; finished runs met for the first time by
several pyarrow CSV readers at once; and the ended runs of a project are saved to ``.blase/run-index.json``, a
rebuildable copy a later index starts from.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase.track import _layout as L
from blase.track._models import RunSummary
from blase.track._reader import cached_summary, read_log, read_meta, resolve_status

__all__ = ["AGGREGATES", "IndexedRun", "MetricStat", "lower_is_better", "read_histories"]

logger = logging.getLogger(__name__)

#: Metric names where smaller is better (losses, errors, time, memory): ``best`` is the minimum.
LOWER_IS_BETTER = re.compile(r"(loss|rmse|mse|mae|mape|error|seconds|_s$|peak_rss|wait_share)")
AGGREGATES = ("latest", "min", "max", "best")
AGG_RE = re.compile(r"^(min|max|best|latest)\((?:metrics\.)?(.+)\)$")
#: Finished runs read by the parallel pass (:func:`stats_in_parallel`) when at least this many are new at once.
BATCH_MIN_RUNS = 8


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is the better one (by its name)."""
    return bool(LOWER_IS_BETTER.search(metric))


@dataclass(slots=True)  # 10,000 runs x 50 metrics of them: no __dict__ each
class MetricStat:
    """One metric of one run: latest value, minimum, maximum and number of points."""

    latest: float
    min: float
    max: float
    count: int

    def add(self, value: float) -> None:
        self.latest = value
        self.min = value if value < self.min else self.min
        self.max = value if value > self.max else self.max
        self.count += 1

    def value(self, aggregate: str, metric: str) -> float:
        if aggregate == "best":
            aggregate = "min" if lower_is_better(metric) else "max"
        return float(getattr(self, aggregate))


@dataclass
class IndexedRun:
    """A run as the index holds it: its summary, hashes and per-metric statistics."""

    summary: RunSummary
    hashes: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, MetricStat] = field(default_factory=dict)
    signature: tuple[Any, ...] = ()
    metrics_offset: int = 0
    metrics_size: int | None = None

    @property
    def id(self) -> str:
        return self.summary.id

    def metric(self, name: str, aggregate: str = "latest") -> float | None:
        stat = self.stats.get(name)
        if stat is None:
            value = self.summary.metrics.get(name)
            return float(value) if aggregate == "latest" and isinstance(value, (int, float)) else None
        return stat.value(aggregate, name)

    def hash_values(self) -> Iterable[str]:
        for value in self.hashes.values():
            if isinstance(value, str):
                yield value
            elif isinstance(value, dict):
                yield from (v for v in value.values() if isinstance(v, str))


# ---------------------------------------------------------------------- one run


def run_signature(run_dir: Path) -> tuple[Any, ...]:
    """The sizes of a run's logs and the size and time of its summary (``None``: missing)."""
    sig: list[Any] = []
    for fname in (L.LOG, L.METRICS, L.SUMMARY):
        try:
            st = os.stat(run_dir / fname)
            sig.append((st.st_size, st.st_mtime_ns) if fname == L.SUMMARY else st.st_size)
        except OSError:
            sig.append(None)
    return tuple(sig)


def index_run(run_dir: Path, root: Path, sig: tuple[Any, ...], old: IndexedRun | None) -> IndexedRun:
    damage: list[str] = []
    meta = read_meta(run_dir, damage)
    base = {
        "id": str(meta.get("id") or run_dir.name), "name": str(meta.get("name") or run_dir.name),
        "kind": str(meta.get("kind") or "run"), "started_at": meta.get("started_at"),
        "project": str(meta.get("project") or root), "parent": meta.get("parent"), "path": run_dir,
    }
    cached = cached_summary(run_dir)
    if cached is not None:
        summary = RunSummary(status=cached.get("status", "finished"), ended_at=cached.get("ended_at"),
                             params=cached.get("params") or {}, metrics=cached.get("metrics") or {},
                             tags=cached.get("tags") or {}, damage=damage, **base)
        hashes = cached.get("hashes") or {}
    else:
        log = read_log(run_dir)
        status, ended_at, _live = resolve_status(meta, run_dir, log)
        summary = RunSummary(status=status, ended_at=ended_at, params=log.params, tags=log.tags,
                             damage=damage + log.damage, **base)
        hashes = log.hashes
    entry = IndexedRun(summary, hashes, signature=sig, metrics_size=sig[1])
    if cached is not None and summary.status != "running":
        entry.signature = ("done", *sig)  # the writer ended: its summary matches the complete logs
        if _stats_from_summary(entry, cached.get("metric_stats")):
            return entry  # the writer kept min, max and count: no need to read metrics.csv
    if old is not None and old.metrics_offset and sig[1] is not None and sig[1] >= old.metrics_offset:
        # go on from there, on a copy: readers of the current snapshot may be iterating the old one
        entry.stats = {k: MetricStat(v.latest, v.min, v.max, v.count) for k, v in old.stats.items()}
        entry.metrics_offset = old.metrics_offset
    if summary.status == "running" or entry.metrics_offset:
        read_new_metrics(entry)
    return entry


def _stats_from_summary(entry: IndexedRun, stats: Any) -> bool:
    """Take ``summary.json``'s ``metric_stats`` (``{name: [min, max, count]}``, written by Track
    since the run index used them); False when absent or malformed (then the file is read)."""
    if not isinstance(stats, dict) or not entry.metrics_size:
        return False
    latest = entry.summary.metrics
    try:
        entry.stats = {name: MetricStat(float(latest[name]) if isinstance(latest.get(name), (int, float)) else hi,
                                        float(lo), float(hi), int(n)) for name, (lo, hi, n) in stats.items()}
    except (TypeError, ValueError):
        entry.stats = {}
        return False
    entry.metrics_offset = entry.metrics_size
    return True


def read_new_metrics(entry: IndexedRun) -> None:
    """Fold the complete lines ``metrics.csv`` gained since ``metrics_offset`` into ``stats``."""
    import csv
    import io

    path = (entry.summary.path or Path()) / L.METRICS
    try:
        with open(path, "rb") as f:
            f.seek(entry.metrics_offset)
            data = f.read()
    except OSError:
        return
    cut = data.rfind(b"\n") + 1
    stats = entry.stats
    for row in csv.reader(io.StringIO(data[:cut].decode("utf-8", errors="replace"), newline="")):
        if len(row) != 4:
            continue
        try:
            value = float(row[3])
        except ValueError:
            continue
        stat = stats.get(row[2])
        if stat is None:
            stats[row[2]] = MetricStat(value, value, value, 1)
        else:
            stat.add(value)
    entry.metrics_offset += cut
    if entry.summary.status == "running" or not entry.summary.metrics:
        entry.summary.metrics = {k: s.latest for k, s in stats.items()}


def stats_in_parallel(entries: list[IndexedRun], *, done: Callable[[int], None] | None = None,
                      threads: int | None = None) -> None:
    """Min, max and count of every metric of ended runs, several ``metrics.csv`` files at once.

    Each file is parsed by pyarrow's CSV reader and grouped by metric name in Arrow (both
    release the GIL, so ``threads`` readers use every core; default: cores + 1, at most 4).
    Measured on 2,000 runs x 5,000 points: 1.7 s, where one DuckDB ``read_csv`` over all the
    files took 5.4 s. A file pyarrow cannot read is left to :func:`read_new_metrics` (its
    ``metrics_offset`` stays 0). ``done(n)`` is told after each run.
    """
    from concurrent.futures import ThreadPoolExecutor

    todo = [e for e in entries if e.metrics_size]
    workers = threads or min(4, (os.cpu_count() or 1) + 1)
    with ThreadPoolExecutor(workers, thread_name_prefix="blase-index-stats") as pool:
        for entry, found in zip(todo, pool.map(_file_stats, todo), strict=True):
            if found is not None:
                latest = entry.summary.metrics
                entry.stats = {name: MetricStat(float(latest[name]) if isinstance(latest.get(name), (int, float))
                                                else hi, lo, hi, n) for name, (lo, hi, n) in found.items()}
                entry.metrics_offset = entry.metrics_size or 0
            if done is not None:
                done(1)


def _file_stats(entry: IndexedRun) -> dict[str, tuple[float, float, int]] | None:
    """``{metric: (min, max, count)}`` of one finished run's ``metrics.csv``; ``None`` if unreadable."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = (entry.summary.path or Path()) / L.METRICS
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=["time", "step", "name", "value"], use_threads=False,
                                           block_size=1 << 22),
            parse_options=pacsv.ParseOptions(invalid_row_handler=lambda row: "skip"),  # a damaged line
            convert_options=pacsv.ConvertOptions(column_types={"name": pa.string(), "value": pa.float64()},
                                                 include_columns=["name", "value"]),
        )
        grouped = table.group_by("name").aggregate([("value", "min"), ("value", "max"), ("value", "count")])
    except (OSError, pa.ArrowException):
        return None
    names, lo, hi, n = (grouped.column(c).to_pylist() for c in ("name", "value_min", "value_max", "value_count"))
    return {k: (a, b, c) for k, a, b, c in zip(names, lo, hi, n, strict=True) if a is not None}


def read_histories(run_dirs: Sequence[Path], names: Sequence[str]) -> dict[Path, dict[str, list[tuple[Any, float]]]]:
    """The points ``(step, value)`` of metrics ``names`` of several runs, in one DuckDB read of
    their ``metrics.csv`` files (in logging order; a live writer's half line is skipped)."""
    import duckdb

    files = {str(d / L.METRICS): d for d in run_dirs if (d / L.METRICS).is_file()}
    out: dict[Path, dict[str, list[tuple[Any, float]]]] = {d: {} for d in run_dirs}
    if not files or not names:
        return out
    cols = "{'time': 'DOUBLE', 'step': 'BIGINT', 'name': 'VARCHAR', 'value': 'DOUBLE'}"
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"SELECT filename, name, step, value FROM read_csv(?, columns={cols}, header=false, auto_detect=false, "
            "delim=',', quote='\"', escape='\"', filename=true, ignore_errors=true) "
            "WHERE list_contains(?, name) ORDER BY filename, name, time, step", [list(files), list(names)]).fetchall()
    finally:
        con.close()
    for filename, name, step, value in rows:
        out[files[filename]].setdefault(name, []).append((step, value))
    return out


# ---------------------------------------------------------------------- the saved copy

SAVED = "run-index.json"
SAVED_VERSION = 1


def _saved_path(root: Path) -> Path:
    return root / ".blase" / SAVED


def save_index(roots: list[Path], runs: dict[str, IndexedRun]) -> None:
    """Save the ended runs of each project (a rebuildable cache: a failure is only logged)."""
    from blase import _fs

    for root in roots:
        rows = []
        inside = str(root / "runs") + os.sep
        for key, r in runs.items():
            if not key.startswith(inside) or r.signature[:1] != ("done",):
                continue
            run_dir = Path(key)
            summary = r.summary.to_json()
            summary["metrics"] = r.summary.metrics  # NaN stays a float (json writes NaN)
            rows.append({"dir": run_dir.name, "signature": list(r.signature[1:]), "summary": summary,
                         "hashes": r.hashes, "offset": r.metrics_offset,
                         "stats": {k: [v.latest, v.min, v.max, v.count] for k, v in r.stats.items()}})
        try:
            _fs.write_json_atomic(_saved_path(root), {"version": SAVED_VERSION, "runs": rows}, indent=None,
                                  default=str)
        except (OSError, ValueError):
            logger.info("could not save the run index of %s", root, exc_info=True)


def load_saved(roots: list[Path]) -> dict[str, IndexedRun]:
    """The saved entries whose files still have the sizes they had when saved."""
    out: dict[str, IndexedRun] = {}
    for root in roots:
        try:
            data = json.loads(_saved_path(root).read_text(encoding="utf-8"))
            if data.get("version") != SAVED_VERSION:
                continue
            for row in data["runs"]:
                run_dir = root / "runs" / row["dir"]
                sig = run_signature(run_dir)
                if _jsonable(sig) != row["signature"]:
                    continue  # changed or gone since: read again
                fields = {k: row["summary"].get(k) for k in ("id", "name", "status", "kind", "started_at", "ended_at",
                                                               "params", "metrics", "tags", "project", "parent")}
                summary = RunSummary(**fields, path=run_dir)
                stats = {k: MetricStat(*v) for k, v in row["stats"].items()}
                out[str(run_dir)] = IndexedRun(summary, row["hashes"], stats, ("done", *sig), row["offset"], sig[1])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            logger.info("ignoring the saved run index of %s", root, exc_info=True)
    return out


def _jsonable(sig: tuple[Any, ...]) -> list[Any]:
    """A signature as JSON reads it back (tuples become lists)."""
    return [list(x) if isinstance(x, tuple) else x for x in sig]


def count_done(runs: dict[str, IndexedRun]) -> int:
    return sum(1 for r in runs.values() if r.signature[:1] == ("done",))

