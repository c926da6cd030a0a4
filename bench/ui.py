"""Benchmark ``blase ui`` against MLflow's tracking server on the same runs, over real HTTP.

Generates runs (each with METRICS metrics of POINTS points and a few params) across 3 projects,
writes them as Track's files (``meta.json``, ``log.jsonl``, ``metrics.csv``, ``summary.json``,
what :class:`blase.track.Track` writes) and imports the same runs into MLflow's SQLite store,
then times the same five views on both servers: the runs table's first page, a filter, a sort
by a metric, a run page, and a compare of 10 runs. Also the time-to-interactive of Blase's runs
page in headless Chromium. Run from the repository root::

    python bench/ui.py                 # quick: 600 runs
    python bench/ui.py --runs 10000    # the full size (about 25 minutes on a loaded 2-core box,
                                       # 9 GB of disk: 1.5 GB of run folders, a 7.4 GB MLflow store)
    python bench/ui.py --runs 10000 --keep DIR --cap 120 --no-first-index   # keep both for a re-run

MLflow's runs are written straight into the tables of a store that ``mlflow`` itself created
(its ``log_batch`` over 10,000 runs x 5,000 points takes hours on a 2-core box); the bench then
reads one run back through MLflow's REST API and checks its params, latest metrics and history
length against Blase's copy, so both servers answer over the same data. Prints a table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OPTIMIZERS = ("adam", "sgd", "adamw")
HISTORY_METRICS = 6  # the metrics a compare view overlays (Blase's default)


# ---------------------------------------------------------------------- the runs


def make_runs(n: int, metrics: int, points: int, projects: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` runs as plain data: id, project index, params, start time, metric values [m][p]."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t0 = 1_780_000_000.0
    runs = []
    steps = np.arange(points)
    for i in range(n):
        decay = rng.uniform(0.5, 3.0, size=(metrics, 1))
        base = rng.uniform(0.0, 1.0, size=(metrics, 1))
        values = base + np.exp(-decay * steps / points) * 0.5 + rng.normal(0, 0.01, size=(metrics, points))
        runs.append({
            "id": uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i).hex[:12],
            "project": i % projects,
            "name": f"run-{i:05d}",
            "start": t0 + i * 60.0,
            "params": {"lr": float(round(10 ** rng.uniform(-4, -1), 6)), "batch_size": int(rng.choice([32, 64, 128])),
                       "optimizer": OPTIMIZERS[i % 3], "layers": int(rng.integers(1, 6))},
            "values": values,
        })
    return runs


def metric_names(m: int) -> list[str]:
    return [f"m{j:02d}" for j in range(m)]


def iso_utc(t: float) -> str:
    """Track's timestamp format (ISO-8601 UTC to the microsecond, a ``Z``)."""
    from datetime import datetime, timezone

    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_blase(base: Path, runs: list[dict[str, Any]], metrics: int, points: int, projects: int) -> list[Path]:
    """Each run as the folder Track writes: meta.json, log.jsonl, metrics.csv, summary.json."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    roots = []
    for p in range(projects):
        root = base / f"proj{p}"
        (root / "runs").mkdir(parents=True)
        (root / ".blase").mkdir()
        (root / "blase.yaml").write_text(f"project: proj{p}\n")
        roots.append(root)
    names = np.repeat(np.array(metric_names(metrics)), points)
    steps = np.tile(np.arange(points), metrics)
    for r in runs:
        run_dir = roots[r["project"]] / "runs" / r["id"]
        run_dir.mkdir()
        start, end = r["start"], r["start"] + 50.0
        times = start + np.tile(np.arange(points), metrics) * 0.1
        table = pa.table({"time": times, "step": steps, "name": names, "value": r["values"].reshape(-1)})
        pacsv.write_csv(table, run_dir / "metrics.csv", pacsv.WriteOptions(include_header=False, quoting_style="none"))
        meta = {"id": r["id"], "name": r["name"], "kind": "run", "started_at": iso_utc(start),
                "project": str(roots[r["project"]]), "hostname": "bench", "pid": 1}
        (run_dir / "meta.json").write_text(json.dumps(meta))
        hashes = {"data": (r["id"] * 6)[::-1][:64], "config": (r["id"] * 6)[:64]}
        log = [json.dumps({"t": start, "kind": "param", "key": k, "value": v}) for k, v in r["params"].items()]
        log += [json.dumps({"t": start, "kind": "hash", "hashes": hashes}),
                json.dumps({"t": end, "kind": "status", "status": "finished"})]
        (run_dir / "log.jsonl").write_text("\n".join(log) + "\n")
        (run_dir / "heartbeat").touch()
        latest = {name: float(r["values"][j, -1]) for j, name in enumerate(metric_names(metrics))}
        stats = {name: [float(r["values"][j].min()), float(r["values"][j].max()), points]
                 for j, name in enumerate(metric_names(metrics))}
        summary = {"status": "finished", "ended_at": iso_utc(end), "ended": end, "params": r["params"],
                   "metrics": latest, "metric_stats": stats, "tags": {}, "artifacts": [], "events": {},
                   "hashes": hashes, "error": None,
                   "sizes": {"log.jsonl": (run_dir / "log.jsonl").stat().st_size,
                             "metrics.csv": (run_dir / "metrics.csv").stat().st_size}}
        (run_dir / "summary.json").write_text(json.dumps(summary))
    return roots


def write_mlflow(db: Path, artifacts: Path, runs: list[dict[str, Any]], metrics: int, points: int,
                 projects: int) -> tuple[list[str], dict[str, float]]:
    """The same runs in MLflow's SQLite store: tables created by mlflow, rows inserted in bulk.

    Returns the experiment ids and the seconds of each phase. The store is built under a
    temporary name and renamed when complete, so ``--keep`` never reuses a half-written one.
    """
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    partial = db.with_name(db.name + ".partial")
    partial.unlink(missing_ok=True)
    store = SqlAlchemyStore(f"sqlite:///{partial}", str(artifacts))
    exp_ids = [store.create_experiment(f"proj{p}") for p in range(projects)]
    store.engine.dispose()
    del store
    con = sqlite3.connect(partial, isolation_level=None)
    # One transaction, no rollback journal, no fsync, 1 GB of page cache and a 2-thread sorter for
    # the index builds: a crash leaves a broken `.partial` file, which the next run deletes.
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-1000000", "temp_store=MEMORY", "threads=2"):
        con.execute(f"PRAGMA {pragma}")
    # mlflow's two secondary indexes on `metrics` are dropped and built once at the end (one sort
    # each instead of 50 M random B-tree inserts); its primary key cannot be dropped, so the rows
    # go in that key's order (key, timestamp, step, run_uuid, value), which appends to it.
    indexes = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'metrics' "
                          "AND sql IS NOT NULL").fetchall()
    phases = {}
    t = time.perf_counter()
    con.execute("BEGIN")
    for name, _sql in indexes:
        con.execute(f'DROP INDEX "{name}"')
    insert_run_rows(con, runs, artifacts, exp_ids, metrics, points)
    con.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, 0)",
                    metric_rows_in_key_order(runs, metrics, points))
    phases["rows"] = time.perf_counter() - t
    t = time.perf_counter()
    for _name, sql in indexes:
        con.execute(sql)
    con.execute("COMMIT")
    con.close()
    phases["indexes"] = time.perf_counter() - t
    partial.rename(db)
    return [str(e) for e in exp_ids], phases


def insert_run_rows(con: sqlite3.Connection, runs: list[dict[str, Any]], artifacts: Path, exp_ids: list[str],
                    metrics: int, points: int) -> None:
    """Each run's row, params, name tag and latest metrics (a few rows a run)."""
    names = metric_names(metrics)
    for r in runs:
        start_ms = int(r["start"] * 1000)
        con.execute(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
            "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id, deleted_time) "
            "VALUES (?, ?, 'LOCAL', '', '', 'bench', 'FINISHED', ?, ?, '', 'active', ?, ?, NULL)",
            (r["id"], r["name"], start_ms, start_ms + 50_000, f"{artifacts}/{r['id']}", exp_ids[r["project"]]))
        con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
                        [(k, str(v), r["id"]) for k, v in r["params"].items()])
        con.execute("INSERT INTO tags (key, value, run_uuid) VALUES ('mlflow.runName', ?, ?)", (r["name"], r["id"]))
        con.executemany(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, 0, ?)",
            [(names[j], float(r["values"][j, -1]), start_ms + (points - 1) * 100, points - 1, r["id"])
             for j in range(metrics)])


