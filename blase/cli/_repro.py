"""Reproducibility commands: inspect --lineage, trace, reproduce, diff, restore, gc, pin ([4/7]).

Commands register themselves on :data:`blase.cli._common.app`; heavy imports stay inside them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from blase.cli import _common as common
from blase.cli._common import ProjectOpt, app


def _short(value: Any, n: int = 12) -> str:
    text = str(value)
    return text[:n] if len(text) == 32 and all(c in "0123456789abcdef" for c in text) else text


def _step_rows(steps: list[Any]) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(header_style="bold", box=None, show_lines=False)
    for col in ("step", "key", "status", "inputs", "code", "config", "outputs"):
        table.add_column(col, overflow="fold")
    for s in steps:
        status = f"cached ({s.from_run})" if s.cached else "ran"
        if not s.in_store:
            status += ", [yellow]not in store[/]"
        inputs = "\n".join(f"{escape(k)} {_short(v, 8)}" for k, v in s.inputs.items())
        code = "\n".join(f"{escape(k)} {_short(v, 8)}" for k, v in s.code.items()) or "-"
        files = list(s.outputs.items())
        outputs = "\n".join(f"{escape(k)} {_short(v, 8)}" for k, v in files[:6])
        if len(files) > 6:
            outputs += f"\n... {len(files) - 6} more"
        table.add_row(s.step, _short(s.key), status, inputs, code, _short(s.config_hash, 8), outputs)
    return table


def show_lineage(ref: str, *, as_json: bool = False) -> None:
    """``blase inspect RUN --lineage``: per step its inputs, outputs, code and config hashes."""
    from blase.lineage import run_lineage
    from blase.project import find_project

    lineage = run_lineage(find_project(), ref)
    if as_json:
        common.print_json(lineage.to_json())
        return
    out = common.out()
    out.print(f"[bold]lineage of run {lineage.run_id}[/]" + (f"  (parent {lineage.parent})" if lineage.parent else ""))
    out.print(_step_rows(lineage.steps))
    if lineage.code_snapshot:
        out.print("\n[bold]code snapshot[/]")
        for rel, digest in lineage.code_snapshot.items():
            out.print(f"  {rel}  [dim]{_short(digest)}[/]")
    if lineage.deployed:
        out.print(f"\ndeployed as [bold]{lineage.deployed.get('model')} {lineage.deployed.get('version')}[/]")


@app.command()
def trace(
    target: Annotated[str, typer.Argument(help="NAME, NAME@vN, a file path, or a content hash (prefix).")],
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the trace as JSON.")] = False,
) -> None:
    """Walk back from a deployed model or an artifact to the raw files and code that made it.

    Example: [bold]blase trace penguins@v2[/] or [bold]blase trace outputs/3fa9/predictions.parquet[/]
    """
    from blase.lineage import trace as do_trace
    from blase.project import find_project

    common.use_project(project)
    found = do_trace(find_project(), target)
    if as_json:
        common.print_json(found.to_json())
        return
    out = common.out()
    what = f"model {found.model['name']} {found.model['version']}" if found.model else f"{found.kind} {target}"
    out.print(f"[bold]{what}[/] <- {found.step} of run {found.run_id}" + (f" ({found.file})" if found.file else ""))
    for s in found.chain:
        ins = ", ".join(f"{k} {_short(v, 8)}" for k, v in s.inputs.items())
        code = ", ".join(f"{k} {_short(v, 8)}" for k, v in s.code.items())
        out.print(f"  <- [bold]{s.step}[/] key {_short(s.key)} from {ins}" + (f"; code {code}" if code else "")
                  + f"; config {_short(s.config_hash, 8)}")
    for rel, info in found.raw.items():
        colour = {"unchanged": "green", "changed": "yellow", "missing": "red"}[info["now"]]
        out.print(f"  raw [bold]{rel}[/] {_short(info['hash'])} [{colour}]{info['now']}[/]")
    if found.code:
        out.print("  code " + ", ".join(f"{rel} {_short(h, 8)}" for rel, h in found.code.items()))


@app.command()
def reproduce(
    run: Annotated[str, typer.Argument(help="Run id, a unique prefix of it, or 'latest'.")],
    verify: Annotated[bool, typer.Option("--verify", help="Compare every step's outputs and the weights.")] = False,
    memory: Annotated[str | None, typer.Option("--memory", "-m", help="Memory budget, e.g. 2GB.")] = None,
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Re-execute a run from its recorded config and code snapshot, as a new linked run.

    Example: [bold]blase reproduce 3fa9 --verify[/]
    """
    from blase.project import find_project
    from blase.reproduce import reproduce as do_reproduce

    common.use_project(project)
    result = do_reproduce(find_project(), run, verify=verify, memory=memory)
    if as_json:
        common.print_json(result.to_json())
    else:
        out = common.out()
        out.print(f"new run [bold]{result.run_id}[/] (reproduce_of {result.original})")
        if result.verified:
            for step, same in result.compared.items():
                out.print(f"  {'[green]same[/]' if same else '[red]differs[/]'} {step}")
            if result.weights_identical is not None:
                out.print(f"  weights {'bit-identical' if result.weights_identical else '[red]differ[/]'}")
        colour = "green" if result.identical or not result.verified else "red"
        out.print(f"[{colour}]{result.summary}[/]")
    if result.verified and not result.identical:
        raise typer.Exit(1)


