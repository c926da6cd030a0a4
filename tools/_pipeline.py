"""Write tools that run the pipeline: one step, a slice of steps, or the evaluate step.

Every run they start is a Track run of its own (kind ``pipeline``), tagged with the agent
session that started it and recorded in the session's run as a ``linked_run`` event. They
never promote a model over the current one: the deploy step runs with ``deploy.promote=false``
(promotion is the destructive ``promote`` tool).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from pydantic import Field, field_validator

from ._base import (
    ToolContext,
    ToolError,
    ToolInput,
    ToolOutput,
    ToolRow,
    clip_value,
    confine_path,
    quote,
    tool,
)
from ._engine import engine_attr, has_engine_attr

__all__ = ["evaluate", "reproduce", "run_pipeline", "run_step", "tracked_runs"]

Step = Literal["extract", "transform", "prepare", "train", "evaluate", "deploy"]

_PATH_KEYS = ("data.source",)


def _run_ids(ctx: ToolContext) -> set[str]:
    try:
        return {e.name for e in os.scandir(ctx.project.runs_dir) if e.is_dir() and not e.name.startswith(".")}
    except OSError:
        return set()


@contextmanager
def tracked_runs(ctx: ToolContext, tool_name: str) -> Iterator[list[str]]:
    """Collect (and link to the session) the runs created inside the block, even on error."""
    before = _run_ids(ctx)
    found: list[str] = []
    try:
        yield found
    finally:
        new = sorted(_run_ids(ctx) - before)
        found[:] = new
        ctx.link_runs(new, tool_name)


def _tagger(ctx: ToolContext, tool_name: str) -> Callable[[str, str], None]:
    """An ``on_step`` callback that tags the pipeline's own run with the session id."""
    tagged: list[str] = []

    def on_step(step: str, state: str) -> None:
        from blase.track import active_run

        run = active_run()
        if run is None or not run.active or run.run_id in tagged or run.kind != "pipeline":
            return
        tagged.append(run.run_id)
        if ctx.session_id:
            run.set_tags({"agent_session": ctx.session_id, "agent_tool": tool_name})

    return on_step


def _safe_overrides(ctx: ToolContext, overrides: list[str]) -> list[str]:
    """Overrides with promotion forced off and paths confined to the project."""
    out = []
    for pair in overrides:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep:
            raise ToolError(f"override {pair!r} is not KEY=VALUE", hint="write e.g. train.epochs=5")
        if key in ("deploy.promote", "deploy") or key.startswith("agent"):
            raise ToolError(
                f"override {key!r} is not allowed here: promoting a model is the destructive "
                "`promote` tool, and agent settings belong to the person",
                hint="drop this override; deploy a new version, then propose `promote`",
            )
        if key in _PATH_KEYS and ("://" in value or value.strip().startswith(("postgres", "host="))):
            raise ToolError(f"override {key}={value!r} is not a file in the project",
                            hint="the assistant reads only files inside the project")
        target = value.strip().split(":")[0] if ".py:" in value else value.strip()
        if key in _PATH_KEYS or target.endswith(".py"):
            confine_path(ctx, target, what=f"override {key}")
        out.append(f"{key}={value}")
    return [*out, "deploy.promote=false"]


def _sets(overrides: list[str]) -> str:
    return "".join(f" --set {quote(o)}" for o in overrides)


class StepSummary(ToolRow):
    step: str
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    seconds: float = 0.0
    warnings: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)


class PipelineOutput(ToolOutput):
    run_id: str
    status: str
    steps: list[StepSummary]
    reused: dict[str, str] = Field(default_factory=dict, description="Step -> run whose outputs were reused.")
    runs_started: list[str] = Field(default_factory=list)


_DETAIL_KEYS = ("metrics", "baseline", "model", "version", "deployed", "reason", "path", "promoted", "task",
                "epochs", "best_epoch")


def _summarise(result: Any, runs: list[str], ctx: ToolContext) -> PipelineOutput:
    steps = []
    for name, s in result.steps.items():
        details = {k: clip_value(v, 600) for k, v in s.details.items() if k in _DETAIL_KEYS}
        steps.append(StepSummary(
            step=name, rows_in=s.rows_in, rows_out=s.rows_out, rows_rejected=s.rows_rejected,
            seconds=round(s.seconds, 3), warnings=[str(w)[:200] for w in s.warnings][:5], details=details,
        ))
    notes = []
    deploy = result.steps.get("deploy")
    if deploy is not None and deploy.details.get("deployed") is False:  # asked for a version, and none came
        notes.append(f"deploy made no new version of {deploy.details.get('model')}: {deploy.details.get('reason')}; "
                     f"`blase deploy {result.run_id}` packages this run's model anyway")
    return PipelineOutput(run_id=result.run_id, status=result.status, steps=steps,
                          reused=dict(result.reused), runs_started=runs, notes=notes)