def metric_rows_in_key_order(runs: list[dict[str, Any]], metrics: int, points: int) -> Iterator[tuple[Any, ...]]:
    """Every metric row, (key, value, timestamp, run_uuid, step), in mlflow's primary-key order.

    Runs start 60 s apart and log a point every 100 ms, so for one key, runs in start order with
    their steps in order are in timestamp order (for up to 600 points a run; more still load,
    only slower).
    """
    ordered = sorted(runs, key=lambda r: r["start"])
    starts = [int(r["start"] * 1000) for r in ordered]
    steps = range(points)
    for j, key in enumerate(metric_names(metrics)):
        for r, start_ms in zip(ordered, starts, strict=True):
            yield from zip(repeat(key), r["values"][j].tolist(), range(start_ms, start_ms + points * 100, 100),
                           repeat(r["id"]), steps)


# ---------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, seconds: float = 180.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10):
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def call(url: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 300.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})},
                                 method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return json.loads(res.read())
    except (TimeoutError, urllib.error.URLError) as e:  # a URLError when it timed out while sending
        if isinstance(e, TimeoutError) or isinstance(e.reason, TimeoutError):
            raise TimeoutError(f"{url}: no answer in {timeout:g} s") from e
        raise


def timed(fn: Any, repeat: int, budget: float = 60.0) -> float:
    """Median seconds of ``repeat`` calls of ``fn`` after one warm-up call; fewer calls (at least
    one) when ``repeat`` of them would take more than ``budget`` seconds."""
    t = time.perf_counter()
    fn()
    warm = time.perf_counter() - t
    times = []
    for _ in range(max(1, min(repeat, int(budget / max(warm, 1e-6))))):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def cold_index(roots: list[Path]) -> tuple[float, float]:
    """A first index with no saved copy, refreshed in a thread as ``blase ui`` does: seconds
    until the runs are listed (latest values) and until every min/max is read."""
    from blase.track import RunIndex

    for root in roots:
        (root / ".blase" / "run-index.json").unlink(missing_ok=True)
    index = RunIndex(roots)
    t = time.perf_counter()
    worker = threading.Thread(target=index.refresh)
    worker.start()
    while not index.progress()["ready"]:
        time.sleep(0.01)
    listed = time.perf_counter() - t
    while index.progress()["stats_pending"]:  # known once listed (0 when every summary had them)
        time.sleep(0.01)
    ready = time.perf_counter() - t
    worker.join()
    return listed, ready


