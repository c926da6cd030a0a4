"""Reading one run folder, tolerating a live writer, a crash and damaged files.

Readers never write into a run folder and never block the writer. Every file is read up to
its last complete line (a live writer may be half-way through a line); a damaged line is
skipped and reported in ``damage`` as ``"<file> line <n>: <problem>"``. A run whose last
status is ``running`` but whose writer is gone is reported as ``interrupted``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase._formats import FormatError, check_format
from blase.track import _layout as L
from blase.track._models import RunDetail, RunSummary

logger = logging.getLogger(__name__)

#: metrics.csv files smaller than this are parsed in Python (faster than starting DuckDB).
DUCKDB_MIN_BYTES = 1 << 20
#: At most this many damaged lines are listed per file (then a count of the rest).
MAX_DAMAGE_LINES = 20
_METRIC_TYPES = {"time": "DOUBLE", "step": "BIGINT", "name": "VARCHAR", "value": "DOUBLE"}


@dataclass
class LogState:
    """What ``log.jsonl`` says about a run."""

    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    events: Counter[str] = field(default_factory=Counter)
    event_list: list[dict[str, Any]] = field(default_factory=list)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    hashes: dict[str, Any] = field(default_factory=dict)
    status: str | None = None
    status_t: float | None = None
    error: dict[str, Any] | None = None
    last_t: float | None = None
    damage: list[str] = field(default_factory=list)
    partial_tail: str | None = None


@dataclass
class MetricData:
    """What ``metrics.csv`` holds: latest values, counts, and optionally every point."""

    latest: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    damage: list[str] = field(default_factory=list)
    partial_tail: str | None = None


def _complete_lines(path: Path) -> tuple[bytes, bytes]:
    """The file's bytes up to its last newline, and the incomplete rest."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return b"", b""
    cut = data.rfind(b"\n") + 1
    return data[:cut], data[cut:]


def _tail_note(fname: str, body: bytes, tail: bytes) -> str | None:
    if not tail:
        return None
    line = body.count(b"\n") + 1
    text = tail[:80].decode("utf-8", errors="replace")
    return f"{fname} line {line}: truncated last line {text!r} (ignored)"


def _cap(damage: list[str], fname: str) -> list[str]:
    if len(damage) <= MAX_DAMAGE_LINES:
        return damage
    more = len(damage) - MAX_DAMAGE_LINES
    return [*damage[:MAX_DAMAGE_LINES], f"{fname}: {more} more damaged lines"]


# ---------------------------------------------------------------------- meta, summary, log


def read_meta(run_dir: Path, damage: list[str]) -> dict[str, Any]:
    try:
        meta = L.read_json(run_dir / L.META)
        if isinstance(meta, dict):
            try:
                check_format("run", meta.get("format"), str(run_dir / L.META))
            except FormatError as exc:  # a run of a newer Blase: listed, with what to do
                damage.append(f"{L.META}: {exc.message} ({exc.hint})")
            return meta
        damage.append(f"{L.META}: not a JSON object")
    except FileNotFoundError:
        damage.append(f"{L.META}: missing")
    except (OSError, ValueError) as exc:
        damage.append(f"{L.META}: unreadable ({exc})")
    return {}


def cached_summary(run_dir: Path) -> dict[str, Any] | None:
    """``summary.json`` when it still describes the logs (their sizes match), else ``None``."""
    try:
        summary = L.read_json(run_dir / L.SUMMARY)
        sizes = summary["sizes"]
        for fname in (L.LOG, L.METRICS):
            if os.stat(run_dir / fname).st_size != sizes[fname]:
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return summary if isinstance(summary, dict) else None


