"""Typer commands. Each one parses options, calls the Python API, and renders the result."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from blase._version import __version__

app = typer.Typer(
    name="blase",
    help="Local-first machine-learning pipelines: tracked, content-hashed, memory-safe.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"blase {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    project: Annotated[
        Path | None,
        typer.Option("--project", "-p", help="Project folder (default: walk up from the current folder)."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Blase: structured, reproducible ML pipelines on one workstation."""
    _use_project(project)
    if debug:
        os.environ["BLASE_DEBUG"] = "1"
    import logging

    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(name)s: %(message)s")


ProjectOpt = Annotated[
    Path | None,
    typer.Option("--project", "-p", help="Project folder (default: walk up from the current folder)."),
]


def _use_project(project: Path | None) -> None:
    if project is not None:
        from blase.project import PROJECT_ENV

        os.environ[PROJECT_ENV] = str(project)


def _out():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def _print_json(obj: object) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


# -- create / check -------------------------------------------------------------------------


@app.command()
def create(
    name: Annotated[Path, typer.Argument(help="Folder of the new project; its name is the project's name.")],
    template: Annotated[str, typer.Option("--template", "-t", help="Project template.")] = "tabular",
    example: Annotated[
        bool, typer.Option("--example/--no-example", help="Include the bundled penguins data in data/.")
    ] = True,
) -> None:
    """Create a project folder: blase.yaml, scripts/, data/, models/, outputs/, runs/, .blase/.

    Example: [bold]blase create churn[/] then [bold]cd churn && python scripts/train.py[/]
    """
    from blase.scaffold import create_project

    project = create_project(name, template=template, example=example)
    out = _out()
    out.print(f"[green]created[/] project [bold]{project.name}[/] at {project.root}")
    out.print(f"  next: cd {name} && python scripts/train.py && blase runs")


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

    _use_project(project)
    found = find_project()
    result = check_project(found)  # raises ConfigError on an invalid file
    if as_json:
        _print_json(result.to_json())
    else:
        out = _out()
        out.print(f"[green]ok[/] {found.config_path} is valid")
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
) -> None:
    """List runs, newest first, across one or several projects (queried with DuckDB).

    Example: [bold]blase runs --where "metrics.test_accuracy > 0.9" --sort -test_accuracy -n 5[/]
    """
    from blase.cli._render import runs_table
    from blase.track import list_runs

    found = list_runs(project or None, where=where, sort=sort, limit=limit, status=status)
    if as_json:
        _print_json([r.to_json() for r in found])
        return
    out = _out()
    if not found:
        out.print("no runs yet: log one with `python scripts/train.py` or the Track API")
        return
    out.print(runs_table(found, multi_project=bool(project and len(project) > 1)))
    for run in found:
        for damage in run.damage:
            out.print(f"[yellow]warning:[/] run {run.id}: {damage}")


@app.command()
def inspect(
    run: Annotated[str, typer.Argument(help="Run id, a unique prefix of it, or 'latest'.")],
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run object as JSON.")] = False,
) -> None:
    """Show one run: params, latest metrics, artifacts, events, hashes and resources.

    Example: [bold]blase inspect 3fa9[/]
    """
    from blase.cli._render import run_panel
    from blase.track import load_run

    _use_project(project)
    detail = load_run(run)
    if as_json:
        _print_json(detail.to_json())
        return
    _out().print(run_panel(detail))


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

    _use_project(project)
    try:
        root = find_project().root
    except ProjectError:
        root = None
    report = run_doctor(root)
    if as_json:
        _print_json(report.to_json())
        return
    from rich.table import Table

    colour = {"ok": "green", "warn": "yellow", "missing": "red", "info": "cyan"}
    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for c in report.checks:
        table.add_row(c.name, f"[{colour.get(c.status, 'white')}]{c.status}[/]", c.detail)
    _out().print(table)
    if not report.ok:
        raise typer.Exit(1)


# -- demo -----------------------------------------------------------------------------------


@app.command()
def demo(
    folder: Annotated[Path, typer.Argument(help="Where to create the demo project.")] = Path("blase-demo"),
) -> None:
    """Create a project with the bundled penguins data, train the example model, show the run.

    Example: [bold]blase demo[/] (then [bold]cd blase-demo && blase runs[/])
    """
    import subprocess
    import sys

    from blase.cli._render import run_panel
    from blase.scaffold import create_project
    from blase.track import load_run

    out = _out()
    project = create_project(folder)
    out.print(f"[green]created[/] {project.root} with data/penguins.csv (344 penguins, 3 species)")
    out.print("training the example model (scripts/train.py) ...")
    done = subprocess.run([sys.executable, str(project.scripts_dir / "train.py")], cwd=project.root)
    if done.returncode != 0:
        from blase.errors import BlaseError

        raise BlaseError(f"the example script failed with exit code {done.returncode}",
                         hint=f"run it yourself to see why: cd {folder} && python scripts/train.py")
    out.print(run_panel(load_run("latest", [project.root])))
    out.print(f"\nnext: cd {folder} && blase runs, blase inspect latest --json, blase check")