def summaries_without_stats(roots: list[Path]) -> dict[Path, Any]:
    """Rewrite every summary.json as a Blase before ``metric_stats`` wrote it; returns what was removed."""
    removed = {}
    for summary in (p for root in roots for p in (root / "runs").glob("*/summary.json")):
        data = json.loads(summary.read_text())
        removed[summary] = data.pop("metric_stats", None)
        summary.write_text(json.dumps(data))
    return removed


def restore_stats(removed: dict[Path, Any]) -> None:
    for summary, stats in removed.items():
        data = json.loads(summary.read_text())
        data["metric_stats"] = stats
        summary.write_text(json.dumps(data))


def duckdb_one_pass(roots: list[Path]) -> float:
    """Seconds of the min/max pass before the parallel reader: one DuckDB read_csv of every file."""
    import duckdb

    files = [str(p) for root in roots for p in (root / "runs").glob("*/metrics.csv")]
    cols = "{'time': 'DOUBLE', 'step': 'BIGINT', 'name': 'VARCHAR', 'value': 'DOUBLE'}"
    t = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SELECT filename, name, min(value), max(value), count(*) FROM read_csv(?, columns={cols}, "
                "header=false, auto_detect=false, delim=',', quote='\"', escape='\"', filename=true, "
                "ignore_errors=true) GROUP BY ALL", [files]).fetchall()
    con.close()
    return time.perf_counter() - t