def read_log(run_dir: Path) -> LogState:
    """Parse ``log.jsonl``; damaged lines are skipped and reported."""
    state = LogState()
    body, tail = _complete_lines(run_dir / L.LOG)
    state.partial_tail = _tail_note(L.LOG, body, tail)
    damage: list[str] = []
    for lineno, raw in enumerate(body.split(b"\n")[:-1], 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
            kind = rec["kind"]
            t = rec.get("t")
            if isinstance(t, (int, float)):
                state.last_t = t if state.last_t is None else max(state.last_t, t)
            if kind == "metric":
                continue
            if kind == "param":
                state.params[str(rec["key"])] = rec.get("value")
            elif kind == "tag":
                state.tags[str(rec["key"])] = rec.get("value")
            elif kind == "event":
                state.events[str(rec["event"])] += 1
                state.event_list.append(rec)
            elif kind == "artifact":
                art = {k: rec.get(k) for k in ("name", "path", "hash", "size")}
                state.artifacts[str(rec["name"])] = art
            elif kind == "hash":
                state.hashes.update(rec["hashes"])
            elif kind == "status":
                state.status = str(rec["status"])
                state.status_t = t
                state.error = rec.get("error")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            text = raw[:80].decode("utf-8", errors="replace")
            damage.append(f"{L.LOG} line {lineno}: {type(exc).__name__}: {exc} in {text!r}")
    state.damage = _cap(damage, L.LOG)
    return state


# ---------------------------------------------------------------------- liveness


def writer_alive(meta: dict[str, Any], run_dir: Path) -> bool:
    """Whether the process recording this run is still alive."""
    pid = meta.get("pid")
    if meta.get("hostname") == L.hostname() and isinstance(pid, int):
        return L.process_alive(pid, meta.get("create_time"))
    try:
        age = time.time() - os.stat(run_dir / L.HEARTBEAT).st_mtime
    except OSError:
        return False
    return age < L.STALE_HEARTBEAT_S


def _last_activity(run_dir: Path, log: LogState) -> float | None:
    times = [log.last_t] if log.last_t is not None else []
    for fname in (L.HEARTBEAT, L.METRICS):
        try:
            times.append(os.stat(run_dir / fname).st_mtime)
        except OSError:
            pass
    return max(times) if times else None


def resolve_status(
    meta: dict[str, Any], run_dir: Path, log: LogState
) -> tuple[str, str | None, bool]:
    """``(status, ended_at, live)`` for a run, detecting dead writers."""
    if log.status in ("finished", "failed", "interrupted"):
        ended = L.iso_utc(log.status_t) if isinstance(log.status_t, (int, float)) else None
        return log.status, ended, False
    if meta and writer_alive(meta, run_dir):
        return "running", None, True
    last = _last_activity(run_dir, log)
    return "interrupted", (L.iso_utc(last) if last is not None else None), False


# ---------------------------------------------------------------------- metrics


def _parse_metrics_python(body: bytes, history: bool) -> MetricData:
    out = MetricData()
    latest, counts, hist = out.latest, out.counts, out.history
    damage: list[str] = []
    reader = csv.reader(io.StringIO(body.decode("utf-8", errors="replace"), newline=""))
    for row in reader:
        if not row:
            continue
        try:
            if len(row) != 4:
                raise ValueError(f"expected 4 fields (time,step,name,value), found {len(row)}")
            t = float(row[0])
            step = int(row[1]) if row[1] else None
            name = row[2]
            value = float(row[3])
        except ValueError as exc:
            text = ",".join(row)[:80]
            damage.append(f"{L.METRICS} line {reader.line_num}: {exc} in {text!r}")
            continue
        latest[name] = value
        counts[name] = counts.get(name, 0) + 1
        if history:
            hist.setdefault(name, []).append({"step": step, "value": value, "time": t})
    out.damage = damage
    return out


def _read_metrics_duckdb(path: Path, history: bool) -> MetricData:
    import duckdb

    out = MetricData()
    cols = ", ".join(f"'{k}': '{v}'" for k, v in _METRIC_TYPES.items())
    source = (
        f"read_csv(?, columns={{{cols}}}, header=false, auto_detect=false, delim=',', "
        "quote='\"', escape='\"', store_rejects=true, rejects_table='blase_rejects', "
        "rejects_scan='blase_reject_scans')"
    )
    con = duckdb.connect()
    try:
        if history:
            rows = con.execute(
                f"SELECT name, step, value, time FROM {source}", [str(path)]
            ).fetchall()
            hist = out.history
            for name, step, value, t in rows:
                pts = hist.get(name)
                if pts is None:
                    pts = hist[name] = []
                pts.append({"step": step, "value": value, "time": t})
            out.latest = {k: v[-1]["value"] for k, v in hist.items()}
            out.counts = {k: len(v) for k, v in hist.items()}
        else:
            rows = con.execute(
                "SELECT name, arg_max(value, rn), count(*) FROM "
                f"(SELECT *, row_number() OVER () AS rn FROM {source}) GROUP BY name ORDER BY min(rn)",
                [str(path)],
            ).fetchall()
            out.latest = {name: value for name, value, _ in rows}
            out.counts = {name: n for name, _, n in rows}
        rejects = con.execute(
            "SELECT line, error_type, csv_line, error_message FROM blase_rejects ORDER BY line"
        ).fetchall()
    finally:
        con.close()
    seen: set[int] = set()
    for line, err_type, csv_line, message in rejects:
        if line in seen:  # one line can fail on several columns
            continue
        seen.add(line)
        text = (csv_line or "")[:80]
        out.damage.append(f"{L.METRICS} line {line}: {err_type}: {message} in {text!r}")
    out.damage = _cap(out.damage, L.METRICS)
    return out


def read_metrics(run_dir: Path, *, history: bool) -> MetricData:
    """Read ``metrics.csv`` up to its last complete line.

    Small files are parsed in Python; large ones through DuckDB's ``read_csv`` with
    ``store_rejects`` (bad lines are skipped and listed). A live or truncated file is
    first copied up to its last newline, so the reader sees a consistent prefix.
    """
    path = run_dir / L.METRICS
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return MetricData()
    if size < DUCKDB_MIN_BYTES:
        body, tail = _complete_lines(path)
        out = _parse_metrics_python(body, history)
        out.partial_tail = _tail_note(L.METRICS, body, tail)
        return out
    with open(path, "rb") as f:
        f.seek(max(0, size - 65536))
        chunk = f.read(size - f.tell())
    last_nl = chunk.rfind(b"\n")
    if last_nl == len(chunk) - 1:
        # Ends on a complete line at `size`; a live writer may append past it, so copy
        # exactly `size` bytes unless nothing more can come (checked by the caller's status).
        body_len, tail = size, b""
    else:
        body_len = size - len(chunk) + last_nl + 1
        tail = chunk[last_nl + 1 :]
    with tempfile.TemporaryDirectory(prefix="blase-metrics-") as tmp:
        snap = Path(tmp) / L.METRICS
        newlines = 0
        with open(path, "rb") as src, open(snap, "wb") as dst:
            left = body_len
            while left > 0:
                block = src.read(min(left, 8 << 20))
                if not block:
                    break
                left -= len(block)
                newlines += block.count(b"\n") if tail else 0
                dst.write(block)
        out = _read_metrics_duckdb(snap, history)
    if tail:
        text = tail[:80].decode("utf-8", errors="replace")
        out.partial_tail = (
            f"{L.METRICS} line {newlines + 1}: truncated last line {text!r} (ignored)"
        )
    return out


def read_metrics_static(run_dir: Path, *, history: bool) -> MetricData:
    """:func:`read_metrics` for a run nobody writes any more: large files are read in place."""
    path = run_dir / L.METRICS
    try:
        size = os.stat(path).st_size
        if size >= DUCKDB_MIN_BYTES:
            with open(path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) == b"\n":
                    return _read_metrics_duckdb(path, history)
    except OSError:
        return MetricData()
    return read_metrics(run_dir, history=history)


# ---------------------------------------------------------------------- resources


def read_resources(run_dir: Path, *, live: bool) -> tuple[dict[str, Any], list[str]]:
    """Summary of ``resources.csv`` and its damage."""
    body, tail = _complete_lines(run_dir / L.RESOURCES)
    damage: list[str] = []
    n = 0
    cpu_sum = 0.0
    peak_rss = min_avail = min_disk = peak_gpu = None
    width = len(L.RESOURCE_COLUMNS)
    for lineno, raw in enumerate(body.decode("utf-8", errors="replace").split("\n")[:-1], 1):
        if not raw:
            continue
        parts = raw.split(",")
        try:
            if len(parts) != width:
                raise ValueError(f"expected {width} fields, found {len(parts)}")
            _t, cpu, rss, avail, disk = (float(p) for p in parts[:5])
            gpu = float(parts[5]) if parts[5] else None
        except ValueError as exc:
            damage.append(f"{L.RESOURCES} line {lineno}: {exc} in {raw[:80]!r}")
            continue
        n += 1
        cpu_sum += cpu
        peak_rss = rss if peak_rss is None else max(peak_rss, rss)
        min_avail = avail if min_avail is None else min(min_avail, avail)
        min_disk = disk if min_disk is None else min(min_disk, disk)
        if gpu is not None:
            peak_gpu = gpu if peak_gpu is None else max(peak_gpu, gpu)
    note = _tail_note(L.RESOURCES, body, tail)
    if note and not live:
        damage.append(note)
    as_int = lambda v: None if v is None else int(v)  # noqa: E731
    summary = {
        "samples": n,
        "peak_rss_bytes": as_int(peak_rss),
        "mean_cpu_percent": (cpu_sum / n) if n else None,
        "min_available_bytes": as_int(min_avail),
        "min_disk_free_bytes": as_int(min_disk),
        "peak_gpu_mem_bytes": as_int(peak_gpu),
    }
    return summary, _cap(damage, L.RESOURCES)


# ---------------------------------------------------------------------- whole runs


def _base(run_dir: Path, root: Path, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(meta.get("id") or run_dir.name),
        "name": str(meta.get("name") or run_dir.name),
        "kind": str(meta.get("kind") or "run"),
        "started_at": meta.get("started_at"),
        "project": str(meta.get("project") or root),
        "parent": meta.get("parent"),
        "path": run_dir,
    }


def summarize_run(run_dir: Path, root: Path) -> RunSummary:
    """The :class:`RunSummary` of one run folder (from ``summary.json`` when still valid)."""
    damage: list[str] = []
    meta = read_meta(run_dir, damage)
    base = _base(run_dir, root, meta)
    cached = cached_summary(run_dir)
    if cached is not None:
        return RunSummary(
            status=cached.get("status", "finished"),
            ended_at=cached.get("ended_at"),
            params=cached.get("params") or {},
            metrics=cached.get("metrics") or {},
            tags=cached.get("tags") or {},
            damage=damage,
            **base,
        )
    log = read_log(run_dir)
    status, ended_at, live = resolve_status(meta, run_dir, log)
    metrics = (
        read_metrics(run_dir, history=False)
        if live
        else read_metrics_static(run_dir, history=False)
    )
    damage += _damage(log, metrics, live)
    return RunSummary(
        status=status,
        ended_at=ended_at,
        params=log.params,
        metrics=metrics.latest,
        tags=log.tags,
        damage=damage,
        **base,
    )


def _damage(log: LogState, metrics: MetricData, live: bool) -> list[str]:
    damage = [*log.damage, *metrics.damage]
    if not live:
        damage += [d for d in (log.partial_tail, metrics.partial_tail) if d]
    return damage


def detail_run(run_dir: Path, root: Path, *, history: bool = True) -> RunDetail:
    """Everything about one run folder, read from its logs."""
    damage: list[str] = []
    meta = read_meta(run_dir, damage)
    base = _base(run_dir, root, meta)
    log = read_log(run_dir)
    status, ended_at, live = resolve_status(meta, run_dir, log)
    metrics = (
        read_metrics(run_dir, history=history)
        if live
        else read_metrics_static(run_dir, history=history)
    )
    damage += _damage(log, metrics, live)
    resources, res_damage = read_resources(run_dir, live=live)
    damage += res_damage
    return RunDetail(
        status=status,
        ended_at=ended_at,
        params=log.params,
        metrics=metrics.latest,
        tags=log.tags,
        damage=damage,
        metric_history=metrics.history,
        metric_counts=metrics.counts,
        artifacts=list(log.artifacts.values()),
        events=dict(log.events),
        event_list=log.event_list,
        hashes=log.hashes,
        resources=resources,
        error=log.error if status == "failed" or log.error else None,
        meta=meta,
        **base,
    )
