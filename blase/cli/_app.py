"""Typer commands. Each one parses options, calls the Python API, and renders the result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from blase.cli import _common as common
from blase.cli._common import TRUST_HELP, ProjectOpt, app
from blase.errors import ConfigError

#: ``--project`` of the commands that make a project: it names the new folder.
NewProjectOpt = Annotated[
    Path | None, typer.Option("--project", "-p", help="The new project's folder (instead of the argument).")
]

# -- create / check -------------------------------------------------------------------------


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[
        Path | None, typer.Argument(help="Folder of the new project; its name is the project's name (or give --project).")
    ] = None,
    template: Annotated[str, typer.Option("--template", "-t", help="tabular, images, audio, json, rl, or plugin.")] = "tabular",
    example: Annotated[
        bool, typer.Option("--example/--no-example", help="Include the template's bundled data in data/ (penguins, orders, CartPole, digits...).")
    ] = True,
    kind: Annotated[
        str, typer.Option("--kind", help="With --template plugin: operation, source, drift_test, step or model.")
    ] = "operation",
    project_dir: NewProjectOpt = None,
) -> None:
    """Create a project folder: blase.yaml, scripts/, data/, models/, outputs/, runs/, .blase/.

    With [bold]--template plugin[/]: a plugin package (pyproject with its entry point, manifest,
    implementation, README, tests). Example: [bold]blase create churn[/], or
    [bold]blase create blase-zclip --template plugin --kind operation[/]
    """
    from blase.scaffold import create_plugin, create_project
    from blase.ui import remember_project

    name = common.new_project_folder(name, project_dir, ctx)
    if template == "plugin":
        made = create_plugin(name, kind=kind)
        common.out().print(f"[green]created[/] {kind} plugin [bold]{made.name}[/] (package {made.module}) at {made.folder}")
        common.out().print(f"  next: pip install -e {name} && blase plugin check {made.name}")
        return

    project = create_project(name, template=template, example=example)
    remember_project(project.root)  # `blase ui` shows it from anywhere
    out = common.out()
    out.print(f"[green]created[/] project [bold]{project.name}[/] at {project.root}")
    first = "python scripts/train.py" if template == "tabular" else "blase run"
    out.print(f"  next: cd {name} && {first} && blase runs")


@app.command()
def check(
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Validate blase.yaml and the files it names, without running anything.

    Example: [bold]blase check[/]
    """
    from blase.checks import check_project
    from blase.project import find_project

    common.use_project(project)
    found = find_project()
    result = check_project(found)  # raises ConfigError on an invalid file
    if as_json:
        common.print_json(result.to_json())
    else:
        out = common.out()
        against = f"; its column names match {result.header_of}" if result.header_of else ""
        out.print(f"[green]ok[/] {found.config_path} is valid{against}")
        for warning in result.warnings:
            out.print(f"[yellow]warning:[/] {warning}")


# -- runs / inspect -------------------------------------------------------------------------


@app.command()
def runs(
    project: Annotated[
        list[Path] | None,
        typer.Option("--project", "-p", help="A project to list; repeat for several (default: this one)."),
    ] = None,
    where: Annotated[
        str | None,
        typer.Option("--where", "-w", help="SQL filter, e.g. \"metrics.acc > 0.9 and params.lr = 0.01\"."),
    ] = None,
    sort: Annotated[
        str | None, typer.Option("--sort", "-s", help="Metric or column; prefix '-' (or add ' desc') for descending.")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="At most N runs.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only runs with this status (running, finished, failed, interrupted).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array of run objects.")] = False,
    remote: Annotated[str | None, typer.Option("--remote", help="List the runs pushed to this remote instead.")] = None,
) -> None:
    """List runs, newest first, across one or several projects (queried with DuckDB).

    Example: [bold]blase runs --where "metrics.test_accuracy > 0.9" --sort -test_accuracy -n 5[/]
    """
    if remote is not None:
        return _remote.remote_runs_table(remote, (project or [None])[0], as_json)
    from blase.cli._render import runs_table
    from blase.track import list_runs

    found = list_runs(project or None, where=where, sort=sort, limit=limit, status=status)
    if as_json:
        common.print_json([r.to_json() for r in found])
        return
    out = common.out()
    if not found:
        out.print("no runs yet: log one with `python scripts/train.py` or the Track API")
        return
    out.print(runs_table(found, multi_project=bool(project and len(project) > 1), width=out.width))
    for run in found:
        for damage in run.damage:
            out.print(f"[yellow]warning:[/] run {run.id}: {damage}")


