"""An incremental index of run summaries, for readers that ask again and again (``blase ui``).

:func:`~blase.track.list_runs` reads every run folder on every call: right for one command,
too slow for a dashboard over 10,000 runs. :class:`RunIndex` keeps one :class:`IndexedRun` per
run folder in memory and, on :meth:`RunIndex.refresh`, re-reads only the folders whose files
changed (their byte sizes, and ``summary.json`` appearing) plus the runs still running. A live
``metrics.csv`` is read from where the last refresh stopped, up to its last complete line, so
a run writing 100,000 points costs each refresh only the new lines. Like every reader it never
writes into a run folder and never takes a lock a writer waits on.

Besides the latest value of each metric the index keeps its minimum, maximum and number of
points, so the runs table can show and sort by ``min(val_loss)`` or ``best(test.accuracy)``.
Finished runs met for the first time are published as soon as their summaries are read; the
minimum and maximum follow from several parallel reads of their ``metrics.csv`` files, and
:meth:`RunIndex.progress` says how far both passes are (the runs page shows it). Queries take the quick filters of the runs page (project, status, kind, model, dates,
a run id or data/config/code hash prefix) in Python and ``where``/``sort`` in DuckDB, over a
table that holds only the columns the query names.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blase.track import _layout as L
from blase.track._indexed import (
    AGG_RE,
    BATCH_MIN_RUNS,
    IndexedRun,
    count_done,
    index_run,
    load_saved,
    read_new_metrics,
    run_signature,
    save_index,
    stats_in_parallel,
)
from blase.track._models import RunDetail, RunSummary
from blase.track._query import (
    _TOP_COLUMNS,
    _column_type,
    _roots,
    load_run,
    resolve_sort,
    rewrite_where,
    run_paths,
    select_rows,
)
from blase.track._reader import detail_run

__all__ = ["IndexProgress", "RunFilter", "RunIndex"]

#: Seconds between two publications of the index while the min/max pass runs (each makes the
#: runs read so far visible to queries: their min, max and best columns fill in as it goes).
PUBLISH_EVERY = 2.0

logger = logging.getLogger(__name__)


@dataclass
class IndexProgress:
    """How far a refresh is: run folders read (``listed`` of ``to_list``) and ended runs whose
    metric minimum and maximum are read (``stats_done`` of ``stats_total``)."""

    listed: int = 0
    to_list: int = 0
    stats_done: int = 0
    stats_total: int = 0
    listing: bool = False
    started: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"listed": self.listed, "to_list": self.to_list, "stats_done": self.stats_done,
                "stats_total": self.stats_total, "listing": self.listing,
                "stats_pending": self.stats_done < self.stats_total,
                "seconds": round(time.time() - self.started, 1) if self.started else 0.0}


@dataclass
class RunFilter:
    """The quick filters of the runs page (all optional; they combine with *and*).

    ``model`` matches the ``model`` param or tag or ``train.model``; ``since``/``until`` are
    ISO dates or times compared with ``started_at`` (``until`` includes its whole day);
    ``hash`` is a prefix of the run id or of any data, config, code or environment hash.
    """

    projects: list[str] | None = None
    status: str | None = None
    kind: str | None = None
    model: str | None = None
    since: str | None = None
    until: str | None = None
    hash: str | None = None

    def empty(self) -> bool:
        """Whether no filter is set (every run passes)."""
        return not any((self.projects is not None, self.status, self.kind, self.model, self.since, self.until, self.hash))

    def keep(self, run: IndexedRun) -> bool:
        s = self.summary_checks(run.summary)
        if not s:
            return False
        if self.hash:
            prefix = self.hash.strip().lower()
            return run.id.startswith(prefix) or any(h.lower().startswith(prefix) for h in run.hash_values())
        return True

    def summary_checks(self, s: RunSummary) -> bool:
        if self.projects is not None and s.project not in self.projects:
            return False
        if self.status and s.status != self.status:
            return False
        if self.kind and s.kind != self.kind:
            return False
        if self.model and self.model not in (s.params.get("model"), s.tags.get("model"), s.params.get("train.model")):
            return False
        started = s.started_at or ""
        if self.since and started < self.since:
            return False
        return not (self.until and started[: len(self.until)] > self.until)


class RunIndex:
    """Run summaries of one or several projects, refreshed incrementally; thread-safe.

    Parameters
    ----------
    projects:
        Project folders (or folders inside projects); default: the current project.
    """

    def __init__(self, projects: Sequence[Path | str] | None = None) -> None:
        self.roots = _roots(projects)
        self._runs: dict[str, IndexedRun] = {}  # by the run folder's path
        self._by_id: dict[str, IndexedRun] = {}
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._sorted: list[IndexedRun] = []
        self._keys: dict[str, list[str]] | None = None
        self._column_cache: dict[str, tuple[str, Any]] = {}
        self.refreshed_at = 0.0
        self.refresh_seconds = 0.0
        self._background = False
        self._saved_done = -1
        self._con: Any = None
        self._stop = threading.Event()
        self._listed = threading.Event()  # set when the first snapshot is published
        self._progress = IndexProgress()

    def keep_fresh(self, every: float = 1.0) -> None:
        """Refresh in a daemon thread until :meth:`stop`: now, then every ``every`` seconds, or
        three times as long as the last refresh took (so it never takes more than a quarter of
        a core). Queries then never wait for the folders to be read (they use the last
        snapshot), except the first ones, which wait for the first refresh."""
        def loop() -> None:
            wait, first = 0.0, True
            while not self._stop.wait(wait):
                try:
                    self.refresh()
                    if first:  # load DuckDB and its Arrow bridge (~1 s, once) before a page asks
                        self.query(sort="started_at")
                        first = False
                except Exception:  # the next round tries again
                    logger.warning("refreshing the run index failed", exc_info=True)
                    self._listed.set()  # a query waiting for the first snapshot refreshes itself (and sees why)
                wait = max(every, 3 * self.refresh_seconds)

        self._background = True
        threading.Thread(target=loop, name="blase-run-index", daemon=True).start()

    def _maybe_refresh(self, max_age: float) -> None:
        if self._background and not self.refreshed_at:
            # the background thread lists the runs: wait for its first snapshot (not its min/max pass)
            while not self._listed.wait(0.5) and not self._stop.is_set():
                pass
            if self.refreshed_at:
                return
        if not self.refreshed_at or (not self._background and time.time() - self.refreshed_at >= max_age):
            self.refresh()

    def progress(self) -> dict[str, Any]:
        """How far the current (or last) refresh is (:class:`IndexProgress` as a dict), and
        whether the runs are listed yet."""
        return {**self._progress.to_json(), "ready": bool(self.refreshed_at)}

    def stop(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------------ refreshing

    def add_project(self, project: Path | str) -> None:
        """Index one more project (its runs are read on the next refresh)."""
        for root in _roots([project]):
            if root not in self.roots:
                self.roots.append(root)

    def refresh(self) -> None:
        """Re-read the run folders that changed since the last refresh, drop deleted ones.

        A run whose writer ended and wrote its summary is read once (its logs are complete;
        removing its folder removes it); a running or unfinished one is checked by the sizes of
        its logs and re-read when they grow. The first refresh starts from the copy saved in
        each project's ``.blase/run-index.json`` (each saved run checked against its files'
        sizes), and the copy is saved again when more runs have ended. Runs met for the first
        time are published as soon as their summaries are read, and again with the minimum and
        maximum of their metrics once one pass over their ``metrics.csv`` files has read them.
        """
        with self._refresh_lock:
            started = time.time()
            runs = dict(self._runs)
            if not self.refreshed_at:
                runs.update(load_saved(self.roots))
                self._saved_done = count_done(runs)
            seen: set[str] = set()
            fresh: list[tuple[str, Path, tuple[Any, ...]]] = []
            progress = self._progress = IndexProgress(listing=True, started=started)
            for root in self.roots:
                for key in run_paths(root):
                    seen.add(key)
                    old = runs.get(key)
                    # an ended run's logs are complete: it is read once (a removed folder: scandir)
                    sig = old.signature if old is not None and old.signature[:1] == ("done",) else run_signature(Path(key))
                    if old is None or old.signature != sig or old.summary.status == "running":
                        fresh.append((key, root, sig))
            gone = set(runs) - seen
            for key in gone:
                del runs[key]
            progress.to_list = len(fresh)
            changed, batch = self._read(runs, fresh)
            progress.listing, progress.stats_total = False, len(batch)
            self._publish(runs, changed or bool(gone), started)
            if batch:  # minimum, maximum and count of the runs met for the first time: published as read
                self._metric_stats(runs, batch, started)
                self._publish(runs, True, started)
            done = count_done(runs)
            if done != self._saved_done:
                save_index(self.roots, runs)
                self._saved_done = done
            self.refresh_seconds = time.time() - started

    def _publish(self, runs: dict[str, IndexedRun], changed: bool, started: float) -> None:
        """Make ``runs`` the snapshot queries read (when it changed), as of ``started``."""
        with self._lock:
            if changed or not self.refreshed_at:
                self._runs = runs
                self._by_id = {r.id: r for r in runs.values()}
                self._sorted = sorted(runs.values(), key=lambda r: (r.summary.started_at or "", r.id), reverse=True)
                self._keys = None
                self._column_cache = {}
            self.refreshed_at = started
        self._listed.set()  # after refreshed_at: a query it wakes finds the snapshot

    def _read(self, runs: dict[str, IndexedRun], fresh: list[tuple[str, Path, tuple[Any, ...]]],
              ) -> tuple[bool, list[IndexedRun]]:
        """Index the ``fresh`` folders into ``runs``: whether any run's record changed, and the
        ended runs whose metric statistics are still to read."""
        batch: list[IndexedRun] = []
        changed = False
        for key, root, sig in fresh:
            old, run_dir = runs.get(key), Path(key)
            try:
                entry = index_run(run_dir, root, sig, old)
            except Exception as exc:  # a reader lists what it can, whatever one folder holds
                logger.debug("cannot index run %s", run_dir, exc_info=True)
                entry = IndexedRun(RunSummary(id=run_dir.name, name=run_dir.name, status="unknown", project=str(root),
                                              damage=[f"{run_dir.name}: unreadable ({exc})"], path=run_dir), signature=sig)
            runs[key] = entry
            self._progress.listed += 1
            changed = changed or old is None or (old.signature, old.summary.status, old.metrics_offset) != (
                entry.signature, entry.summary.status, entry.metrics_offset)
            if entry.summary.status != "running" and entry.metrics_offset == 0:
                batch.append(entry)
        return changed, batch

    def _metric_stats(self, runs: dict[str, IndexedRun], batch: list[IndexedRun], started: float) -> None:
        """Read the metric statistics of ended runs (many in parallel, a few one by one),
        publishing what is read every :data:`PUBLISH_EVERY` seconds."""
        progress = self._progress
        last = [time.time()]

        def done(n: int) -> None:
            progress.stats_done += n
            if time.time() - last[0] >= PUBLISH_EVERY:
                self._publish(runs, True, started)
                last[0] = time.time()

        if len(batch) >= BATCH_MIN_RUNS:
            stats_in_parallel(batch, done=done)
        for entry in batch:
            if entry.metrics_offset == 0:
                read_new_metrics(entry)
        progress.stats_done = progress.stats_total

    # ------------------------------------------------------------------ reading

    def runs(self, *, max_age: float = 0.0) -> list[IndexedRun]:
        """Every indexed run, newest first; refreshed first unless the last refresh started
        less than ``max_age`` seconds ago or :meth:`keep_fresh` refreshes in the background."""
        self._maybe_refresh(max_age)
        with self._lock:
            return list(self._sorted)

    def get(self, run_id: str) -> IndexedRun | None:
        """The indexed run with this exact id (as of the last refresh)."""
        with self._lock:
            return self._by_id.get(run_id)

    def _duckdb(self) -> Any:
        """One in-memory DuckDB connection for the queries (each runs in a cursor of it), locked
        against file access: the user's ``where`` reads the runs table only."""
        with self._lock:
            if self._con is None:
                import duckdb

                con = duckdb.connect()
                con.execute("SET enable_external_access = false")
                con.execute("SET lock_configuration = true")
                self._con = con
            return self._con

    def load(self, ref: str, *, history: bool = True) -> RunDetail:
        """:func:`~blase.track.load_run` over these projects, without a scan of every run folder
        when ``ref`` is the full id of an indexed run."""
        entry = self.get(ref.strip().lower())
        if entry is not None and entry.summary.path is not None and entry.summary.path.is_dir():
            return detail_run(entry.summary.path, entry.summary.path.parent.parent, history=history)
        return load_run(ref, self.roots, history=history)

    def all_keys(self) -> dict[str, list[str]]:
        """:meth:`keys` of every indexed run (cached until the index changes)."""
        with self._lock:
            keys, runs = self._keys, self._sorted
        if keys is None:
            keys = self.keys(runs)
            with self._lock:
                if self._sorted is runs:
                    self._keys = keys
        return keys

    def keys(self, runs: Iterable[IndexedRun]) -> dict[str, list[str]]:
        """The metric, param and tag names of ``runs``, sorted."""
        metrics: set[str] = set()
        params: set[str] = set()
        tags: set[str] = set()
        for r in runs:
            metrics.update(r.summary.metrics)
            metrics.update(r.stats)
            params.update(r.summary.params)
            tags.update(r.summary.tags)
        return {"metrics": sorted(metrics), "params": sorted(params), "tags": sorted(tags)}

    def query(self, where: str | None = None, sort: str | None = None, filters: RunFilter | None = None,
              *, max_age: float = 0.0) -> list[IndexedRun]:
        """The runs that pass ``filters`` and ``where``, sorted by ``sort`` (then newest first).

        ``where`` and ``sort`` read as in :func:`~blase.track.list_runs`; ``sort`` also takes
        ``min(NAME)``, ``max(NAME)``, ``best(NAME)`` (the minimum of a loss or error, else the
        maximum), and ``where`` may name those as quoted columns: ``"min(metrics.val_loss)" < 0.3``.

        Raises
        ------
        TrackError
            For an unknown key in ``where`` or ``sort`` (with close matches), or a bad condition.
        """
        self._maybe_refresh(max_age)
        with self._lock:
            runs, cache = self._sorted, self._column_cache
        keep = [i for i, r in enumerate(runs) if filters.keep(r)] if filters is not None and not filters.empty() else None
        if not ((where and where.strip()) or (sort and sort.strip())) or keep == []:
            return [runs[i] for i in keep] if keep is not None else list(runs)

        def column(name: str, kind: str) -> tuple[str, Any]:
            if name not in cache:  # built once per snapshot of the index, over every run
                cache[name] = _build_column(runs, name, kind)
            return cache[name]

        rows = _duck_query(self._duckdb(), runs, keep, _columns_for(self.all_keys()), column, where, sort)
        return [runs[i] for i in rows]


