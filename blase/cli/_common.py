"""What every command module shares: the Typer ``app``, its root options, the common options,
the console and the JSON and error printers. Command modules import this one; nothing here
imports a command module, so the imports of ``blase.cli`` go one way."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from blase._version import __version__

__all__ = [
    "TRUST_HELP",
    "ProjectOpt",
    "app",
    "out",
    "print_error",
    "print_json",
    "size",
    "use_project",
]

app = typer.Typer(
    name="blase",
    help="Local-first machine-learning pipelines: tracked, content-hashed, memory-safe.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion and --show-completion (bash, zsh, fish, PowerShell)
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
    use_project(project)
    if debug:
        os.environ["BLASE_DEBUG"] = "1"
    import logging

    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(name)s: %(message)s")


ProjectOpt = Annotated[
    Path | None,
    typer.Option("--project", "-p", help="Project folder (default: walk up from the current folder)."),
]


def use_project(project: Path | None) -> None:
    if project is not None:
        from blase.project import PROJECT_ENV

        os.environ[PROJECT_ENV] = str(project)


def out():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def print_json(obj: object) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


TRUST_HELP = ("Accept a package folder outside this project's models/ (its script model is "
              "imported): only for packages you trust.")


def print_error(message: str) -> None:
    """Print an error (first line after ``error:``, the rest, such as a hint, below it) to
    stderr, markup-escaped: how the CLI shows a :class:`~blase.errors.BlaseError`."""
    from rich.console import Console
    from rich.markup import escape

    first, _, rest = message.partition("\n")
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print(f"[bold red]error:[/] {escape(first)}")
    if rest:
        console.print(escape(rest))


def size(n: int) -> str:
    """A byte count for people (``1.2 GB``), as every command prints one."""
    from blase.resources import format_size

    return format_size(int(n))
