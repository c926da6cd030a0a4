"""``blase mcp``: the assistant's typed tools for any MCP client, behind the same gate.

A thin adapter over :mod:`blase.agent._mcp` (imported inside the command, so ``blase --help``
stays instant and the engine runs without the ``agent`` extra). On stdio, stdout belongs to the
protocol: everything for people goes to stderr.
"""

from __future__ import annotations

from typing import Annotated

import typer

from blase.cli import _common as common
from blase.cli._common import ProjectOpt, app

__all__: list[str] = []


@app.command()
def mcp(
    autonomy: Annotated[
        str | None, typer.Option("--autonomy", "-a", help="manual, semi or auto (default: agent.autonomy).")
    ] = None,
    transport: Annotated[
        str, typer.Option("--transport", "-t", help="stdio (an editor starts the server) or http (streamable HTTP).")
    ] = "stdio",
    port: Annotated[int, typer.Option("--port", help="With --transport http: the port on 127.0.0.1.")] = 8765,
    project: ProjectOpt = None,
) -> None:
    """Serve the assistant's tools to an MCP client (editor, desktop assistant), with the same gate.

    Read tools run; write tools as the autonomy allows; destructive ones always need a person's
    approval (MCP elicitation), or the refusal names the `blase` command to run.

    Example: [bold]blase mcp --autonomy semi[/], or [bold]blase mcp --transport http --port 8765[/]
    """
    import importlib.util

    from rich.console import Console

    from blase.errors import BlaseError
    from blase.project import find_project

    common.use_project(project)
    if importlib.util.find_spec("mcp") is None:
        raise BlaseError("blase mcp needs the agent extra (with the mcp SDK)", hint="pip install 'blase[agent]'")
    from blase.agent import McpSession, serve_mcp

    err = Console(stderr=True, highlight=False)
    with McpSession(find_project(), autonomy=autonomy, transport=transport) as session:
        where = f"http://127.0.0.1:{port}/mcp" if transport == "http" else "stdio"
        err.print(f"[dim]blase mcp · project {session.project.name} · autonomy {session.autonomy} · {where} · "
                  f"record: blase session {session.session_id}[/]")
        try:
            serve_mcp(session, transport=transport, port=port)
        except KeyboardInterrupt:
            session.close("finished")
