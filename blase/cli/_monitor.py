"""Monitoring and update commands: monitor, update ([5/7]).

Commands register themselves on :data:`blase.cli._common.app`; heavy imports stay inside them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from blase.cli import _common as common
from blase.cli._common import TRUST_HELP, ProjectOpt, app

_MODEL_HELP = "NAME (current version), NAME@vN, or a package folder under models/."
_BAD_ROWS_HELP = "Malformed CSV rows: error, skip or quarantine."


def _print_update(out, result) -> None:
    mark = "[green]promoted[/]" if result.promoted else "[yellow]kept as a candidate[/]"
    out.print(f"{result.model}: candidate [bold]{result.candidate_version}[/] ({result.mode}, parent "
              f"{result.parent_version}) {mark}; current is {result.current_version}")
    for reason in result.reasons:
        out.print(f"  - {reason}")
    for note in result.notes:
        out.print(f"  [dim]note: {note}[/]")
    if result.promoted:
        out.print(f"  run {result.run_id} (`blase inspect {result.run_id}`); undo the promotion with "
                  f"`blase rollback {result.model}`")
    elif result.candidate_version:
        out.print(f"  run {result.run_id} (`blase inspect {result.run_id}`); promote the candidate with "
                  f"`blase promote {result.model} {result.candidate_version}`")
    else:
        out.print(f"  run {result.run_id} (`blase inspect {result.run_id}`)")


@app.command()
def monitor(
    model: Annotated[str, typer.Argument(help=_MODEL_HELP)],
    data: Annotated[str, typer.Argument(help="New raw data (file, folder or glob); the label is optional.")],
    report: Annotated[Path | None, typer.Option("--report", help="Write the HTML report (plots embedded) here.")] = None,
    act: Annotated[bool, typer.Option("--act", help="Run `blase update` when a monitor.retrain_when trigger fires.")] = False,
    promote_if_better: Annotated[
        bool, typer.Option("--promote-if-better", help="With --act: promote the candidate when it wins.")
    ] = False,
    memory: Annotated[str | None, typer.Option("--memory", "-m", help="Memory budget, e.g. 2GB.")] = None,
    bad_rows: Annotated[str, typer.Option("--bad-rows", help=_BAD_ROWS_HELP)] = "error",
    trust_package: Annotated[bool, typer.Option("--trust-package", help=TRUST_HELP)] = False,
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check new data against a deployed model: per-column drift, prediction drift, metrics, advice.

    Example: [bold]blase monitor churn data/march.csv --report outputs/march.html[/]
    """
    from rich.table import Table

    from blase.deploy import resolve_model
    from blase.monitor import Monitor
    from blase.project import find_project

    common.use_project(project)
    found = find_project()
    package = resolve_model(found, model, trust_package=trust_package)
    result = Monitor(package, project=found, memory=memory, bad_rows=bad_rows).check(data, report=report)
    update = None
    if act and result.retrain:
        from blase.update import Update

        update = Update(package, project=found, memory=memory, bad_rows=bad_rows).run(
            data, promote_if_better=promote_if_better)
    if as_json:
        common.print_json({**result.to_json(), "update": update.to_json() if update else None})
        return
    out = common.out()
    colour = "red" if result.retrain else "yellow" if result.verdict.startswith("drift") else "green"
    verdict = f"[{colour}]{result.verdict}[/]"
    out.print(f"{result.model} {result.version} on {result.rows:,} new rows: {verdict} "
              f"({len(result.drifted_columns)} of {len(result.columns)} columns drifted)")
    table = Table(header_style="bold", box=None)
    # the test's own statistic (KS D, chi-square, normalised Wasserstein, Jensen-Shannon) and,
    # for the tests that have one, its p-value: never a mix of 1-p and distances in one column
    for col in ("column", "test", "statistic", "p-value", "PSI", "nulls ref/new", "drift"):
        table.add_column(col)
    for c in result.columns:
        table.add_row(c.column, c.test, "" if c.statistic is None else f"{c.statistic:.3g}",
                      "" if c.p_value is None else f"{c.p_value:.3g}",
                      "" if c.psi is None else f"{c.psi:.3g}",
                      f"{c.reference_null_rate:.1%}/{c.current_null_rate:.1%}",
                      "[red]yes[/]" if c.drifted else "no")
    out.print(table)
    if result.metrics:
        name = result.primary_metric
        out.print(f"{name}: {result.reference_metrics.get(name, float('nan')):.4g} at deploy -> "
                  f"{result.metrics.get(name, float('nan')):.4g} on the labelled new rows")
    for reason in result.reasons:
        out.print(f"  - {reason}")
    for note in result.notes:
        out.print(f"  [dim]note: {note}[/]")
    out.print(f"run {result.run_id}; report {result.report}")
    if act and not result.retrain:
        out.print("--act: no trigger fired, nothing to update")
    if update is not None:
        _print_update(out, update)


@app.command()
def update(
    model: Annotated[str, typer.Argument(help=_MODEL_HELP)],
    data: Annotated[str, typer.Argument(help="New labelled raw data (file, folder or glob).")],
    mode: Annotated[
        str | None, typer.Option("--mode", help="finetune (from the deployed weights) or retrain (refit the transform).")
    ] = None,
    replay: Annotated[
        float | None, typer.Option("--replay", min=0.0, max=0.99, help="Share of original rows in the training mix.")
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Training epochs (boosting rounds for xgboost and lightgbm); finetune: that many more.")] = None,
    promote_if_better: Annotated[
        bool, typer.Option("--promote-if-better", help="Promote the candidate when it wins by update.margin.")
    ] = False,
    memory: Annotated[str | None, typer.Option("--memory", "-m", help="Memory budget, e.g. 2GB.")] = None,
    bad_rows: Annotated[str, typer.Option("--bad-rows", help=_BAD_ROWS_HELP)] = "error",
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Retrain a deployed model on new data and compare it with the current one before promoting.

    Example: [bold]blase update churn data/march.csv --mode finetune --promote-if-better[/]
    """
    from blase.project import find_project
    from blase.update import Update

    common.use_project(project)
    if mode is not None and mode not in ("finetune", "retrain"):
        raise typer.BadParameter(f"--mode must be finetune or retrain, not {mode!r}")
    result = Update(model, project=find_project(), memory=memory, bad_rows=bad_rows).run(
        data, mode=mode, replay=replay, epochs=epochs, promote_if_better=promote_if_better)
    if as_json:
        common.print_json(result.to_json())
        return
    _print_update(common.out(), result)
