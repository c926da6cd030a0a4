"""The parts of the web app's pages that are computed from loaded runs, as JSON-able dicts.

Pure functions over :class:`~blase.track.RunDetail` and :class:`~blase.lineage.RunLineage`
objects, so :class:`~blase.ui.Dashboard` stays a thin router: resource series, the lineage
graph, the assistant's decisions per step, the compare view of 2-10 runs, the monitor history
of a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blase.ui._events import RESOURCES_FILE, resource_samples

__all__ = [
    "MAX_COMPARE",
    "compare_runs",
    "decisions_by_step",
    "lineage_graph",
    "monitor_rows",
    "resource_series",
    "thin",
]

#: Runs one compare view shows at most.
MAX_COMPARE = 10
#: Points of one series sent to the page (evenly thinned beyond this).
MAX_POINTS = 500
#: Metric histories overlaid by default in a compare view.
DEFAULT_COMPARE_METRICS = 6


def thin(points: list[Any], most: int = MAX_POINTS) -> list[Any]:
    """At most ``most`` evenly spaced items of ``points``, always keeping the last one."""
    if len(points) <= most:
        return points
    stride = len(points) / most
    return [*(points[int(i * stride)] for i in range(most - 1)), points[-1]]


def resource_series(run_dir: Path | None) -> tuple[dict[str, list[list[float]]], float | None]:
    """CPU %, memory (RSS) and GPU memory samples of a run as ``[[seconds, value], ...]``, the
    seconds counted from the first sample, and that sample's time (``None`` without samples).

    Read up to the last complete line of ``resources.csv`` (a live writer may be mid-line);
    damaged lines are skipped (the run page's damage list names them).
    """
    if run_dir is None:
        return {}, None
    try:
        raw = (run_dir / RESOURCES_FILE).read_bytes()
    except OSError:
        return {}, None
    samples = resource_samples(raw[: raw.rfind(b"\n") + 1])
    if not samples:
        return {}, None
    start = samples[0]["time"]
    out: dict[str, list[list[float]]] = {"cpu_percent": [], "rss_bytes": [], "gpu_mem_bytes": []}
    for sample in samples:
        for name, series in out.items():
            if sample[name] is not None:
                series.append([round(sample["time"] - start, 3), float(sample[name])])
    return {k: thin(v) for k, v in out.items() if v}, start


def lineage_graph(lineage: Any) -> dict[str, Any]:
    """Nodes and edges from raw files and code, through the steps, to the deployed model.

    A step's input named after another step is an edge from that step (its output digest);
    any other input is a raw file. Columns (``col``) order the drawing left to right: files
    and code (0), steps in run order (1..n), the model (n+1), packaged after the last step.
    """
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[list[str]] = []
    steps = [s.step for s in lineage.steps]

    def node(nid: str, label: str, kind: str, col: int, detail: str = "") -> str:
        nodes.setdefault(nid, {"id": nid, "label": label, "kind": kind, "col": col, "detail": detail})
        return nid

    for i, step in enumerate(lineage.steps, 1):
        sid = node(f"step:{step.step}", step.step, "step", i,
                   f"key {step.key[:12]}" + (f" (cached from {step.from_run})" if step.cached else ""))
        for name, digest in step.inputs.items():
            source = f"step:{name}" if name in steps else node(f"data:{name}", name, "data", 0, str(digest)[:12])
            edges.append([source, sid])
        for name, digest in step.code.items():
            edges.append([node(f"code:{name}", name, "code", 0, str(digest)[:12]), sid])
    deployed = lineage.deployed or {}
    if steps and deployed:
        label = f"{deployed.get('model', 'model')} {deployed.get('version', '')}".strip()
        edges.append([f"step:{steps[-1]}", node("model", label, "model", len(steps) + 1, "deployed")])
    return {"nodes": list(nodes.values()), "edges": edges}


def decisions_by_step(session: Any, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """The assistant's ``agent_decision`` events about run ``run_id``, by the step they follow."""
    out: dict[str, list[dict[str, Any]]] = {}
    for event in getattr(session, "event_list", []):
        data = event.get("data") or {}
        if event.get("event") != "agent_decision" or data.get("run") != run_id:
            continue
        out.setdefault(str(data.get("step")), []).append({
            "tool": data.get("tool"), "summary": data.get("summary"), "decision": data.get("decision"),
            "by": data.get("by"), "reason": data.get("reason"), "result_run": data.get("result_run"),
            "command": data.get("command"),
        })
    return out


def compare_runs(runs: list[Any], names: dict[str, str], metrics: list[str] | None) -> dict[str, Any]:
    """What 2-10 indexed runs (:class:`~blase.track.IndexedRun`) look like side by side.

    ``params``: every param key whose value differs between the runs (each run's value);
    ``metrics``: the latest value of every metric any run has; ``history``: the thinned
    history of the metrics chosen (default: the first few that every run logged more than
    once), read in one pass, to overlay; ``axes``: the numeric params that differ, for
    parallel coordinates.
    """
    from blase.track import read_histories

    summaries = [r.summary for r in runs]
    keys = sorted({k for s in summaries for k in s.params})
    differ = {k: [s.params.get(k) for s in summaries] for k in keys
              if len({_key(s.params.get(k)) for s in summaries}) > 1}
    all_metrics = sorted({k for s in summaries for k in s.metrics})
    if not metrics:
        # a run whose min/max pass has not reached it yet has no stats: its latest values decide
        shared = [m for m in all_metrics
                  if all(r.stats[m].count > 1 if m in r.stats else m in r.summary.metrics for r in runs)]
        metrics = shared[:DEFAULT_COMPARE_METRICS]
    points = read_histories([s.path for s in summaries if s.path is not None], metrics)
    history = {m: [[[step if step is not None else i, value] for i, (step, value) in
                    enumerate(thin(points.get(s.path, {}).get(m, []), 200))] if s.path else [] for s in summaries]
               for m in metrics}
    axes = [k for k, values in differ.items()
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)]
    return {
        "runs": [{"id": s.id, "name": s.name, "status": s.status, "project_name": names.get(s.project, Path(s.project).name),
                  "started_at": s.started_at, "params": s.params, "metrics": s.metrics} for s in summaries],
        "params": differ,
        "metrics": {m: [s.metrics.get(m) for s in summaries] for m in all_metrics},
        "metric_names": all_metrics,
        "history": history,
        "axes": axes,
    }


