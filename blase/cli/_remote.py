"""``blase remote``, ``push``, ``pull`` and ``sweep``: share runs across machines, run grids.

Adapters over :mod:`blase.remote` and :mod:`blase.sweep`: parse, call, render.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from blase.cli import _common as common
from blase.cli._common import ProjectOpt, app

remote_app = typer.Typer(help="Name the remotes (buckets or shared folders) runs are pushed to.\n\n"
                         "Example: [bold]blase remote add lab s3://lab-bucket/blase[/] then [bold]blase remote list[/]",
                         no_args_is_help=True)
app.add_typer(remote_app, name="remote")


def _project(project: Any) -> Any:
    from blase.project import find_project

    common.use_project(project)
    return find_project()


@remote_app.command("add")
def remote_add(
    name: Annotated[str, typer.Argument(help="A short name, e.g. lab.")],
    url: Annotated[str, typer.Argument(help="s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX or a shared folder.")],
    endpoint_url: Annotated[str | None, typer.Option("--endpoint-url", help="An S3-compatible server (MinIO), else AWS_ENDPOINT_URL_S3.")] = None,
    project: ProjectOpt = None,
) -> None:
    """Name a remote. Credentials come from the cloud's own chain (environment, ~/.aws), never from Blase.

    Example: [bold]blase remote add lab s3://lab-bucket/blase[/] or [bold]blase remote add share /mnt/shared/blase[/]
    """
    from blase.remote import add_remote

    spec = add_remote(_project(project), name, url, endpoint_url=endpoint_url)
    common.out().print(f"[green]added[/] remote [bold]{name}[/] at {spec['url']}")


@remote_app.command("list")
def remote_list(
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the remotes as JSON.")] = False,
) -> None:
    """List the project's remotes. Example: [bold]blase remote list[/]"""
    from blase.remote import list_remotes

    remotes = list_remotes(_project(project))
    if as_json:
        common.print_json(remotes)
        return
    for name, spec in sorted(remotes.items()):
        common.out().print(f"{name}\t{spec['url']}" + (f"\t(endpoint {spec['endpoint_url']})" if spec.get("endpoint_url") else ""))
    if not remotes:
        common.out().print("no remotes: add one with `blase remote add lab s3://BUCKET/PREFIX`")


@remote_app.command("remove")
def remote_remove(name: Annotated[str, typer.Argument(help="The remote's name.")], project: ProjectOpt = None) -> None:
    """Forget a remote (nothing on it is deleted). Example: [bold]blase remote remove lab[/]"""
    from blase.remote import remove_remote

    remove_remote(_project(project), name)
    common.out().print(f"removed remote {name}")


@remote_app.command("verify")
def remote_verify(name: Annotated[str, typer.Argument(help="The remote's name.")], project: ProjectOpt = None) -> None:
    """Check that every run, step entry and package on the remote has all its objects.

    Example: [bold]blase remote verify lab[/]
    """
    from blase.remote import RemoteError, get_remote, verify_remote

    problems = verify_remote(get_remote(_project(project), name))
    if problems:
        raise RemoteError(f"remote {name} is damaged: " + "; ".join(problems[:10]),
                          hint="push the runs named again from a machine that has them")
    common.out().print(f"[green]ok[/] remote {name}: every index names only objects it holds")