# ---------------------------------------------------------------------- where and sort


def _columns_for(keys: dict[str, list[str]]) -> dict[str, str]:
    """Every column a query may name -> its DuckDB type (built lazily: names only)."""
    columns = dict(_TOP_COLUMNS)
    for name in keys["metrics"]:
        columns[f"metrics.{name}"] = "DOUBLE"
        for agg in ("min", "max", "best"):
            columns[f"{agg}(metrics.{name})"] = "DOUBLE"
    for group in ("params", "tags"):
        for name in keys[group]:
            columns[f"{group}.{name}"] = "?"
    return columns


def _cell_of(run: IndexedRun, column: str) -> Any:
    m = AGG_RE.match(column)
    if m:
        return run.metric(m.group(2), m.group(1))
    group, _, key = column.partition(".")
    if group == "metrics":
        return run.metric(key)
    if group in ("params", "tags"):
        return getattr(run.summary, group).get(key)
    return run.summary.duration_s if column == "duration_s" else getattr(run.summary, column)


def normalize_sort(sort: str) -> str:
    """``-min(val_loss)`` -> ``-min(metrics.val_loss)``; other keys unchanged."""
    text = sort.strip()
    minus = "-" if text.startswith("-") else ""
    m = AGG_RE.match(text.lstrip("-").strip())
    return f"{minus}{m.group(1)}(metrics.{m.group(2)})" if m and m.group(1) != "latest" else text


