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
    "new_project_folder",
    "out",
    "print_error",
    "print_json",
    "root_options_first",
    "size",
    "use_project",
]

app = typer.Typer(
    name="blase",
    help="Local-first machine-learning pipelines: tracked, content-hashed, memory-safe.\n\n"
    "Example: [bold]blase demo[/], then [bold]blase runs --project blase-demo[/]. Every command's "
    "--help has an example; --project DIR and --debug go before or after any command.",
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


#: Root options whose value is the next word (a group between the root and its subcommand
#: takes no options of its own, so ``blase remote --project DIR list`` hands it to the root).
_PROJECT_FLAGS = ("--project", "-p")


def root_options_first(args: list[str]) -> list[str]:
    """``args`` with the root options a user put elsewhere moved to the front, so that
    ``blase runs --debug`` works like ``blase --debug runs``, and ``blase agent --project DIR
    eval`` like ``blase --project DIR agent eval``.

    ``--debug`` may come anywhere before ``--`` (no command has an option of that name);
    ``--project DIR`` (``-p DIR``, ``--project=DIR``) moves only from between a command group
    and its subcommand: after a command, its own ``--project`` option takes it.
    """
    end = args.index("--") if "--" in args else len(args)
    head, tail = args[:end], args[end:]
    front = ["--debug"] if "--debug" in head else []
    head = [a for a in head if a != "--debug"]
    groups = {g.name or g.typer_instance.info.name for g in app.registered_groups}
    words = iter(enumerate(head))
    for i, word in words:  # the root's own options, up to the first command name
        if word in _PROJECT_FLAGS:
            next(words, None)
        elif not word.startswith("-"):
            if word in groups:
                moved, rest = _group_options(head[i + 1:])
                return [*front, *moved, *head[:i + 1], *rest, *tail]
            break
    return [*front, *head, *tail]


def _group_options(words: list[str]) -> tuple[list[str], list[str]]:
    """Split the words after a group's name into the ``--project`` options before its
    subcommand and everything else."""
    moved: list[str] = []
    i = 0
    while i < len(words) and words[i].startswith("-"):
        if words[i] in _PROJECT_FLAGS and i + 1 < len(words):
            moved += words[i:i + 2]
            i += 2
        elif words[i].startswith("--project="):
            moved.append(words[i])
            i += 1
        else:
            return moved, words[i:]  # --help or a typo: the group answers it
    return moved, words[i:]


def new_project_folder(given: Path | None, project: Path | None, ctx: typer.Context,
                       default: Path | None = None) -> Path:
    """The folder ``blase create``/``blase demo`` makes: NAME, else ``--project DIR`` (after the
    command or before it), else ``default``. Two different folders are an error."""
    from blase.errors import ProjectError

    root = ctx.find_root().params.get("project")
    named = [p for p in (given, project, root) if p is not None]
    if len({Path(p).expanduser().resolve() for p in named}) > 1:
        raise ProjectError(
            f"two folders for the new project: {' and '.join(str(p) for p in named)}",
            hint="give the folder once: as the command's argument or as --project DIR",
        )
    if named:
        return Path(named[0]).expanduser()
    if default is None:
        raise ProjectError("no folder for the new project", hint="name it, e.g. `blase create churn`")
    return default


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
