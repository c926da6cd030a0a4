"""Read tools over Track: list, inspect, read the log of, compare and diff runs."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ._base import (
    ToolContext,
    ToolInput,
    ToolOutput,
    ToolRow,
    clip_list,
    clip_text,
    clip_value,
    quote,
    tool,
)
from ._engine import engine_attr, has_engine_attr

__all__ = ["compare_runs", "diff_runs", "inspect_run", "list_runs", "read_run_log"]

_MAX_KEYS = 25


def _rank(key: str) -> tuple[int, str]:
    """Headline metrics first, baselines and per-batch bookkeeping last."""
    low = key.lower()
    if low.startswith(("baseline", "batch_", "data_wait", "deploy.", "extract.", "transform.", "prepare.")):
        return (2, key)
    if low.startswith(("test_", "val_", "test.", "val.")) or low in ("accuracy", "f1_macro", "rmse", "r2", "loss"):
        return (0, key)
    return (1, key)


def _clip_dict(data: dict[str, Any], limit: int, what: str, notes: list[str]) -> dict[str, Any]:
    keys = sorted(data, key=_rank)
    clipped = clip_list(keys, limit, what=what)
    if clipped.note:
        notes.append(clipped.note)
    return {k: data[k] for k in clipped.items}


# ---------------------------------------------------------------------- list_runs


class ListRunsInput(ToolInput):
    where: str | None = Field(
        None,
        description="SQL condition over run columns, e.g. \"metrics.test_accuracy > 0.9 and "
        "status = 'finished'\". Columns: id, name, status, kind, started_at, duration_s, "
        "parent, params.<k>, metrics.<k>, tags.<k>.",
    )
    sort: str | None = Field(None, description="Metric or column; prefix '-' for descending, e.g. '-test_accuracy'.")
    status: str | None = Field(None, description="Only runs with this status: running, finished, failed, interrupted.")
    kind: str | None = Field(None, description="Only runs of this kind: pipeline, deploy, agent-session, ...")
    limit: int = Field(10, ge=1, le=200, description="At most this many runs.")


class RunRow(ToolRow):
    id: str
    name: str
    status: str
    kind: str
    started_at: str | None = None
    duration_s: float | None = None
    parent: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)


class ListRunsOutput(ToolOutput):
    runs: list[RunRow]
    total: int = Field(description="Runs matching before the limit.")


def _row(summary: Any, notes: list[str]) -> RunRow:
    data = summary.to_json()
    metrics = _clip_dict(data["metrics"], 8, f"metrics of run {data['id']}", notes)
    return RunRow(
        id=data["id"], name=clip_text(data["name"], 80), status=data["status"], kind=data["kind"],
        started_at=data["started_at"], duration_s=data["duration_s"], parent=data["parent"],
        metrics=metrics,
    )


def _list_runs_command(a: ListRunsInput) -> str:
    parts = ["blase runs"]
    if a.where:
        parts.append(f"--where {quote(a.where)}")
    if a.sort:
        parts.append(f"--sort {quote(a.sort)}")
    if a.status:
        parts.append(f"--status {quote(a.status)}")
    parts.append(f"--limit {a.limit}")
    return " ".join(parts)


@tool(risk="read", command=_list_runs_command)
def list_runs(args: ListRunsInput, ctx: ToolContext) -> ListRunsOutput:
    """List runs of the project, newest first (or by `sort`), with their latest metrics.
    Use it to find run ids before inspecting, comparing or deploying a run."""
    from blase.track import list_runs as engine_list_runs

    found = engine_list_runs([ctx.project.root], where=args.where, sort=args.sort, status=args.status)
    if args.kind:
        found = [r for r in found if r.kind == args.kind]
    notes: list[str] = []
    limit = min(args.limit, ctx.max_rows)
    clipped = clip_list(found, limit, what="runs")
    if clipped.note:
        notes.append(clipped.note + "; narrow with where/status or raise limit")
    return ListRunsOutput(runs=[_row(r, notes) for r in clipped.items], total=clipped.total, notes=notes)


# ---------------------------------------------------------------------- inspect_run


class RunRef(ToolInput):
    run: str = Field(description="Run id, a unique prefix of it, its name, or 'latest'.")


class InspectRunOutput(ToolOutput):
    id: str
    name: str
    status: str
    kind: str
    started_at: str | None = None
    ended_at: str | None = None
    duration_s: float | None = None
    parent: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, Any] = Field(default_factory=dict)
    artifacts: list[dict[str, Any]] = Field(default_factory=list)
    events: dict[str, int] = Field(default_factory=dict, description="Number of events per kind.")
    hashes: dict[str, Any] = Field(default_factory=dict)
    resources: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    damage: list[str] = Field(default_factory=list)


@tool(risk="read", command=lambda a: f"blase inspect {quote(a.run)}")
def inspect_run(args: RunRef, ctx: ToolContext) -> InspectRunOutput:
    """Show one run: status, params, latest metrics, tags, artifacts, event counts, content
    hashes, resource peaks and the error of a failed run. Read its events with read_run_log."""
    from blase.track import load_run

    d = load_run(args.run, [ctx.project.root], history=False).to_json()
    notes: list[str] = []
    artifacts = clip_list(d["artifacts"], ctx.max_rows, what="artifacts")
    if artifacts.note:
        notes.append(artifacts.note)
    error = None
    if d.get("error"):
        err = d["error"]
        error = clip_text(f"{err.get('type')}: {err.get('message')}", ctx.max_chars)
    return InspectRunOutput(
        id=d["id"], name=d["name"], status=d["status"], kind=d["kind"],
        started_at=d["started_at"], ended_at=d["ended_at"], duration_s=d["duration_s"],
        parent=d["parent"],
        params={k: clip_value(v, 200) for k, v in _clip_dict(d["params"], _MAX_KEYS, "params", notes).items()},
        metrics=_clip_dict(d["metrics"], _MAX_KEYS, "metrics", notes),
        tags={k: clip_value(v, 200) for k, v in _clip_dict(d["tags"], _MAX_KEYS, "tags", notes).items()},
        artifacts=[{k: a.get(k) for k in ("name", "size")} for a in artifacts.items],
        events=d["events"], hashes={k: clip_value(v, 200) for k, v in d["hashes"].items()},
        resources=d["resources"], error=error, damage=d["damage"][:5], notes=notes,
    )


# ---------------------------------------------------------------------- read_run_log


class ReadRunLogInput(ToolInput):
    run: str = Field(description="Run id, a unique prefix of it, its name, or 'latest'.")
    event: str | None = Field(None, description="Only events of this kind, e.g. step, step_failed, tool_result.")
    contains: str | None = Field(None, description="Only events whose text contains this (case-insensitive).")
    tail: int = Field(20, ge=1, le=200, description="The last N matching events.")


class LogEvent(ToolRow):
    time: float | None = None
    event: str
    data: Any = None


class ReadRunLogOutput(ToolOutput):
    run: str
    events: list[LogEvent]
    matched: int = Field(description="Events matching the filters (before the tail).")
    total: int = Field(description="Events in the run.")


@tool(risk="read", command=lambda a: f"blase inspect {quote(a.run)} --json")
def read_run_log(args: ReadRunLogInput, ctx: ToolContext) -> ReadRunLogOutput:
    """Read the events of a run (step starts and results, failures, agent actions), the last
    `tail` of them, filtered by event kind and/or a text fragment."""
    import json

    from blase.track import load_run

    d = load_run(args.run, [ctx.project.root], history=False)
    events = list(d.event_list)
    if args.event:
        events = [e for e in events if e.get("event") == args.event]
    if args.contains:
        needle = args.contains.lower()
        events = [e for e in events if needle in json.dumps(e, default=str).lower()]
    clipped = clip_list(events, min(args.tail, ctx.max_rows * 2), what="matching events", keep="tail")
    per_event = max(200, ctx.max_chars // max(1, len(clipped.items)))
    out = [
        LogEvent(
            time=e.get("t"),
            event=str(e.get("event")),
            data=clip_value(e.get("data", {k: v for k, v in e.items() if k not in ("t", "kind", "event")}), per_event),
        )
        for e in clipped.items
    ]
    notes = [clipped.note] if clipped.note else []
    return ReadRunLogOutput(run=d.id, events=out, matched=clipped.total, total=len(d.event_list), notes=notes)


# ---------------------------------------------------------------------- compare_runs


class CompareRunsInput(ToolInput):
    runs: list[str] = Field(min_length=2, max_length=10, description="Two to ten run ids or prefixes.")
    keys: list[str] | None = Field(
        None, description="Metric or param names to show (default: every metric and the params that differ)."
    )


class CompareRunsOutput(ToolOutput):
    runs: list[str]
    metrics: dict[str, list[Any]] = Field(description="Metric name -> value per run (same order as runs).")
    params: dict[str, list[Any]] = Field(description="Param name -> value per run, only where they differ.")
    same_params: int = Field(description="Params equal in every run (not shown).")


@tool(risk="read", command=lambda a: "blase runs --where " + quote(" or ".join(f"id like '{r}%'" for r in a.runs)))
def compare_runs(args: CompareRunsInput, ctx: ToolContext) -> CompareRunsOutput:
    """Put the metrics and params of two to ten runs side by side; params equal in every run
    are counted, not shown. Use it to explain why one run scored better than another."""
    from blase.track import load_run

    details = [load_run(r, [ctx.project.root], history=False) for r in args.runs]
    metric_names = sorted({k for d in details for k in d.metrics})
    param_names = sorted({k for d in details for k in d.params})
    if args.keys:
        wanted = set(args.keys) | {k.split(".", 1)[-1] for k in args.keys}
        metric_names = [k for k in metric_names if k in wanted or f"metrics.{k}" in wanted]
        param_names = [k for k in param_names if k in wanted or f"params.{k}" in wanted]
    notes: list[str] = []
    metrics = {k: [d.to_json()["metrics"].get(k) for d in details] for k in metric_names}
    params_all = {k: [clip_value(d.params.get(k), 120) for d in details] for k in param_names}
    differing = {k: v for k, v in params_all.items() if len({repr(x) for x in v}) > 1}
    return CompareRunsOutput(
        runs=[d.id for d in details],
        metrics=_clip_dict(metrics, ctx.max_rows * 2, "metrics", notes),
        params=_clip_dict(differing if not args.keys else params_all, ctx.max_rows * 2, "differing params", notes),
        same_params=len(params_all) - len(differing),
        notes=notes,
    )


# ---------------------------------------------------------------------- diff_runs


class DiffRunsInput(ToolInput):
    a: str = Field(description="The first run (id, prefix, name or 'latest').")
    b: str = Field(description="The second run.")


class DiffRunsOutput(ToolOutput):
    a: str
    b: str
    changed: dict[str, Any] = Field(
        description="What differs between the runs: hashes (data, config, code, environment), params, metrics."
    )
    same: list[str] = Field(default_factory=list, description="Steps (or hashes) equal in both runs.")
    source: str = Field(description="'engine' (blase's diff) or 'track' (hashes and params of the two records).")


def _fallback_diff(project: Any, a: str, b: str) -> tuple[str, str, dict[str, Any], list[str]]:
    from blase.track import load_run

    ra, rb = load_run(a, [project.root], history=False), load_run(b, [project.root], history=False)
    changed: dict[str, Any] = {}
    same: list[str] = []
    for group in ("hashes", "params"):
        da, db = getattr(ra, group), getattr(rb, group)
        diff = {
            k: {"a": clip_value(da.get(k), 120), "b": clip_value(db.get(k), 120)}
            for k in sorted(set(da) | set(db))
            if da.get(k) != db.get(k)
        }
        if diff:
            changed[group] = diff
        if group == "hashes":
            same = sorted(k for k in set(da) & set(db) if da[k] == db[k])
    ma, mb = ra.to_json()["metrics"], rb.to_json()["metrics"]
    deltas = {k: {"a": ma.get(k), "b": mb.get(k)} for k in sorted(set(ma) | set(mb)) if ma.get(k) != mb.get(k)}
    if deltas:
        changed["metrics"] = deltas
    return ra.id, rb.id, changed, same


@tool(risk="read", command=lambda a: f"blase diff {quote(a.a)} {quote(a.b)}")
def diff_runs(args: DiffRunsInput, ctx: ToolContext) -> DiffRunsOutput:
    """Say what changed between two runs: data, config, code and environment hashes, params
    and metrics. Use it to find why a result changed or why a step was not cached."""
    notes: list[str] = []
    if has_engine_attr("diff_runs"):
        fn = engine_attr("diff_runs", tool="diff_runs")
        data = fn(ctx.project, args.a, args.b).to_json()
        changed = {}
        for section in ("params", "run", "code", "config_file", "data", "environment", "predictions"):
            if data.get(section):
                changed[section] = data[section]
        outputs = data.get("outputs") or {}
        if any(v is False for v in outputs.values()):
            changed["step_outputs_differ"] = sorted(k for k, v in outputs.items() if v is False)
        metrics = {k: v for k, v in (data.get("metrics") or {}).items()
                   if not isinstance(v, dict) or v.get("delta") not in (0, 0.0)}
        if metrics:
            changed["metrics"] = _clip_dict(metrics, ctx.max_rows * 2, "changed metrics", notes)
        for key, value in list(changed.items()):
            clipped = clip_value(value, ctx.max_chars)
            if isinstance(clipped, str) and not isinstance(value, str):
                notes.append(f"{key}: long, truncated")
            changed[key] = clipped
        same = sorted(k for k, v in outputs.items() if v is True)
        notes += [str(n)[:300] for n in data.get("notes") or []][:10]
        return DiffRunsOutput(a=data["a"], b=data["b"], changed=changed, same=same, source="engine", notes=notes)
    a, b, changed, same = _fallback_diff(ctx.project, args.a, args.b)
    for group, values in list(changed.items()):
        changed[group] = _clip_dict(values, ctx.max_rows * 2, f"changed {group}", notes)
    return DiffRunsOutput(a=a, b=b, changed=changed, same=same, source="track", notes=notes)