def _duck_query(con: Any, runs: list[IndexedRun], keep: list[int] | None, columns: dict[str, str], column: Any,
                where: str | None, sort: str | None) -> list[int]:
    """Positions in ``runs`` that pass ``where`` (of those in ``keep``; ``None``: all), sorted by
    ``sort``; ``column(name, kind)`` gives a column over every run as ``(type, arrow array)``;
    ``con`` is a DuckDB connection without file access (a cursor of it runs the query)."""
    import pyarrow as pa

    sql_where = rewrite_where(where, columns) if where and where.strip() else None
    order_col = resolve_sort(normalize_sort(sort), columns) if sort and sort.strip() else None
    words = set(re.findall(r"[A-Za-z_]+", sql_where or ""))
    used = [c for c in columns if c in ("id", "started_at") or (c in _TOP_COLUMNS and c in words)
            or (sql_where and f'"{c}"' in sql_where) or (order_col and c == order_col[0])]
    data: dict[str, Any] = {"_row": pa.array(range(len(runs)), pa.int64())}
    for col in used:
        data[col] = column(col, columns[col])[1]
    table = pa.table(data)
    if keep is not None and len(keep) < len(runs):
        table = table.take(pa.array(keep, pa.int64()))
    cursor = con.cursor()
    try:
        cursor.register("runs", table)
        return select_rows(cursor, where, sql_where, order_col, columns)
    finally:
        cursor.close()


def _build_column(runs: list[IndexedRun], col: str, kind: str) -> tuple[str, Any]:
    values = [_cell_of(r, col) for r in runs]
    kind = kind if kind != "?" else _column_type(values)
    return kind, _arrow_column(values, kind)


def _arrow_column(values: list[Any], kind: str) -> Any:
    import pyarrow as pa

    if kind == "TIMESTAMP":
        seconds = [L.parse_iso(v) if isinstance(v, str) else None for v in values]
        return pa.array([None if t is None else int(t * 1_000_000) for t in seconds], pa.int64()).cast(pa.timestamp("us"))
    if kind == "DOUBLE":
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    if kind == "BOOLEAN":
        return pa.array(values, pa.bool_())
    return pa.array([None if v is None else v if isinstance(v, str) else json.dumps(v, default=str)
                     for v in values], pa.string())