def index_timings(roots: list[Path]) -> dict[str, float]:
    """The first index, of runs as Track writes them now and as older Blase wrote them."""
    out = {}
    out["listed"], out["ready"] = cold_index(roots)
    removed = summaries_without_stats(roots)
    try:
        out["old_listed"], out["old_ready"] = cold_index(roots)
        out["duckdb_pass"] = duckdb_one_pass(roots)
    finally:
        restore_stats(removed)
    return out


def start_blase(roots: list[Path]) -> tuple[Any, str, float]:
    """A ``blase ui`` server in this process; returns it, its URL and the seconds its index took."""
    from blase.ui import Dashboard, make_server

    dash = Dashboard(roots, read_only=True)
    t = time.perf_counter()
    dash.index.refresh()
    indexed = time.perf_counter() - t
    server, _state = make_server(dash, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}", indexed


def start_mlflow(db: Path, artifacts: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}",
           "--default-artifact-root", str(artifacts), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health")
    return proc, url


# ---------------------------------------------------------------------- the views


def blase_views(url: str, ids: list[str]) -> dict[str, Any]:
    where = urllib.parse.quote("metrics.m07 > 0.5 and params.optimizer = 'adam'")
    return {
        "runs table, first page (50)": lambda: call(f"{url}/api/runs?per_page=50"),
        "filter (metric and param)": lambda: call(f"{url}/api/runs?per_page=50&where={where}"),
        "sort by a metric": lambda: call(f"{url}/api/runs?per_page=50&sort=-metrics.m03"),
        "a run page (every metric's history)": lambda: call(f"{url}/api/runs/{ids[0]}"),
        "compare 10 runs": lambda: call(f"{url}/api/compare?runs={','.join(ids[:10])}"),
    }


def mlflow_views(url: str, exps: list[str], ids: list[str], metrics: int, cap: float) -> dict[str, Any]:
    """MLflow's requests for each view; a request unanswered after ``cap`` seconds raises TimeoutError."""
    api = url + "/api/2.0/mlflow"
    shown = metric_names(metrics)[:HISTORY_METRICS]

    def get(url: str) -> Any:
        return call(url, timeout=cap)

    def search(body: dict[str, Any]) -> Any:
        return call(f"{api}/runs/search", {"experiment_ids": exps, "max_results": 50, **body}, timeout=cap)

    def fetch_all(urls: list[str]) -> None:
        # what a browser does: 6 requests at a time to one host
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(get, urls))

    def run_page() -> None:  # the run, then every metric's history (Blase's run page has them all)
        fetch_all([f"{api}/runs/get?run_id={ids[0]}"])
        fetch_all([f"{api}/metrics/get-history?run_id={ids[0]}&metric_key={k}" for k in metric_names(metrics)])

    def compare() -> None:
        fetch_all([f"{api}/runs/get?run_id={r}" for r in ids[:10]]
                  + [f"{api}/metrics/get-history?run_id={r}&metric_key={m}" for r in ids[:10] for m in shown])

    return {
        "runs table, first page (50)": lambda: search({}),
        "filter (metric and param)": lambda: search({"filter": "metrics.m07 > 0.5 and params.optimizer = 'adam'"}),
        "sort by a metric": lambda: search({"order_by": ["metrics.m03 DESC"]}),
        "a run page (every metric's history)": run_page,
        "compare 10 runs": compare,
        "(MLflow runs/get alone)": lambda: get(f"{api}/runs/get?run_id={ids[0]}"),
    }


def check_same(blase_url: str, mlflow_url: str, run_id: str, points: int) -> None:
    """Both servers hold the same run: params, latest metrics, one metric's whole history."""
    b = call(f"{blase_url}/api/runs/{run_id}")
    m = call(f"{mlflow_url}/api/2.0/mlflow/runs/get?run_id={run_id}")["run"]["data"]
    assert {p["key"]: p["value"] for p in m["params"]} == {k: str(v) for k, v in b["params"].items()}
    latest = {x["key"]: x["value"] for x in m["metrics"]}
    assert all(abs(latest[k] - v) < 1e-9 for k, v in b["metrics"].items()), "latest metrics differ"
    hist = call(f"{mlflow_url}/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=m00")["metrics"]
    assert len(hist) == points == b["metric_counts"]["m00"], (len(hist), b["metric_counts"]["m00"])
    ours = b["metric_history"]["m00"]  # 100 points: not thinned
    theirs = sorted(hist, key=lambda h: int(h["step"]))
    assert [int(h["step"]) for h in theirs] == [h["step"] for h in ours], "m00's steps differ"
    assert all(abs(t["value"] - o["value"]) < 1e-9 for t, o in zip(theirs, ours, strict=True)), "m00's values differ"