def _key(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)


def monitor_rows(runs: list[Any], verdicts: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per finished monitor check of a model, oldest first: drift share, whether the
    dataset drifted, each column's drift score and whether it drifted (from the check's
    ``monitor`` event in ``verdicts``, by run id), and the check's current metrics."""
    rows = []
    for r in sorted(runs, key=lambda x: x.summary.started_at or ""):
        s = r.summary
        if s.status != "finished":
            continue
        metrics = s.metrics
        verdict = {c.get("column"): c for c in (verdicts.get(s.id) or {}).get("columns") or [] if isinstance(c, dict)}
        rows.append({
            "run_id": s.id, "started_at": s.started_at, "version": s.params.get("version"),
            "data": s.params.get("data"), "rows": metrics.get("rows"), "drift_share": metrics.get("drift_share"),
            "dataset_drift": bool(metrics.get("dataset_drift")), "retrain": bool(metrics.get("retrain")),
            "columns": {k.removeprefix("drift."): v for k, v in metrics.items() if k.startswith("drift.")},
            "drifted": sorted(c for c, v in verdict.items() if v.get("drifted")),
            "tests": {c: {"test": v.get("test"), "threshold": v.get("threshold")} for c, v in verdict.items()},
            "current": {k.removeprefix("current."): v for k, v in metrics.items() if k.startswith("current.")},
        })
    return rows
