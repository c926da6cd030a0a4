"""Tools over monitoring, updating and housekeeping: check drift, trigger an update, gc.

They wrap engine modules of later issues (``blase.monitor``, ``blase.update``,
``blase.cache``); where this version lacks one, the tool says so as a tool error.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ._base import (
    ModelRef,
    ToolContext,
    ToolInput,
    ToolOutput,
    clip_value,
    confine_path,
    quote,
    tool,
)
from ._engine import call_with_supported, engine_attr, has_engine_attr
from ._pipeline import tracked_runs

__all__ = ["check_drift", "gc", "trigger_update"]


def _as_json(result: Any) -> dict[str, Any]:
    if hasattr(result, "to_json"):
        return dict(result.to_json())
    if hasattr(result, "model_dump"):
        return dict(result.model_dump(mode="json"))
    if isinstance(result, dict):
        return dict(result)
    return {"result": str(result)}


def _clip_fields(data: dict[str, Any], max_chars: int) -> tuple[dict[str, Any], list[str]]:
    notes = []
    out = {}
    for k, v in data.items():
        clipped = clip_value(v, max_chars)
        if clipped is not v and isinstance(clipped, str):
            notes.append(f"field {k!r} was long and is truncated")
        out[k] = clipped
    return out, notes


def _model(ctx: ToolContext, ref: str) -> Any:
    from blase.deploy import resolve_model

    return resolve_model(ctx.project, ref)


class CheckDriftInput(ToolInput):
    model: ModelRef = Field(description="Deployed model NAME or NAME@vN whose training data is the reference.")
    data: str = Field(description="New data inside the project, e.g. data/new.csv.")


class CheckDriftOutput(ToolOutput):
    model: str
    drifted: bool | None = Field(None, description="Whether the data drifted past the threshold.")
    recommend_retrain: bool | None = None
    reasons: list[str] = Field(default_factory=list, description="Why retraining is (or is not) recommended.")
    report: dict[str, Any] = Field(default_factory=dict, description="Drifted columns, shares, metrics vs the reference.")
    runs_started: list[str] = Field(default_factory=list)


_DRIFT_KEYS = ("version", "rows", "drift_share", "drift_threshold", "drifted_columns", "metrics",
               "reference_metrics", "primary_metric", "metric_drop", "fired", "run_id", "report")


@tool(
    risk="read",
    command=lambda a: f"blase monitor {quote(a.model)} {quote(a.data)}",
    available=lambda: has_engine_attr("Monitor"),
)
def check_drift(args: CheckDriftInput, ctx: ToolContext) -> CheckDriftOutput:
    """Compare new data with the deployed model's training data: per-column drift, performance
    where labels are present, and whether retraining is recommended. Changes nothing."""
    monitor_cls = engine_attr("Monitor", tool="check_drift")
    data = confine_path(ctx, args.data, what="data")
    with tracked_runs(ctx, "check_drift") as runs:
        monitor = call_with_supported(monitor_cls, args.model, project=ctx.project)
        result = monitor.check(str(data))
    data = _as_json(result)
    drifted = data.get("dataset_drift", data.get("drifted"))
    retrain = data.get("retrain", data.get("recommend_retrain"))
    reasons = [str(r)[:300] for r in data.get("reasons") or []][:10]
    wanted = {k: data[k] for k in _DRIFT_KEYS if k in data} or data
    report, notes = _clip_fields(wanted, ctx.max_chars // 2)
    notes += [str(n)[:300] for n in data.get("notes") or []][:5]
    return CheckDriftOutput(model=args.model, drifted=drifted, recommend_retrain=retrain, reasons=reasons,
                            report=report, runs_started=runs, notes=notes)


class TriggerUpdateInput(ToolInput):
    model: ModelRef = Field(description="Deployed model NAME or NAME@vN to update.")
    data: str = Field(description="New labelled data inside the project, e.g. data/new.csv.")
    mode: Literal["finetune", "retrain"] | None = Field(
        None, description="finetune: continue from the deployed weights; retrain: from scratch. Default: update.mode."
    )
    replay: float | None = Field(
        None, ge=0, le=1, description="Share of old training data mixed in to limit forgetting."
    )


class TriggerUpdateOutput(ToolOutput):
    model: str
    result: dict[str, Any] = Field(default_factory=dict, description="New version, metrics vs the current model.")
    runs_started: list[str] = Field(default_factory=list)


def _update_command(a: TriggerUpdateInput) -> str:
    cmd = f"blase update {quote(a.model)} {quote(a.data)}" + (f" --mode {a.mode}" if a.mode else "")
    return cmd + (f" --replay {a.replay}" if a.replay is not None else "")


@tool(risk="write", command=_update_command, available=lambda: has_engine_attr("Update"))
def trigger_update(args: TriggerUpdateInput, ctx: ToolContext) -> TriggerUpdateOutput:
    """Retrain a deployed model on new data (fine-tune or from scratch) as a new tracked run and
    a new version, evaluated against the current model. It never promotes the new version."""
    update_cls = engine_attr("Update", tool="trigger_update")
    data = confine_path(ctx, args.data, what="data")
    with tracked_runs(ctx, "trigger_update") as runs:
        update = call_with_supported(update_cls, args.model, project=ctx.project)
        # promotion is the destructive `promote` tool: never here
        result = call_with_supported(update.run, str(data), mode=args.mode, replay=args.replay,
                                     promote_if_better=False, promote=False)
    report, notes = _clip_fields(_as_json(result), ctx.max_chars // 2)
    return TriggerUpdateOutput(model=args.model, result=report, runs_started=runs, notes=notes)


class GcInput(ToolInput):
    keep_last: int | None = Field(None, ge=0, description="Keep the cached outputs of the last N runs.")
    max_size: str | None = Field(None, description="Shrink the cache to at most this size, e.g. 10GB.")
    dry_run: bool = Field(True, description="Only report what would be deleted (default).")


class GcOutput(ToolOutput):
    dry_run: bool
    result: dict[str, Any] = Field(default_factory=dict, description="What was (or would be) deleted and freed.")


def _gc_command(a: GcInput) -> str:
    cmd = "blase gc"
    if a.keep_last is not None:
        cmd += f" --keep-last {a.keep_last}"
    if a.max_size:
        cmd += f" --max-size {quote(a.max_size)}"
    return cmd + (" --dry-run" if a.dry_run else "")


@tool(
    risk="destructive",
    command=_gc_command,
    available=lambda: has_engine_attr("gc"),
    risk_of=lambda a: "read" if a.dry_run else "destructive",
)
def gc(args: GcInput, ctx: ToolContext) -> GcOutput:
    """Garbage-collect cached step outputs and stored artifacts no kept run needs (pinned runs
    are kept). Deleting is permanent; dry_run=true (the default) only reports."""
    engine_gc = engine_attr("gc", tool="gc")
    result = call_with_supported(
        engine_gc, ctx.project, keep_last=args.keep_last, max_size=args.max_size, dry_run=args.dry_run
    )
    report, notes = _clip_fields(_as_json(result), ctx.max_chars // 2)
    return GcOutput(dry_run=args.dry_run, result=report, notes=notes)