def time_to_interactive(url: str) -> float | None:
    """Milliseconds from navigation to a filled runs table in headless Chromium (median of 3)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    exe = next((shutil.which(c) for c in ("chromium", "chromium-browser", "google-chrome") if shutil.which(c)), None)
    if exe is None:
        return None
    times = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        for _ in range(4):
            page.goto(url + "/runs")
            page.wait_for_selector("body[data-ready=runs] #runs tbody tr", timeout=60_000)
            times.append(page.evaluate("performance.now()"))
        browser.close()
    return statistics.median(times[1:])


# ---------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=600)
    ap.add_argument("--metrics", type=int, default=50)
    ap.add_argument("--points", type=int, default=100)
    ap.add_argument("--projects", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-mlflow", action="store_true", help="time Blase only")
    ap.add_argument("--cap", type=float, default=300.0,
                    help="seconds an MLflow request may take; a view past it is reported as '> CAP s'")
    ap.add_argument("--no-first-index", action="store_true",
                    help="skip timing the first index three ways (about 2 minutes at 10,000 runs)")
    ap.add_argument("--keep", type=Path, help="write the runs here and keep them; reuse them when this folder has them")
    args = ap.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="blase-bench-ui-"))
    try:
        run_bench(args, base)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


def run_bench(args: argparse.Namespace, base: Path) -> None:
    n, m, p = args.runs, args.metrics, args.points
    print(f"{n:,} runs x {m} metrics x {p} points ({n * m * p:,} points) across {args.projects} projects", file=sys.stderr)
    t = time.perf_counter()
    runs = make_runs(n, m, p, args.projects)
    if (base / "blase").is_dir():  # --keep: the same runs as last time (same sizes, same seed)
        roots = [base / "blase" / f"proj{i}" for i in range(args.projects)]
    else:
        roots = write_blase(base / "blase", runs, m, p, args.projects)
        print(f"  wrote Blase's run folders in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    ids = [r["id"] for r in runs[-10:]]
    first = None if args.no_first_index else index_timings(roots)
    for root in roots:  # a cold start: no saved copy of the index
        (root / ".blase" / "run-index.json").unlink(missing_ok=True)
    server, blase_url, indexed = start_blase(roots)
    t = time.perf_counter()
    from blase.track import RunIndex

    RunIndex(roots).refresh()  # what a later `blase ui` start does: the saved copy, each run checked
    restart = time.perf_counter() - t
    views = {"blase": blase_views(blase_url, ids)}
    mlflow = None if args.no_mlflow else MlflowSide(base, runs, args)
    try:
        if mlflow is not None:
            mlflow.start()
            check_same(blase_url, mlflow.url, ids[0], p)
        results: dict[str, dict[str, float]] = {}
        for what in views["blase"] | (mlflow.views(ids) if mlflow else {}):
            # both servers up, each view timed on one then the other: the same load on the box
            results[what] = {}
            if what in views["blase"]:
                results[what]["blase"] = timed(views["blase"][what], args.repeat)
            if mlflow is not None:
                results[what]["mlflow"] = mlflow.timed(what, ids, args.repeat)
        tti = time_to_interactive(blase_url)
    finally:
        if mlflow is not None:
            mlflow.stop()
        server.shutdown()
    print_table(args, results, (indexed, restart), tti, mlflow.note if mlflow else "not measured (--no-mlflow)", first)


class MlflowSide:
    """The same runs in MLflow's store and `mlflow server` over them; restarted after a capped view."""

    def __init__(self, base: Path, runs: list[dict[str, Any]], args: argparse.Namespace) -> None:
        self.db, self.artifacts, self.args = base / "mlflow.db", base / "mlartifacts", args
        self.proc: subprocess.Popen[bytes] | None = None
        t = time.perf_counter()
        if self.db.exists():  # --keep: imported by an earlier run (a half-written one is never renamed)
            self.exps = [str(i + 1) for i in range(args.projects)]
            self.note = "store imported by an earlier run (--keep)"
        else:
            self.exps, phases = write_mlflow(self.db, self.artifacts, runs, args.metrics, args.points, args.projects)
            rows = len(runs) * args.metrics * args.points
            self.note = (f"imported in {time.perf_counter() - t:.0f} s ({rows:,} metric rows in {phases['rows']:.0f} s, "
                         f"mlflow's two metric indexes built in {phases['indexes']:.0f} s; bulk SQL into the tables "
                         f"`mlflow` created, {self.db.stat().st_size / 1e9:.1f} GB)")
            print(f"  MLflow: {self.note}", file=sys.stderr)

    def start(self) -> None:
        self.proc, self.url = start_mlflow(self.db, self.artifacts)

    def stop(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:  # a loaded box: uvicorn's graceful stop can take longer
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
            self.proc = None

    def views(self, ids: list[str]) -> dict[str, Any]:
        return mlflow_views(self.url, self.exps, ids, self.args.metrics, self.args.cap)

    def timed(self, what: str, ids: list[str], repeat: int) -> float:
        """Seconds of one view, or infinity when a request of it went past ``--cap`` seconds."""
        try:
            return timed(self.views(ids)[what], repeat)
        except TimeoutError as e:
            print(f"  MLflow, {what}: {e}; restarting the server", file=sys.stderr)
            self.stop()  # it would go on with the abandoned query and slow the next views
            self.start()
            return math.inf


def print_table(args: argparse.Namespace, results: dict[str, dict[str, float]], indexed: tuple[float, float],
                tti: float | None, mlflow_note: str, first: dict[str, float] | None) -> None:
    import platform

    import duckdb

    try:
        import mlflow

        mlv = mlflow.__version__
    except ImportError:
        mlv = "-"
    print(f"\n`blase ui` vs `mlflow server` ({mlv}, SQLite store), {args.runs:,} runs x {args.metrics} metrics x "
          f"{args.points} points, {args.projects} projects; {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"DuckDB {duckdb.__version__}; median of {args.repeat} requests after a warm-up\n")
    print("| view | Blase | MLflow | Blase / MLflow |")
    print("| --- | ---: | ---: | ---: |")
    for what, r in results.items():
        bl, ml = r.get("blase"), r.get("mlflow")
        print(f"| {what} | {millis(bl)} | {millis(ml, args.cap)} | {ratio(bl, ml, args.cap)} |")
    print(f"| Blase: index of all runs at the first server start (cold) | {indexed[0]:.1f} s | | |")
    print(f"| Blase: index at a later start (its saved copy) | {indexed[1]:.1f} s | | |")
    print(f"| Blase: runs page time-to-interactive, headless Chromium | {f'{tti:.0f} ms' if tti else 'n/a'} | | |")
    print(f"\nMLflow: {mlflow_note}")
    if first is None:
        return
    print(f"\nThe first index of {args.runs:,} runs (no saved copy; listed = runs shown with latest values, "
          "ready = every min/max read)\n")
    print("| runs written by | listed | min/max ready | min/max pass |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| Track now (summary.json has each metric's min/max) | {first['listed']:.1f} s | {first['ready']:.1f} s | "
          "none |")
    old_pass = first["old_ready"] - first["old_listed"]
    print(f"| an older Blase (metrics.csv read in parallel, pyarrow) | {first['old_listed']:.1f} s | "
          f"{first['old_ready']:.1f} s | {old_pass:.1f} s |")
    print(f"| the same files, one DuckDB read_csv (the pass before) | | | {first['duckdb_pass']:.1f} s |")


def millis(seconds: float | None, cap: float = math.inf) -> str:
    if seconds is None:
        return "-"
    return f"> {cap:g} s" if math.isinf(seconds) else f"{seconds * 1000:,.0f} ms"


def ratio(blase: float | None, mlflow: float | None, cap: float) -> str:
    """Blase's time over MLflow's; an upper bound when MLflow's view went past the cap."""
    if blase is None or not mlflow:
        return "-"
    r, bound = blase / min(mlflow, cap), "< " if math.isinf(mlflow) else ""
    return f"{bound}{r:.3f}x" if r < 0.01 else f"{bound}{r:.2f}x"


if __name__ == "__main__":
    main()
