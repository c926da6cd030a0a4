"""``blase serve``: answer prediction requests for a deployed model over HTTP.

The command registers itself on :data:`blase.cli._common.app`; the service and the server live in
:mod:`blase.deploy`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from blase.cli import _common as common
from blase.cli._common import TRUST_HELP, ProjectOpt, app


@app.command()
def serve(
    model: Annotated[str, typer.Argument(help="NAME (follows its current version), NAME@vN, or a package folder.")],
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: a free one).")] = 8000,
    host: Annotated[str, typer.Option("--host", help="Address to bind (0.0.0.0 opens it to the network).")] = "127.0.0.1",
    onnx: Annotated[bool, typer.Option("--onnx", help="Score with the ONNX export instead of torch.")] = False,
    max_body: Annotated[int, typer.Option("--max-body", min=1, help="Largest request body in bytes.")] = 256 * 1024 * 1024,
    trust_package: Annotated[bool, typer.Option("--trust-package", help=TRUST_HELP)] = False,
    project: ProjectOpt = None,
) -> None:
    """Answer prediction requests over HTTP with the model blase predict uses.

    POST /predict takes a JSON record, a JSON array of records, or a CSV/Parquet file; GET
    /health and GET /model say what is served. NAME follows blase promote and rollback
    without a restart.

    Example: [bold]blase serve penguins --port 8000[/]
    """
    from blase.deploy import ModelService, serve_model
    from blase.project import find_project

    common.use_project(project)
    service = ModelService(find_project(), model, use_onnx=onnx, trust_package=trust_package)
    out = common.out()
    if host not in ("127.0.0.1", "localhost", "::1"):
        out.print(f"[yellow]warning:[/] --host {host}: any machine that reaches it can ask for predictions")

    def announce(url: str) -> None:
        follows = "its current version" if service.follows else "pinned"
        out.print(f"[green]blase serve[/] {service.name} ({follows}) at [bold]{url}[/]: "
                  f"POST {url}/predict, GET {url}/health, GET {url}/model  (Ctrl+C stops it)")

    try:
        serve_model(service, host=host, port=port, max_body=max_body, announce=announce)
    except KeyboardInterrupt:
        out.print("stopped")