@app.command()
def push(
    runs: Annotated[list[str] | None, typer.Argument(metavar="[RUN]...", help="Run ids or prefixes ('latest' works).")] = None,
    remote: Annotated[str | None, typer.Option("--remote", "-r", help="The remote's name (default: the only one).")] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Push every finished run.")] = False,
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Copy runs, their step results, code snapshots and model packages to a remote; only what it lacks is sent.

    Example: [bold]blase push latest --remote lab[/] or [bold]blase push --all --remote lab[/]
    """
    from blase.remote import RemoteError, get_remote
    from blase.remote import push as do_push

    if not runs and not all_runs:
        raise RemoteError("name the runs to push, or --all", hint="e.g. `blase push latest --remote lab`")
    found = _project(project)
    target = get_remote(found, remote)
    report = do_push(found, target, None if all_runs else list(runs or []))
    if as_json:
        common.print_json(report.to_json())
        return
    out = common.out()
    out.print(f"[green]pushed[/] {len(report.runs)} run(s) to {target.name}: sent {report.objects_sent} of "
              f"{report.objects_total} file(s), {common.size(report.bytes_sent)} of {common.size(report.bytes_total)}")
    for run_id, why in report.skipped.items():
        out.print(f"[yellow]skipped[/] {run_id}: {why}")
    for warning in report.warnings:
        out.print(f"[yellow]warning:[/] {warning}")


@app.command()
def pull(
    ref: Annotated[str, typer.Argument(metavar="RUN|MODEL@vN", help="A run id (or prefix) on the remote, or a model version.")],
    remote: Annotated[str | None, typer.Option("--remote", "-r", help="The remote's name (default: the only one).")] = None,
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Bring a run (with its step results, code snapshot and packages) or a model version from a remote.

    Example: [bold]blase pull 3fa9 --remote lab[/] then [bold]blase reproduce 3fa9 --verify[/]
    """
    from blase.remote import get_remote
    from blase.remote import pull as do_pull

    found = _project(project)
    source = get_remote(found, remote)
    report = do_pull(found, source, ref)
    if as_json:
        common.print_json(report.to_json())
        return
    what = ", ".join([*(f"run {r}" for r in report.runs), *report.models]) or ref
    common.out().print(f"[green]pulled[/] {what} from {source.name}: {report.steps} step result(s), "
                       f"{report.objects_fetched} file(s), {common.size(report.bytes_fetched)}", highlight=False)


def remote_runs_table(name: str, project: Any, as_json: bool) -> None:
    """``blase runs --remote NAME``: the runs pushed to a remote."""
    from rich.table import Table

    from blase.remote import get_remote, remote_runs

    found = remote_runs(get_remote(_project(project), name))
    if as_json:
        common.print_json(found)
        return
    table = Table(title=f"runs on {name}")
    for column in ("id", "name", "status", "started", "pushed by", "models"):
        table.add_column(column)
    for run in found:
        table.add_row(run["run"], str(run.get("name")), str(run.get("status")), str(run.get("started_at") or "")[:19],
                      str(run.get("pushed_by")), ", ".join(run.get("models") or []) + (" (pinned)" if run.get("pinned") else ""))
    common.out().print(table if found else f"no runs on {name} yet: `blase push latest --remote {name}`")


def remote_gc(name: str, project: Any, keep_last: int | None, dry_run: bool, as_json: bool) -> None:
    """``blase gc --remote NAME``: collect what no kept run on the remote needs."""
    from blase.remote import gc_remote, get_remote

    report = gc_remote(get_remote(_project(project), name), keep_last=keep_last, dry_run=dry_run)
    if as_json:
        common.print_json(report.to_json())
        return
    out = common.out()
    verb = "would remove" if dry_run else "removed"
    out.print(f"{verb} {len(report.removed_runs)} run(s) and {report.removed_files} file(s) "
              f"({common.size(report.freed_bytes)} of objects) from {name}; kept {len(report.kept_runs)} run(s)")
    for run_id, why in report.protected.items():
        out.print(f"  [dim]kept {run_id}: {why}[/]")


@app.command()
def sweep(
    sets: Annotated[list[str], typer.Option("--set", help="KEY=V1,V2,... (lists: train.hidden=[32],[64,32]); repeat for a grid.")],
    parallel: Annotated[int, typer.Option("--parallel", "-j", min=1, help="Worker processes.")] = 1,
    sample: Annotated[int | None, typer.Option("--sample", min=1, help="Run N configurations drawn at random from the grid.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of --sample.")] = 0,
    executor: Annotated[str, typer.Option("--executor", help="local (a process pool) or ray (Ray tasks; RAY_ADDRESS names a cluster).")] = "local",
    to_step: Annotated[str, typer.Option("--to", help="Last step of each run (deploy the best one yourself).")] = "evaluate",
    memory: Annotated[str | None, typer.Option("--memory", "-m", help="Memory budget per run, e.g. 2GB.")] = None,
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the sweep as JSON.")] = False,
) -> None:
    """Run a grid of configurations as separate tracked runs sharing the cached data steps, then print their results.

    Example: [bold]blase sweep --set train.lr=0.001,0.01,0.1 --set train.hidden=[32],[64,32] --parallel 2[/]
    """
    from blase.sweep import sweep as do_sweep

    out = None if as_json else common.out()

    def on_run(run: Any) -> None:
        if out is not None:
            mark = "[green]ok[/]" if run.status == "finished" else f"[red]{run.status}[/]"
            out.print(f"  {mark} {run.run_id} " + " ".join(f"{k}={v}" for k, v in run.overrides.items()))

    result = do_sweep(_project(project), sets, parallel=parallel, sample=sample, seed=seed, memory=memory,
                      to_step=to_step, executor=executor, on_run=on_run)
    if as_json:
        common.print_json(result.to_json())
        return
    assert out is not None
    out.print(_sweep_table(result))


def _sweep_table(result: Any) -> Any:
    from rich.table import Table

    metrics = sorted({m for r in result.runs for m in r.metrics if m.startswith("test.") and not m.endswith(".n")})[:4]
    table = Table(title=f"sweep {result.sweep_id}: {len(result.runs)} run(s)")
    for column in ("run", *result.keys, "status", *metrics):
        table.add_column(column)
    for run in result.runs:
        values = [f"{run.metrics[m]:.4g}" if m in run.metrics else "" for m in metrics]
        table.add_row(str(run.run_id), *(run.overrides[k] for k in result.keys), run.error or run.status, *values)
    return table