def _run(ctx: ToolContext, tool_name: str, overrides: list[str], memory: str | None, **kw: Any) -> PipelineOutput:
    from blase.pipeline import Pipeline

    pipeline = Pipeline(ctx.project, overrides=_safe_overrides(ctx, overrides), memory=memory)
    before = _run_ids(ctx)
    if ctx.session_id and "tags" in inspect.signature(pipeline.run).parameters:
        kw["tags"] = {"agent_session": ctx.session_id, "agent_tool": tool_name}
    else:  # an engine without run(tags=): tag the run from inside, once it has started
        kw["on_step"] = _tagger(ctx, tool_name)
    with tracked_runs(ctx, tool_name) as runs:
        try:
            result = pipeline.run(**kw)
        except ToolError:
            raise
        except Exception as exc:
            from blase.errors import BlaseError

            if not isinstance(exc, BlaseError):
                raise
            failed = sorted(_run_ids(ctx) - before)
            where = f" (run {', '.join(failed)}; read it with read_run_log)" if failed else ""
            raise ToolError(f"{tool_name}: {exc.message}{where}", hint=exc.hint) from exc
    return _summarise(result, runs, ctx)


class RunStepInput(ToolInput):
    step: Step = Field(description="The step to run; earlier steps are reused from the latest run that finished them.")
    overrides: list[str] = Field(default_factory=list, description="Config overrides KEY=VALUE, e.g. train.epochs=5.")
    memory: str | None = Field(None, description="Memory budget for data steps, e.g. 2GB.")


@tool(
    risk="write",
    command=lambda a: f"blase run --from {a.step} --to {a.step}{_sets(a.overrides)} --set deploy.promote=false"
    + (f" --memory {quote(a.memory)}" if a.memory else ""),
)
def run_step(args: RunStepInput, ctx: ToolContext) -> PipelineOutput:
    """Run one pipeline step (extract, transform, prepare, train, evaluate or deploy) as a new
    tracked run, reusing the outputs of earlier steps. deploy adds a new model version but
    never replaces the current one."""
    return _run(ctx, "run_step", args.overrides, args.memory, from_step=args.step, to_step=args.step)


class RunPipelineInput(ToolInput):
    from_step: Step | None = Field(None, description="First step (earlier ones are reused). Default: extract.")
    to_step: Step | None = Field(None, description="Last step. Default: deploy.")
    overrides: list[str] = Field(default_factory=list, description="Config overrides KEY=VALUE, e.g. train.lr=0.01.")
    resume: str | None = Field(None, description="A failed or interrupted run to continue.")
    memory: str | None = Field(None, description="Memory budget for data steps, e.g. 2GB.")


def _pipeline_command(a: RunPipelineInput) -> str:
    cmd = "blase run"
    if a.from_step:
        cmd += f" --from {a.from_step}"
    if a.to_step:
        cmd += f" --to {a.to_step}"
    if a.resume:
        cmd += f" --resume {quote(a.resume)}"
    cmd += _sets(a.overrides) + " --set deploy.promote=false"
    return cmd + (f" --memory {quote(a.memory)}" if a.memory else "")


@tool(risk="write", command=_pipeline_command)
def run_pipeline(args: RunPipelineInput, ctx: ToolContext) -> PipelineOutput:
    """Run the pipeline (extract, transform, prepare, train, evaluate, deploy), whole or a
    slice, as one new tracked run, or resume a failed one. A deployed model is a new version;
    it does not replace the current one."""
    return _run(ctx, "run_pipeline", args.overrides, args.memory,
                from_step=args.from_step, to_step=args.to_step, resume=args.resume)


class EvaluateInput(ToolInput):
    run: str | None = Field(None, description="Evaluate the model of this run (default: the latest trained one).")

    @field_validator("run")
    @classmethod
    def _latest_is_the_default(cls, run: str | None) -> str | None:
        # "latest" is the newest trained run, as for deploy; resuming the newest run of any kind
        # (an assistant session) would find no trained model
        return None if run is not None and run.strip().lower() in ("latest", "last") else run


@tool(
    risk="write",
    command=lambda a: "blase run --from evaluate --to evaluate" + (f" --resume {quote(a.run)}" if a.run else ""),
)
def evaluate(args: EvaluateInput, ctx: ToolContext) -> PipelineOutput:
    """Evaluate a trained model on the test split as a new tracked run: metrics next to a
    trivial baseline, predictions and plots saved under outputs/."""
    return _run(ctx, "evaluate", [], None, from_step="evaluate", to_step="evaluate", resume=args.run)


class ReproduceInput(ToolInput):
    run: str = Field(description="The run to re-execute from its recorded config and code (id, prefix or 'latest').")
    verify: bool = Field(False, description="Compare every step's outputs and the weights with the original's.")


class ReproduceOutput(ToolOutput):
    original: str
    run_id: str = Field(description="The new run.")
    summary: str
    identical: bool | None = None
    divergence: dict[str, Any] | None = None
    runs_started: list[str] = Field(default_factory=list)


@tool(
    risk="write",
    command=lambda a: f"blase reproduce {quote(a.run)}" + (" --verify" if a.verify else ""),
    available=lambda: has_engine_attr("reproduce"),
)
def reproduce(args: ReproduceInput, ctx: ToolContext) -> ReproduceOutput:
    """Re-execute a run from its recorded config and code snapshot as a new linked run; with
    verify, say whether every step's output (and the weights) came out the same, or where it
    diverged and why."""
    engine_reproduce = engine_attr("reproduce", tool="reproduce")
    with tracked_runs(ctx, "reproduce") as runs:
        result = engine_reproduce(ctx.project, args.run, verify=args.verify)
    data = result.to_json()
    return ReproduceOutput(
        original=data["original"], run_id=data["run_id"], summary=str(data.get("summary", ""))[:500],
        identical=data.get("identical"),
        divergence={k: clip_value(v, 300) for k, v in (data.get("divergence") or {}).items()} or None,
        runs_started=runs,
    )
