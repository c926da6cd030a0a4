"""``blase upgrade``: migrate a project's files to the current on-disk formats, after a dry run.

The command registers itself on :data:`blase.cli._common.app`; the logic is :mod:`blase.upgrade`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from blase.cli import _common as common
from blase.cli._common import ProjectOpt, app


@app.command()
def upgrade(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the diff of every change; write nothing.")] = False,
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan (and whether it was applied) as JSON.")] = False,
) -> None:
    """Bring blase.yaml, run records and model packages to this Blase's file formats, in place.

    Example: [bold]blase upgrade --dry-run[/], then [bold]blase upgrade[/]
    """
    from blase.project import find_project
    from blase.upgrade import upgrade as do_upgrade

    common.use_project(project)
    found = find_project()
    plan = do_upgrade(found, dry_run=dry_run)
    if as_json:
        common.print_json(plan.to_json())
        return
    out = common.out()
    if dry_run:
        for change in plan.changes:
            typer.echo(change.diff(found.root), nl=False)  # raw: a diff must not be wrapped
    for change in plan.changes:
        out.print(f"{'would upgrade' if dry_run else '[green]upgraded[/]'} {change.what}")
    for note in plan.notes:
        out.print(f"[yellow]note:[/] {note}")
    if not plan.changes:
        out.print(f"[green]ok[/] {found.root} is in this Blase's formats: nothing to upgrade")
    elif dry_run:
        out.print(f"{len(plan.changes)} file(s) to upgrade: run `blase upgrade` to write them")
