"""Tools over deployed models: list, deploy a new version, predict, promote, roll back."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ._base import (
    ModelName,
    ModelRef,
    ToolContext,
    ToolError,
    ToolInput,
    ToolOutput,
    ToolRow,
    confine_path,
    quote,
    tool,
)
from ._pipeline import tracked_runs

__all__ = ["deploy", "list_models", "predict", "promote", "rollback"]


class ListModelsInput(ToolInput):
    pass


class ModelRow(ToolRow):
    name: str
    current: str | None = None
    versions: list[str]


class ListModelsOutput(ToolOutput):
    models: list[ModelRow]


@tool(risk="read", command=lambda a: "blase models")
def list_models(args: ListModelsInput, ctx: ToolContext) -> ListModelsOutput:
    """List deployed models, their versions (v1, v2, ...) and which version is current."""
    from blase.deploy import list_models as engine_list

    notes: list[str] = []
    rows = []
    for m in engine_list(ctx.project):
        versions = m.versions
        if len(versions) > ctx.max_rows:
            notes.append(f"{m.name}: showing the last {ctx.max_rows} of {len(versions)} versions")
            versions = versions[-ctx.max_rows :]
        rows.append(ModelRow(name=m.name, current=m.current, versions=versions))
    return ListModelsOutput(models=rows, notes=notes)


class DeployInput(ToolInput):
    run: str = Field(description="A pipeline run id, prefix or 'latest' whose model to package.")
    name: ModelName | None = Field(None, description="Model name (default: deploy.name or the project name).")


class DeployOutput(ToolOutput):
    name: str
    version: str
    path: str
    metrics: dict[str, Any] = Field(default_factory=dict)
    current: str | None = Field(None, description="The current version after deploying (unchanged unless it was the first).")
    runs_started: list[str] = Field(default_factory=list)


@tool(
    risk="write",
    command=lambda a: f"blase deploy {quote(a.run)}" + (f" --name {quote(a.name)}" if a.name else ""),
)
def deploy(args: DeployInput, ctx: ToolContext) -> DeployOutput:
    """Package a run's model as a new version models/NAME/vN (weights, transform, schema,
    metrics). The current version stays current; use promote to switch."""
    from blase.deploy import current_version, deploy_run

    with tracked_runs(ctx, "deploy") as runs:
        package = deploy_run(ctx.project, args.run, name=args.name, promote_it=False)
    metrics = {k: v for k, v in package.metrics.items() if isinstance(v, (int, float, str))}
    return DeployOutput(
        name=package.name, version=package.version, path=ctx.project.relative(package.path),
        metrics=dict(list(metrics.items())[:20]), current=current_version(ctx.project, package.name),
        runs_started=runs,
    )


class PredictInput(ToolInput):
    model: ModelRef = Field(description="NAME (its current version) or NAME@vN.")
    data: str = Field(description="New raw data inside the project, e.g. data/new.csv.")
    out: str = Field(description="Output file inside the project, .parquet or .csv, e.g. outputs/pred.parquet.")


class PredictOutput(ToolOutput):
    model: str
    version: str
    rows: int
    output: str
    warnings: list[str] = Field(default_factory=list)


@tool(
    risk="write",
    command=lambda a: f"blase predict {quote(a.model)} {quote(a.data)} --out {quote(a.out)}",
)
def predict(args: PredictInput, ctx: ToolContext) -> PredictOutput:
    """Score new data with a deployed model and write the predictions to a new file under the
    project (refuses to overwrite an existing file)."""
    from blase.deploy import predict as engine_predict

    data = confine_path(ctx, args.data, what="data")
    out = confine_path(ctx, args.out, what="out")
    project = ctx.project
    for managed in (project.models_dir, project.runs_dir, project.state_dir):
        if managed.resolve() in out.parents:  # a file there would pose as a model version or a run
            raise ToolError(f"out {args.out!r} is inside {project.relative(managed)}/, which Blase manages",
                            hint="write predictions under outputs/, e.g. outputs/predictions.csv")
    if out.exists():
        raise ToolError(
            f"{args.out} already exists; predict does not overwrite files",
            hint="choose a new output name, e.g. outputs/predictions-2.parquet",
        )
    if out.suffix not in (".parquet", ".csv"):
        raise ToolError(f"out {args.out!r} must end in .parquet or .csv")
    result = engine_predict(ctx.project, args.model, data, out)
    return PredictOutput(
        model=result.model, version=result.version, rows=result.rows, output=ctx.project.relative(result.output),
        warnings=[str(w)[:300] for w in result.warnings][:10],
    )


class PromoteInput(ToolInput):
    name: ModelName = Field(description="Model name.")
    version: str = Field(description="Version to make current, e.g. v3.")


class SwitchOutput(ToolOutput):
    name: str
    previous: str | None = Field(description="The version that was current before.")
    current: str


def _promote_command(a: PromoteInput) -> str:
    return f"blase promote {quote(a.name)} {quote(a.version)}"


@tool(risk="destructive", command=_promote_command)
def promote(args: PromoteInput, ctx: ToolContext) -> SwitchOutput:
    """Make a deployed version the current one, replacing the version that serves now
    (predict without @vN uses it). Reversible with rollback."""
    from blase.deploy import promote as engine_promote

    reason = f"agent session {ctx.session_id}" if ctx.session_id else "tool call"
    previous = engine_promote(ctx.project, args.name, args.version, reason=reason)
    return SwitchOutput(name=args.name, previous=previous, current=args.version)


class RollbackInput(ToolInput):
    name: ModelName = Field(description="Model name.")
    to: str | None = Field(None, description="Version to make current (default: the one before the last promotion).")


@tool(
    risk="destructive",
    command=lambda a: f"blase rollback {quote(a.name)}" + (f" --to {quote(a.to)}" if a.to else ""),
)
def rollback(args: RollbackInput, ctx: ToolContext) -> SwitchOutput:
    """Move a model's current version back (to `to`, or to the version before the last promotion)."""
    from blase.deploy import rollback as engine_rollback

    before, after = engine_rollback(ctx.project, args.name, to=args.to)
    return SwitchOutput(name=args.name, previous=before, current=after)
