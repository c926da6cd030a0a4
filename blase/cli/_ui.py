"""``blase ui``: the local web app over the runs, diffs and models of one or several projects.

The command registers itself on :data:`blase.cli._common.app`; the server lives in
:mod:`blase.ui`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from blase.cli import _common as common
from blase.cli._common import app
from blase.errors import BlaseError


@app.command()
def ui(
    project: Annotated[
        list[Path] | None,
        typer.Option("--project", "-p", help="A project to show; repeat for several (default: this one)."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind; other than 127.0.0.1 needs --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: a free one).")] = 8765,
    read_only: Annotated[bool, typer.Option("--read-only", help="Refuse every change (promote, rollback, approving the assistant's calls, builder save/run/new project).")] = False,
    token: Annotated[
        str | None, typer.Option("--token", help="Token the page sends with every change (default: a new one).")
    ] = None,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")] = False,
    only: Annotated[
        bool, typer.Option("--only", help="Show only these projects, not those registered by earlier `blase ui`/`blase create`.")
    ] = False,
) -> None:
    """Start a local web app: runs across projects, a run (live), compare 2-10 runs, models,
    monitor history, the assistant's sessions and approvals, pipeline builder.

    Example: [bold]blase ui --project churn --project fraud --read-only[/]
    """
    from blase.project import find_project
    from blase.ui import Dashboard, UserRegistry, serve

    registry = UserRegistry()
    given = [find_project(p).root for p in project or []]
    if not given and not only:
        try:
            given = [find_project().root]
        except BlaseError:
            if not registry.projects():
                raise
    for root in given:
        registry.remember(root)
    dashboard = Dashboard(given, read_only=read_only, registry=None if only else registry)
    out = common.out()
    names = ", ".join(p.name for p in dashboard.projects)

    def announce(url: str) -> None:
        mode = " (read-only)" if read_only else ""
        out.print(f"[green]blase ui[/] showing {names}{mode} at [bold]{url}[/]  (Ctrl+C stops it)")

    try:
        serve(dashboard, host=host, port=port, token=token, open_browser=open_browser, announce=announce)
    except KeyboardInterrupt:
        out.print("stopped")