@app.command()
def inspect(
    run: Annotated[str, typer.Argument(help="Run id, a unique prefix of it, or 'latest'.")],
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run object as JSON.")] = False,
    lineage: Annotated[
        bool, typer.Option("--lineage", help="Per step: inputs, outputs, code and config hashes.")
    ] = False,
) -> None:
    """Show one run: params, latest metrics, artifacts, events, hashes and resources.

    Example: [bold]blase inspect 3fa9[/] or [bold]blase inspect 3fa9 --lineage[/]
    """
    from blase.cli._render import run_panel
    from blase.track import load_run

    common.use_project(project)
    if lineage:
        from blase.cli._repro import show_lineage

        show_lineage(run, as_json=as_json)
        return
    detail = load_run(run)
    if as_json:
        common.print_json(detail.to_json())
        return
    out = common.out()
    out.print(run_panel(detail))
    if detail.tags.get("agent_session"):
        from blase.cli._assistant import agent_decision_lines
        from blase.project import find_project

        for line in agent_decision_lines(find_project().root, detail):
            out.print(line)
    if detail.kind == "agent-session":
        from blase.cli._assistant import session_replay_lines
        from blase.project import find_project

        out.print("\n[bold]conversation[/]")
        for line in session_replay_lines(find_project().root, detail.id):
            out.print(line)


# -- doctor ---------------------------------------------------------------------------------


