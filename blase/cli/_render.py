"""Rich renderings of runs for the terminal. Pure functions: data in, renderable out."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from blase.steps import Evaluation, Package

STATUS_STYLE = {
    "running": "cyan",
    "finished": "green",
    "failed": "red",
    "interrupted": "yellow",
}


def _when(iso: str | None) -> str:
    if not iso:
        return "-"
    try:
        t = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return t.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _when_short(iso: str | None) -> str:
    full = _when(iso)
    return full[5:16] if len(full) == 19 else full


def _duration(start: str | None, end: str | None) -> str:
    if not start:
        return "-"
    try:
        t0 = datetime.fromisoformat(start.replace("Z", "+00:00"))
        t1 = datetime.fromisoformat(end.replace("Z", "+00:00")) if end else datetime.now(timezone.utc)
    except ValueError:
        return "-"
    seconds = max(0.0, (t1 - t0).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        text = str(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return str(value)


def runs_table(
    runs: list[Any], *, multi_project: bool = False, max_metrics: int = 4, width: int | None = None
) -> Table:
    """A table of run summaries with the most telling metrics as columns (as many as fit)."""
    if width is not None:
        max_metrics = max(1, min(max_metrics, (width - 66 - (12 if multi_project else 0)) // 15))
    counts = Counter(name for r in runs for name in r.metrics)
    # the pipeline's bookkeeping (rows, seconds, peak RSS per step) and per-batch series make
    # poor columns: show the metrics people compare runs by, test metrics first
    bookkeeping = (".rows_in", ".rows_out", ".rows_rejected", ".seconds", ".peak_rss_bytes")
    ranked = sorted(
        (name for name in counts if not name.endswith(bookkeeping) and not name.startswith("batch_")),
        key=lambda n: (not n.startswith("test."), n.startswith("baseline."), -counts[n], n),
    )
    metric_names = ranked[:max_metrics]
    table = Table(header_style="bold", box=None, pad_edge=False)
    table.add_column("id", style="bold", no_wrap=True, min_width=12)
    table.add_column("name", max_width=24, overflow="ellipsis", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("took", justify="right", no_wrap=True)
    if multi_project:
        table.add_column("project")
    for name in metric_names:
        table.add_column(name, justify="right", overflow="fold")
    for r in runs:
        row = [
            r.id,
            r.name,
            Text(r.status, style=STATUS_STYLE.get(r.status, "")),
            _when_short(r.started_at),
            _duration(r.started_at, r.ended_at),
        ]
        if multi_project:
            row.append(str(r.project).rsplit("/", 1)[-1])
        row += [fmt_value(r.metrics[m]) if m in r.metrics else "" for m in metric_names]
        table.add_row(*row)
    hidden = len(counts) - len(metric_names)
    if hidden > 0:
        table.caption = f"{hidden} more metric(s) not shown: blase inspect RUN or --json"
    return table


def _kv_table(title: str, items: dict[str, Any]) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", box=None, show_header=False)
    table.add_column("key", style="dim")
    table.add_column("value", overflow="fold")
    for key, value in items.items():
        table.add_row(str(key), fmt_value(value))
    return table


def metrics_vs_baseline(evaluation: Evaluation) -> Table:
    """Test metrics next to the trivial baseline's, from an evaluate step's typed output."""
    metrics, baseline = evaluation.metrics, evaluation.baseline
    table = Table(title="test metrics", title_justify="left", title_style="bold", box=None)
    table.add_column("metric")
    table.add_column("model", justify="right")
    table.add_column("baseline", justify="right")
    for name, value in metrics.items():
        if isinstance(value, (int, float)) or value is None:
            base = baseline.get(name)
            table.add_row(name, fmt_value(value) if value is not None else "n/a",
                          fmt_value(base) if isinstance(base, (int, float)) else "")
    return table


def schema_table(report: Any) -> Group:
    """Column kinds, stats and suggestions of a schema report."""
    data = report.to_json()
    table = Table(header_style="bold", box=None)
    for col in ("column", "type", "kind", "nulls", "distinct", "suggestions"):
        table.add_column(col, overflow="fold")
    for c in data.get("columns", []):
        tips = [f"{s.get('action')}: {s.get('detail', '')}".rstrip(": ") for s in c.get("suggestions", [])]
        tips += [f"[yellow]{w}[/]" for w in c.get("warnings", [])]
        table.add_row(c["name"], str(c.get("dtype", "")), str(c.get("kind", "")),
                      f"{c.get('null_share', 0):.1%}", str(c.get("cardinality", "")), "\n".join(tips))
    parts: list[Any] = [table]
    candidates = data.get("label_candidates") or []
    if candidates:
        names = [c if isinstance(c, str) else c.get("name", str(c)) for c in candidates]
        parts.append(Text(f"label candidates: {', '.join(names)}"))
    for warning in data.get("warnings", []):
        parts.append(Text(f"warning: {warning}", style="yellow"))
    return Group(*parts)


def run_panel(run: Any, *, brief: bool = False) -> Group:
    """Everything about one run, in sections (``brief``: no params, history or hashes)."""
    from blase.resources import format_size

    status = Text(run.status, style=STATUS_STYLE.get(run.status, ""))
    header = Text.assemble(
        ("run ", "bold"), (run.id, "bold"), f"  {run.name}  ", status,
        f"\n  started {_when(run.started_at)}, took {_duration(run.started_at, run.ended_at)}",
        f"\n  project {run.project}",
    )
    parts: list[Any] = [header]
    if getattr(run, "parent", None):
        parts.append(Text(f"  parent {run.parent}"))
    if getattr(run, "error", None):
        err = run.error
        message = err.get("message", "") if isinstance(err, dict) else str(err)
        kind = err.get("type", "error") if isinstance(err, dict) else "error"
        parts.append(Text(f"\n{kind}: {message}", style="red"))
    if run.params and not brief:
        parts.append(_kv_table("\nparams", run.params))
    if run.metrics and not brief:
        history = getattr(run, "metric_history", {}) or {}
        table = Table(title="\nmetrics", title_justify="left", title_style="bold", box=None)
        table.add_column("name", style="dim")
        table.add_column("latest", justify="right")
        table.add_column("points", justify="right")
        table.add_column("min", justify="right")
        table.add_column("max", justify="right")
        for name, value in run.metrics.items():
            points = history.get(name, [])
            values = [p["value"] for p in points if isinstance(p.get("value"), (int, float))]
            table.add_row(
                name,
                fmt_value(value),
                str(len(points)),
                fmt_value(min(values)) if values else "",
                fmt_value(max(values)) if values else "",
            )
        parts.append(table)
    if run.tags:
        parts.append(_kv_table("\ntags", run.tags))
    if getattr(run, "artifacts", None):
        table = Table(title="\nartifacts", title_justify="left", title_style="bold", box=None)
        table.add_column("name")
        table.add_column("size", justify="right")
        table.add_column("hash", style="dim")
        for a in run.artifacts:
            table.add_row(a["name"], format_size(a["size"]), a["hash"][:16])
        parts.append(table)
    if getattr(run, "events", None) and not brief:
        parts.append(_kv_table("\nevents", dict(run.events)))
    steps = [e for e in getattr(run, "event_list", []) or [] if e.get("event") in ("step", "step_reused", "step_failed")]
    if steps:
        parts.append(steps_table(steps))
    if getattr(run, "hashes", None) and not brief:
        parts.append(_kv_table("\nhashes", run.hashes))
    resources = getattr(run, "resources", None)
    if resources and resources.get("samples"):
        shown = {}
        for key, value in resources.items():
            if value is None:
                continue
            if key.endswith("_bytes") and isinstance(value, (int, float)):
                shown[key.removesuffix("_bytes")] = format_size(int(value))
            else:
                shown[key] = value
        parts.append(_kv_table("\nresources", shown))
    for damage in getattr(run, "damage", []) or []:
        parts.append(Text(f"warning: {damage}", style="yellow"))
    for event in [] if brief else getattr(run, "event_list", []) or []:  # what the steps warned about
        data = event.get("data") or {}
        if event.get("event") == "warning" and data.get("message"):
            where = f"{data['step']}: " if data.get("step") else ""
            parts.append(Text(f"warning: {where}{data['message']}", style="yellow"))
    return Group(*parts)


def steps_table(events: list[dict[str, Any]]) -> Table:
    """One row per pipeline step: status, rows in/out/rejected, time, peak memory."""
    from blase.resources import format_size

    table = Table(title="\nsteps", title_justify="left", title_style="bold", box=None)
    for col, justify in (("step", "left"), ("status", "left"), ("rows in", "right"), ("rows out", "right"),
                         ("rejected", "right"), ("time", "right"), ("peak RSS", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for e in events:
        d = e.get("data") or {}
        kind = e.get("event")
        if kind == "step_failed":
            table.add_row(d.get("step", "?"), Text("failed", style="red"), "", "", "", "", "")
            continue
        cached = (d.get("details") or {}).get("cache", {}).get("hit") if isinstance(d.get("details"), dict) else False
        if kind == "step_reused":
            status = Text("reused", style="dim")
        elif cached:
            status = Text("cached", style="dim")
        else:
            status = Text("ok", style="green")
        peak = d.get("peak_rss_bytes")
        table.add_row(
            d.get("step", "?"), status,
            f"{d['rows_in']:,}" if d.get("rows_in") else "",
            f"{d['rows_out']:,}" if d.get("rows_out") else "",
            f"{d['rows_rejected']:,}" if d.get("rows_rejected") else "",
            f"{d['seconds']:.1f}s" if isinstance(d.get("seconds"), (int, float)) else "",
            format_size(int(peak)) if isinstance(peak, (int, float)) else "",
        )
    return table


def deploy_line(package: Package, run_id: str) -> str:
    """What the pipeline's deploy step did, and why (see :mod:`blase.deploy._decide`)."""
    reason = package.reason
    if package.deployed:
        line = f"deployed [bold]{package.model} {package.version}[/] at {package.root}"
        line += " (current)" if package.promoted else ""
        line += f": {reason}" if reason else ""
        if package.previous and not package.promoted and package.version != package.previous:
            line += f"; make it current with `blase promote {package.model} {package.version}`"
        return line
    return (f"not deployed: {reason}; package it anyway with `blase deploy {run_id}` "
            "(or set deploy.always: true)")
