"""Plugin commands: ``blase plugins`` (what is installed) and ``blase plugin check``.

Commands register themselves on :data:`blase.cli._app.app`; heavy imports stay inside them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from blase.cli._common import ProjectOpt, app
from blase.cli._common import out as _out
from blase.cli._common import print_json as _print_json
from blase.cli._common import use_project as _use_project

plugin_app = typer.Typer(help="Check a plugin against its kind's contract.\n\n"
                         "Example: [bold]blase plugin check scripts/report.py[/]", no_args_is_help=True)
app.add_typer(plugin_app, name="plugin")


def _listed(project_dir: str | None) -> list:
    """Installed plugins, plus the project's own files when run inside a project."""
    from blase.errors import BlaseError
    from blase.plugins import installed_plugins, project_plugins

    found = list(installed_plugins())
    try:
        from blase.config import load_config
        from blase.project import find_project

        project = find_project(project_dir)
        config = load_config(project.config_path)
        files = [e.path for e in config.plugins if e.path]
        found += project_plugins(project.root, files)
    except BlaseError:
        pass  # outside a project: installed plugins only
    return sorted(found, key=lambda p: (p.kind, p.name))


@app.command()
def plugins(
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List the plugins Blase can use: installed packages (entry points) and the project's own.

    Example: [bold]blase plugins[/] or [bold]blase plugins --json[/]
    """
    from rich.table import Table

    _use_project(project)
    found = _listed(None)
    if as_json:
        _print_json([p.to_json() for p in found])
        return
    if not found:
        _out().print("no plugins: install a package that provides one (entry point group blase.plugins), "
                     "or list your own under `plugins:` in blase.yaml; `blase create --template plugin NAME` "
                     "makes a skeleton")
        return
    table = Table(header_style="bold", box=None)
    for col in ("name", "kind", "version", "from", "missing", "description"):
        table.add_column(col, overflow="fold")
    for p in found:
        missing = ", ".join(p.missing()) or "-"
        table.add_row(p.name, p.kind, p.version, p.origin, missing, p.description)
    _out().print(table)


@plugin_app.command("check")
def check(
    target: Annotated[str, typer.Argument(help="An installed plugin's name, or a project file (scripts/x.py).")],
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Run the conformance suite of a plugin's kind (contract, JSON round trips, determinism,
    no pickle, clear errors on bad options) and list every check.

    Example: [bold]blase plugin check scripts/my_plugin.py[/]
    """
    from pathlib import Path

    from rich.table import Table

    from blase.errors import BlaseError
    from blase.plugins import PluginError, installed_plugins, project_plugins
    from blase.testing import check_plugin

    _use_project(project)
    if target.endswith(".py"):
        path = Path(target).resolve()
        try:
            from blase.project import find_project

            root = find_project(None).root
            path.relative_to(root.resolve())
        except (BlaseError, ValueError):
            root = path.parent  # a plugin file outside any project: checked on its own
        candidates = project_plugins(root, [path.relative_to(root.resolve()).as_posix()])
    else:
        candidates = [p for p in installed_plugins() if p.name == target]
        if not candidates:
            raise PluginError(f"no installed plugin is named {target!r}",
                              hint="see `blase plugins`, or pass a plugin file: `blase plugin check scripts/x.py`")
    report = []
    for plugin in candidates:
        results = check_plugin(plugin)
        report.append({"plugin": plugin.name, "kind": plugin.kind, "origin": plugin.origin,
                       "checks": [r.to_json() for r in results]})
    failed = sum(not c["passed"] for r in report for c in r["checks"])
    if as_json:
        _print_json(report)
    else:
        for r in report:
            table = Table(title=f"{r['kind']} plugin {r['plugin']} ({r['origin']})", title_justify="left", box=None)
            for col in ("check", "result", "detail"):
                table.add_column(col, overflow="fold")
            for c in r["checks"]:
                table.add_row(c["name"], "[green]pass[/]" if c["passed"] else "[red]FAIL[/]", c["detail"])
            _out().print(table)
        _out().print(f"{failed} check(s) failed" if failed else "[green]all checks passed[/]")
    if failed:
        raise typer.Exit(1)