@app.command()
def diff(
    run_a: Annotated[str, typer.Argument(metavar="RUN_A", help="First run.")],
    run_b: Annotated[str, typer.Argument(metavar="RUN_B", help="Second run.")],
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Compare two runs: params, code, data, environment, metrics and predictions.

    Example: [bold]blase diff a1 b2[/]
    """
    from rich.markup import escape
    from rich.table import Table

    from blase.cli._render import fmt_value
    from blase.diff import diff_runs
    from blase.project import find_project

    common.use_project(project)
    d = diff_runs(find_project(), run_a, run_b)
    if as_json:
        common.print_json(d.to_json())
        return
    out = common.out()
    out.print(f"[bold]{d.a}[/] -> [bold]{d.b}[/]")

    def pairs(title: str, items: dict[str, list[Any]]) -> None:
        if not items:
            return
        table = Table(title=title, title_justify="left", title_style="bold", box=None)
        for col in ("key", d.a, d.b):
            table.add_column(col, overflow="fold")
        for key, (a, b) in items.items():
            table.add_row(escape(key), escape(fmt_value(a)), escape(fmt_value(b)))
        out.print(table)

    pairs("\nparams", d.params)
    pairs("\nrun", d.run)
    for rel, text in d.code.items():
        out.print(f"\n[bold]code {escape(rel)}[/]")
        out.print(escape(text.rstrip("\n")))
    if d.config_file:
        out.print("\n[bold]blase.yaml[/]")
        out.print(escape(d.config_file.rstrip("\n")))
    pairs("\ndata", d.data)
    changed = [s for s, same in d.outputs.items() if not same]
    if d.outputs:
        out.print("\n[bold]step outputs[/] " + (", ".join(f"{s} differs" for s in changed) or "all the same"))
    pairs("\nenvironment", d.environment)
    timing = (".seconds", ".peak_rss_bytes", "samples_per_s", "train_seconds", "data_wait_share")
    shown = {k: m for k, m in d.metrics.items() if m["a"] != m["b"] and not k.endswith(timing)}
    if shown:
        table = Table(title="\nmetrics", title_justify="left", title_style="bold", box=None)
        for col, justify in (("metric", "left"), (d.a, "right"), (d.b, "right"), ("delta", "right")):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for name, m in shown.items():
            delta = m["delta"]
            shown = "" if delta is None else (f"{delta:+.4g}" if delta else "0")
            table.add_row(name, fmt_value(m["a"]) if m["a"] is not None else "-",
                          fmt_value(m["b"]) if m["b"] is not None else "-", shown)
        out.print(table)
    if d.metrics:
        out.print(f"[dim]{len(d.metrics) - len(shown)} other metric(s) equal or timings only (--json lists all)[/]")
    if d.predictions:
        p = d.predictions
        rate = "n/a" if p["agreement"] is None else f"{p['agreement']:.2%}"
        out.print(f"\n[bold]predictions[/] agree on {rate} of {p['rows']:,} common rows")
    for note in d.notes:
        out.print(f"[yellow]note:[/] {note}")


@app.command()
def restore(
    run: Annotated[str, typer.Argument(help="Run id, a unique prefix of it, or 'latest'.")],
    step: Annotated[str, typer.Option("--step", help="The step whose output to restore (extract .. evaluate).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="A new folder to write the data into.")],
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Write the data as it was after a step of a run (from the store, or recomputed).

    Example: [bold]blase restore 3fa9 --step transform --out old_transform/[/]
    """
    from blase.project import find_project
    from blase.reproduce import restore as do_restore

    common.use_project(project)
    result = do_restore(find_project(), run, step, out)
    if as_json:
        common.print_json(result.to_json())
        return
    how = "from the store" if result.source == "store" else f"recomputed (run {result.recomputed_in})"
    common.out().print(f"[green]restored[/] {step} of run {result.run_id} {how} to {result.out}")
    if not result.matches_record:
        common.out().print("[yellow]warning:[/] the recomputed data differs from what the run recorded")


@app.command()
def gc(
    keep_last: Annotated[int | None, typer.Option("--keep-last", min=0, help="Keep what the newest N runs need.")] = None,
    max_size: Annotated[str | None, typer.Option("--max-size", help="Then shrink the store to this size, e.g. 20GB.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what would be freed.")] = False,
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    remote: Annotated[str | None, typer.Option("--remote", help="Collect this remote instead (pinned and deployed runs stay).")] = None,
) -> None:
    """Free cached step results, code snapshots and artifacts that no kept run needs.

    Pinned runs and the runs behind deployed models are always kept.

    Example: [bold]blase gc --keep-last 5 --dry-run[/]
    """
    if remote is not None:
        from blase.cli._remote import remote_gc

        return remote_gc(remote, project, keep_last, dry_run, as_json)
    from blase.gc import collect
    from blase.project import find_project

    common.use_project(project)
    report = collect(find_project(), keep_last=keep_last, max_size=max_size, dry_run=dry_run)
    if as_json:
        common.print_json(report.to_json())
        return
    out = common.out()
    verb = "would free" if dry_run else "freed"
    out.print(f"{verb} {common.size(report.freed_bytes)}: {len(report.entries)} step result(s), "
              f"{len(report.objects)} stored file(s), {len(report.temporary)} leftover folder(s)")
    for e in report.entries:
        out.print(f"  {e['step']:<9} {_short(e['key'])} of run {e['run']}  {common.size(e['bytes'])}")
    for run_id, why in report.protected.items():
        out.print(f"  [dim]kept {run_id}: {why}[/]")
    out.print(f"store now {common.size(report.store_bytes)}; kept {len(report.kept_runs)} run(s)")


@app.command()
def pin(
    run: Annotated[str, typer.Argument(help="Run id, a unique prefix of it, or 'latest'.")],
    unpin: Annotated[bool, typer.Option("--unpin", help="Remove the pin instead.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Protect a run's cached results and code snapshot from `blase gc` (or --unpin).

    Example: [bold]blase pin 3fa9[/]
    """
    from blase.gc import pin as do_pin
    from blase.gc import unpin as do_unpin
    from blase.project import find_project

    common.use_project(project)
    found = find_project()
    if unpin:
        common.out().print(f"unpinned run {do_unpin(found, run)}")
    else:
        common.out().print(f"pinned run {do_pin(found, run)}: `blase gc` keeps what it needs")
