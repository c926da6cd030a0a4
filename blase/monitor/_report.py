"""Plots (PNG) of a check and the HTML report that embeds them (base64), for people to read.

``distribution-<column>.png``: reference vs current shares for each drifted column (and the
predictions when they drifted); ``drift-scores.png``: every column's score over its
threshold; ``history.png``: drift share and the primary metric over the model's earlier
checks (its ``monitor`` runs in Track).
"""

from __future__ import annotations

import base64
import html
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from blase._fs import atomic_path
from blase.profile import NEW_KEY, ColumnProfile, CurrentColumn

__all__ = ["monitor_history", "write_outputs"]

logger = logging.getLogger(__name__)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60] or "column"


def _shares(ref: ColumnProfile, cur: CurrentColumn) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Display bins: up to 40 value ranges for numbers, the top 20 categories otherwise."""
    if ref.kind == "numeric":
        keys = sorted({*ref.counts, *cur.counts})
        lo, hi = keys[0], keys[-1]
        edges = np.linspace(lo, hi + 1, min(40, hi - lo + 1) + 1)
        r = np.histogram(list(ref.counts), bins=edges, weights=list(ref.counts.values()))[0]
        c = np.histogram(list(cur.counts), bins=edges, weights=list(cur.counts.values()))[0]
        centres = ref.lo + (edges[:-1] + edges[1:]) / 2 * ref.width
        labels = [f"{v:.3g}" for v in centres]
    else:
        total = {k: ref.counts.get(k, 0) / max(ref.non_null, 1) + cur.counts.get(k, 0) / max(cur.non_null, 1)
                 for k in {*ref.counts, *cur.counts}}
        top = sorted(total, key=lambda k: -total[k])[:20]
        r = np.array([ref.counts.get(k, 0) for k in top], dtype=float)
        c = np.array([cur.counts.get(k, 0) for k in top], dtype=float)
        labels = ["(new)" if k == NEW_KEY else str(k)[:16] for k in top]
    return labels, r / max(r.sum(), 1), c / max(c.sum(), 1)


def distribution_png(ref: ColumnProfile, cur: CurrentColumn, path: Path, title: str) -> Path:
    """Reference vs current distribution of one column."""
    plt = _pyplot()
    labels, r, c = _shares(ref, cur)
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.bar(x - 0.2, r, width=0.4, label="reference", color="#4c72b0")
    ax.bar(x + 0.2, c, width=0.4, label="current", color="#dd8452")
    step = max(1, len(labels) // 12)
    ax.set_xticks(x[::step], labels[::step], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("share of rows")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _ratio(c: Any) -> float:
    """Score over threshold: >= 1 means drifted (p-value tests on a log scale)."""
    if c.p_value is not None:
        p = max(c.p_value, 1e-300)
        return float(np.log(p) / np.log(c.threshold)) if c.threshold else 0.0
    return float(c.score / c.threshold) if c.threshold else 0.0


def scores_png(columns: list[Any], path: Path) -> Path:
    """Each column's drift score over its threshold (1 = the threshold)."""
    plt = _pyplot()
    names = [c.column for c in columns]
    values = [min(_ratio(c), 10.0) for c in columns]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.2))
    colours = ["#c44e52" if c.drifted else "#55a868" for c in columns]
    ax.barh(names, values, color=colours)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("drift score / threshold (>= 1: drifted; capped at 10)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def monitor_history(project: Any, model: str) -> list[dict[str, Any]]:
    """The model's finished checks, oldest first: ``[{run_id, started_at, metrics}]``."""
    from blase.track import list_runs

    quoted = model.replace("'", "''")
    try:
        runs = list_runs([project.root], where=f"kind = 'monitor' AND params.model = '{quoted}'")
    except Exception:
        return []
    return [{"run_id": r.id, "started_at": r.started_at, "metrics": dict(r.metrics)}
            for r in reversed(runs) if r.status == "finished"]


def history_png(history: list[dict[str, Any]], metric: str, path: Path) -> Path:
    """Drift share and the primary metric over the checks."""
    plt = _pyplot()
    x = np.arange(1, len(history) + 1)
    share = [h["metrics"].get("drift_share", np.nan) for h in history]
    value = [h["metrics"].get(f"current.{metric}", np.nan) for h in history]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(x, share, marker="o", label="drift share", color="#c44e52")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("check")
    ax.set_ylabel("drift share")
    ax2 = ax.twinx()
    ax2.plot(x, value, marker="s", label=metric, color="#4c72b0")
    ax2.set_ylabel(metric)
    ax.set_xticks(x)
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(lines, ["drift share", metric], fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_outputs(result: Any, profile: Any, current: dict[str, CurrentColumn], project: Any, folder: Path,
                  *, report: Any = None) -> None:
    """Draw the plots into ``folder`` and write ``report.html`` (copied to ``report``)."""
    folder.mkdir(parents=True, exist_ok=True)
    plots: list[Path] = []
    try:
        for c in result.columns:
            if c.drifted and c.column in current:
                plots.append(distribution_png(profile.columns[c.column], current[c.column],
                                              folder / f"distribution-{_safe(c.column)}.png",
                                              f"{c.column}: {c.reason()}"))
        if result.columns:
            plots.append(scores_png(result.columns, folder / "drift-scores.png"))
        history = monitor_history(project, result.model)
        if result.run_id is None:
            history.append({"run_id": None, "metrics": {"drift_share": result.drift_share,
                                                         **{f"current.{k}": v for k, v in result.metrics.items()}}})
        if history:
            plots.append(history_png(history, result.primary_metric, folder / "history.png"))
    except Exception as exc:
        logger.warning("monitor plots failed: %s", exc)
    result.plots = [str(p) for p in plots]
    page = folder / "report.html"
    page.write_text(render_html(result, plots), encoding="utf-8")
    result.report = str(page)
    if report is not None:
        target = Path(report)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            shutil.copyfile(page, tmp)
        result.report = str(target)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "inf" if np.isinf(v) else f"{v:.4g}"
    return html.escape(str(v))


def _no_metrics(result: Any) -> str:
    """Why the report has no metrics: predictions or metrics were skipped, or no labels."""
    skipped = [n for n in result.notes if n.startswith(("predictions skipped", "metrics skipped"))]
    return "; ".join(skipped) if skipped else "the new data has no labels"


def render_html(result: Any, plots: list[Path]) -> str:
    """One self-contained page: summary, recommendation, per-column table, plots."""
    e = html.escape
    verdict = result.verdict
    rows = []
    for c in sorted(result.columns, key=lambda c: (not c.drifted, c.column)):
        rows.append(
            f"<tr class={'drift' if c.drifted else 'ok'}><td>{e(c.column)}</td><td>{e(c.kind)}</td>"
            f"<td>{e(c.test)}</td><td>{_fmt(c.statistic)}</td><td>{_fmt(c.p_value)}</td>"
            f"<td>{_fmt(c.psi)}</td><td>{c.reference_null_rate:.1%} / {c.current_null_rate:.1%}</td>"
            f"<td>{c.unseen_rows or ''}</td><td>{'yes' if c.drifted else 'no'}</td><td>{e(c.reason())}</td></tr>")
    metrics = "".join(
        f"<tr><td>{e(k)}</td><td>{_fmt(result.reference_metrics.get(k))}</td><td>{_fmt(v)}</td></tr>"
        for k, v in result.metrics.items() if k in ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc",
                                                    "log_loss", "rmse", "mae", "r2"))
    images = "".join(
        f"<figure><img alt='{e(p.name)}' src='data:image/png;base64,"
        f"{base64.b64encode(p.read_bytes()).decode()}'/><figcaption>{e(p.name)}</figcaption></figure>"
        for p in plots if p.is_file())
    pred = result.prediction
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Blase monitor: {e(result.model)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px}}tr.drift td{{background:#fbe3e3}}
img{{max-width:100%}}</style></head><body>
<h1>{e(result.model)} {e(result.version)}: {verdict}</h1>
<p>{result.rows:,} new rows from {e(result.data)}; {len(result.drifted_columns)} of {len(result.columns)} columns
drifted (share {result.drift_share:.0%}, dataset drift at {result.drift_threshold:.0%}: {'yes' if result.dataset_drift else 'no'}).
Prediction drift: {e(pred.reason() or 'no') if pred else 'not measured'}. Run {e(result.run_id or '-')}.</p>
<h2>Recommendation</h2><ul>{''.join(f'<li>{e(r)}</li>' for r in result.reasons)}</ul>
<h2>Columns</h2><table><tr><th>column</th><th>kind</th><th>test</th><th>statistic</th><th>p-value</th>
<th>PSI</th><th>nulls ref / new</th><th>unseen rows</th><th>drift</th><th>why</th></tr>{''.join(rows)}</table>
<h2>Metrics</h2>{'<table><tr><th>metric</th><th>reference</th><th>new</th></tr>' + metrics + '</table>'
                 if metrics else f'<p>{e(_no_metrics(result))}</p>'}
<h2>Plots</h2>{images}
<p>{''.join(f'<br>{e(n)}' for n in result.notes)}</p></body></html>
"""