@app.command()
def doctor(
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check Python, torch and CUDA, memory, disk, and which LLM providers are reachable.

    Example: [bold]blase doctor[/]
    """
    from blase.doctor import run_doctor
    from blase.errors import ProjectError
    from blase.project import find_project

    common.use_project(project)
    try:
        root = find_project().root
    except ProjectError:
        root = None
    report = run_doctor(root)
    if as_json:
        common.print_json(report.to_json())
        return
    from rich.table import Table

    colour = {"ok": "green", "warn": "yellow", "missing": "red", "info": "cyan"}
    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for c in report.checks:
        table.add_row(c.name, f"[{colour.get(c.status, 'white')}]{c.status}[/]", c.detail)
    common.out().print(table)
    if not report.ok:
        raise typer.Exit(1)


# -- demo -----------------------------------------------------------------------------------


@app.command()
def demo(
    ctx: typer.Context,
    folder: Annotated[
        Path | None, typer.Argument(help="Where to create the demo project (default: blase-demo, or --project).")
    ] = None,
    template: Annotated[
        str, typer.Option("--template", "-t", help="tabular (penguins), images (digits), audio, json or rl.")
    ] = "tabular",
    project_dir: NewProjectOpt = None,
) -> None:
    """Create a project with a template's bundled data and run the whole pipeline on it.

    Example: [bold]blase demo[/] (then [bold]cd blase-demo && blase runs[/]), or
    [bold]blase demo digits --template images[/]
    """
    from blase.cli._render import deploy_line, metrics_vs_baseline, steps_table
    from blase.pipeline import Pipeline
    from blase.scaffold import PROJECT_TEMPLATES, create_project
    from blase.steps import Evaluation, Package
    from blase.track import load_run

    out = common.out()
    folder = common.new_project_folder(folder, project_dir, ctx, default=Path("blase-demo"))
    project = create_project(folder, template=template)
    made = PROJECT_TEMPLATES[template]
    out.print(f"[green]created[/] {project.root}: {made.description}")
    out.print("running extract -> transform -> prepare -> train -> evaluate -> deploy ...")

    def on_step(step: str, state: str) -> None:
        if state == "done":
            out.print(f"  [green]ok[/] {step}")

    result = Pipeline(project).run(on_step=on_step)
    run = load_run(result.run_id, [project.root])
    out.print(steps_table([e for e in run.event_list if e.get("event") == "step"]))
    evaluation = next(o for o in result.outputs() if isinstance(o, Evaluation))
    out.print(metrics_vs_baseline(evaluation))
    deployed = next(o for o in result.outputs() if isinstance(o, Package))
    plots = ", ".join(p.name for p in evaluation.plot_files)
    out.print(f"\nrun        {result.run_id}  (blase inspect {result.run_id})")
    out.print(f"model      {deploy_line(deployed, result.run_id)}")
    out.print(f"plots      {plots} in {project.relative(evaluation.root)}")
    out.print(f"\nnext: cd {folder} && blase runs && blase predict {deployed.model} {made.new_data} "
              "--out outputs/predictions.parquet")


# -- schema ---------------------------------------------------------------------------------


@app.command()
def schema(
    data: Annotated[str, typer.Argument(help="A data file, folder or glob (CSV, Parquet, JSON, ...).")],
    label: Annotated[str | None, typer.Option("--label", "-l", help="The column to predict.")] = None,
    write: Annotated[bool, typer.Option("--write", help="Put the suggested transform into blase.yaml.")] = False,
    memory: Annotated[str | None, typer.Option("--memory", "-m", help="Memory budget, e.g. 2GB.")] = None,
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Profile a dataset and suggest column kinds, imputation, scaling, encoding and a label.

    Example: [bold]blase schema data/flights.csv --label delayed --write[/]
    """
    from blase.cli._render import schema_table
    from blase.errors import ProjectError
    from blase.project import find_project
    from blase.schema import suggest_schema, write_suggestions

    common.use_project(project)
    try:
        found = find_project()
    except ProjectError:
        if write:
            raise
        found = None
    path = Path(data)
    if found is not None and not path.is_absolute() and not path.exists():
        path = found.root / data
    report = suggest_schema(str(path), label=label, memory=memory)
    if write:
        assert found is not None
        write_suggestions(found.config_path, report)
    if as_json:
        common.print_json(report.to_json())
        return
    out = common.out()
    out.print(schema_table(report))
    if write:
        out.print(f"[green]wrote[/] the suggested transform into {found.config_path}")


# -- run ------------------------------------------------------------------------------------


@app.command()
def run(
    from_step: Annotated[str | None, typer.Option("--from", help="First step (earlier steps are reused).")] = None,
    to_step: Annotated[str | None, typer.Option("--to", help="Last step.")] = None,
    memory: Annotated[str | None, typer.Option("--memory", "-m", help="Memory budget for data steps, e.g. 2GB.")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config key for this run, e.g. train.epochs=5.")
    ] = None,
    resume: Annotated[str | None, typer.Option("--resume", help="Continue a failed or interrupted run.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every step, even those with a cached result.")] = False,
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run object as JSON.")] = False,
    autonomy: Annotated[
        str | None,
        typer.Option("--autonomy", "-a", help="Run under the assistant: manual (recommends), semi (asks), auto (acts within budgets)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="With --autonomy: approve every write proposal (destructive ones still ask).")] = False,
    provider: Annotated[str | None, typer.Option("--provider", help="With --autonomy: openai, ollama or llamacpp.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="With --autonomy: model name (llamacpp: a .gguf path).")] = None,
    nproc: Annotated[int | None, typer.Option("--nproc", min=1, help="Train with DDP on N processes (torchrun): train.distributed.nproc_per_node.")] = None,
    executor: Annotated[str | None, typer.Option("--executor", help="Where the data steps run: local, or ray (Ray tasks; ray.address in blase.yaml).")] = None,
) -> None:
    """Run the pipeline of blase.yaml: extract, transform, prepare, train, evaluate, deploy.

    Steps whose inputs, config, code and environment are unchanged are taken from the cache.
    With --autonomy, the assistant reviews each step's record and proposes what to do next.

    Example: [bold]blase run --set train.epochs=5 --memory 2GB[/] or [bold]blase run --autonomy semi[/]
    """
    overrides = [*(overrides or []), f"train.distributed.nproc_per_node={nproc}"] if nproc else overrides
    overrides = [*(overrides or []), f"executor={executor}"] if executor else overrides
    if autonomy is not None or yes or provider is not None or model is not None:
        from blase.cli._assistant import run_with_assistant

        run_with_assistant(autonomy=autonomy, yes=yes, provider=provider, model=model, from_step=from_step,
                           to_step=to_step, memory=memory, overrides=overrides, resume=resume,
                           no_cache=no_cache, project=project, as_json=as_json)
        return
    from blase.cli._render import run_panel
    from blase.pipeline import Pipeline
    from blase.track import load_run

    common.use_project(project)
    out = common.out() if not as_json else None
    pipeline = Pipeline(overrides=overrides, memory=memory)

    def on_step(step: str, state: str) -> None:
        if out is None:
            return
        mark = {"start": "[cyan]>[/]", "done": "[green]ok[/]", "reused": "[dim]reused[/]", "cached": "[dim]cached[/]",
                "failed": "[red]failed[/]", "interrupted": "[yellow]interrupted[/]"}.get(state, state)
        why = pipeline.reasons.get(step) if state == "done" else None
        if state != "start":
            from rich.markup import escape

            out.print(f"  {mark} {step}" + (f" [dim]({escape('; '.join(why))})[/]" if why else ""))

    try:
        result = pipeline.run(from_step=from_step, to_step=to_step, resume=resume, on_step=on_step,
                              cache=not no_cache)
    except BaseException as exc:
        # Name THIS run (another `blase run` may have started since), and say what happened to it.
        if pipeline.run_id is not None and out is not None:
            rid = pipeline.run_id
            if isinstance(exc, KeyboardInterrupt):
                out.print(f"[yellow]run {rid} interrupted[/]: resume it with `blase run --resume {rid}`")
            elif isinstance(exc, ConfigError):  # a resume would replay the same settings
                out.print(f"[red]run {rid} failed[/] on its configuration: fix it (below), then `blase run`")
            else:
                out.print(f"[red]run {rid} failed[/]: resume it with `blase run --resume {rid}`")
        raise
    detail = load_run(result.run_id, [pipeline.project.root])
    if as_json:
        common.print_json(detail.to_json())
        return
    assert out is not None
    out.print(run_panel(detail, brief=True))
    from blase.cli._render import deploy_line, metrics_vs_baseline
    from blase.steps import Evaluation, Package

    for output in result.outputs():  # what the steps made, by type: any step's evaluation or package
        if isinstance(output, Evaluation):
            out.print(metrics_vs_baseline(output))
        elif isinstance(output, Package):
            out.print(deploy_line(output, result.run_id))


# -- deploy / models / rollback / predict ---------------------------------------------------


@app.command()
def deploy(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="A pipeline run id, prefix or 'latest'.")],
    name: Annotated[str | None, typer.Option("--name", help="Model name (default: deploy.name or the project).")] = None,
    promote_it: Annotated[bool, typer.Option("--promote", help="Make this version current.")] = False,
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the package as JSON.")] = False,
) -> None:
    """Package a run's model as models/NAME/vN (weights, transform, schema, metrics, card).

    Example: [bold]blase deploy latest --promote[/]
    """
    from blase.deploy import deploy_run
    from blase.project import find_project

    common.use_project(project)
    package = deploy_run(find_project(), run_ref, name=name, promote_it=promote_it)
    if as_json:
        common.print_json({"name": package.name, "version": package.version, "path": str(package.path)})
        return
    common.out().print(f"[green]deployed[/] {package.name} {package.version} at {package.path}")


@app.command()
def models(
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List deployed models, their versions and the current one.

    Example: [bold]blase models[/]
    """
    from rich.table import Table

    from blase.deploy import list_models
    from blase.project import find_project

    common.use_project(project)
    found = list_models(find_project())
    if as_json:
        common.print_json([m.to_json() for m in found])
        return
    if not found:
        common.out().print("no models yet: `blase run` deploys one, or `blase deploy RUN`")
        return
    table = Table(header_style="bold", box=None)
    for col in ("model", "current", "versions", "path"):
        table.add_column(col)
    for m in found:
        table.add_row(m.name, m.current or "-", ", ".join(m.versions), str(m.path))
    common.out().print(table)


@app.command()
def rollback(
    name: Annotated[str, typer.Argument(help="Model name.")],
    to: Annotated[str | None, typer.Option("--to", help="Version to make current (default: the previous one).")] = None,
    project: ProjectOpt = None,
) -> None:
    """Move a model's current version back.

    Example: [bold]blase rollback penguins[/] or [bold]blase rollback penguins --to v1[/]
    """
    from blase.deploy import rollback as do_rollback
    from blase.project import find_project

    common.use_project(project)
    before, after = do_rollback(find_project(), name, to=to)
    common.out().print(f"[green]{name}[/]: current {before or '-'} -> {after}")


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version to make current, e.g. v3.")],
    project: ProjectOpt = None,
) -> None:
    """Make a deployed version the current one (undo with blase rollback).

    Example: [bold]blase promote penguins v3[/]
    """
    from blase.deploy import promote as do_promote
    from blase.project import find_project

    common.use_project(project)
    before = do_promote(find_project(), name, version, reason="blase promote")
    common.out().print(f"[green]{name}[/]: current {before or '-'} -> {version}")


#: ``--trust-package`` of predict and monitor: a package folder from elsewhere may run code.

@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="NAME (current version), NAME@vN, or a package folder under models/.")],
    data: Annotated[str, typer.Argument(help="New raw data (same columns as the training data).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file, .parquet or .csv.")],
    memory: Annotated[str | None, typer.Option("--memory", "-m", help="Memory budget, e.g. 2GB.")] = None,
    onnx: Annotated[bool, typer.Option("--onnx", help="Score with the ONNX export instead of torch.")] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite --out if it already exists.")] = False,
    trust_package: Annotated[bool, typer.Option("--trust-package", help=TRUST_HELP)] = False,
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Score new data with a deployed model, streaming under the memory budget.

    An existing --out file is not overwritten unless --force is given.

    Example: [bold]blase predict penguins data/new.csv --out outputs/new.parquet[/]
    """
    from blase.deploy import DeployError, resolve_model
    from blase.deploy import predict as do_predict
    from blase.project import find_project

    common.use_project(project)
    if out.exists() and not out.is_dir() and not force:  # a folder: predict says so
        raise DeployError(
            f"--out {out} already exists; blase predict does not overwrite it",
            hint=f"choose another --out, or overwrite it with `blase predict {model} DATA --out {out} --force`",
        )
    found = find_project()
    package = resolve_model(found, model, trust_package=trust_package)
    result = do_predict(found, package, data, out, memory=memory, use_onnx=onnx)
    if as_json:
        common.print_json(result.to_json())
        return
    o = common.out()
    o.print(f"[green]wrote[/] {result.rows:,} predictions of {result.model} {result.version} to {result.output}")
    for warning in result.warnings:
        o.print(f"[yellow]note:[/] {warning}")


# Commands of later subsystems live in their own modules and register on `app` on import
# (they import blase.cli._common, never this module).
from blase.cli import _assistant, _mcp, _monitor, _plugins, _remote, _repro, _serve, _ui, _upgrade  # noqa: E402, F401
