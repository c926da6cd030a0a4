"""A pipeline step's Track record, summarised for the model: facts, then signals.

The driver of ``blase run --autonomy`` shows the model one step at a time. :func:`step_brief`
reads the step's event (``step``, ``step_reused`` or ``step_failed``) of a pipeline run and
writes a short text: rows, rejects, warnings, the details that matter for that step, and
*signals*: observations computed by code (the best epoch was the last one, balanced accuracy
lags accuracy, the data profile suggests another imputation). Signals are hints for the
model; what runs is still decided by the gate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase.project import Project

__all__ = ["StepBrief", "data_profile", "step_brief", "step_records", "test_metrics"]

logger = logging.getLogger(__name__)

_HEADLINE = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss", "rmse", "mae", "r2")


@dataclass
class StepBrief:
    """What the model reads about one step."""

    step: str
    state: str
    text: str
    signals: list[str] = field(default_factory=list)


def step_records(run: Any) -> dict[str, dict[str, Any]]:
    """``{step: {"state": ran|cached|reused|failed, **event data}}`` of a loaded run, in order."""
    out: dict[str, dict[str, Any]] = {}
    for e in run.event_list:
        name, data = e.get("event"), dict(e.get("data") or {})
        step = data.get("step")
        if not step:
            continue
        if name == "step":
            cache = (data.get("details") or {}).get("cache") if isinstance(data.get("details"), dict) else None
            data["state"] = "cached" if isinstance(cache, dict) and cache.get("hit") else "ran"
            out[step] = data
        elif name == "step_reused":
            data["state"] = "reused"
            out[step] = data
        elif name == "step_failed":
            data["state"] = "failed"
            out[step] = data
    return out


def test_metrics(run: Any) -> dict[str, float]:
    """The headline test metrics of a run (``test.accuracy``, ...)."""
    return {k: v for k, v in run.metrics.items()
            if k.startswith("test.") and k.split(".", 1)[1] in _HEADLINE and isinstance(v, (int, float))}


def data_profile(project: Project, config: dict[str, Any]) -> dict[str, Any] | None:
    """The schema suggestions for the training data (:func:`blase.schema.suggest_schema`), or
    None when the source cannot be profiled (a database, an error)."""
    data = config.get("data") or {}
    source = data.get("source")
    if not source or "://" in str(source):
        return None
    path = Path(source) if Path(source).is_absolute() else project.root / source
    try:
        from blase.schema import suggest_schema

        return suggest_schema(str(path), label=data.get("label")).to_json()
    except Exception as exc:  # a profile is a nicety; the review goes on without it
        logger.info("no data profile for %s: %s", path, exc)
        return None


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _transform_lines(config: dict[str, Any]) -> list[str]:
    from ._proposals import inline_yaml

    steps = config.get("transform") or []
    return [f"  transform.{n}: {inline_yaml(s)}" for n, s in enumerate(steps)] or ["  (no transform steps)"]


def _impute_signal(config: dict[str, Any], profile: dict[str, Any] | None) -> list[str]:
    if not profile:
        return []
    suggested: dict[str, list[str]] = {}
    for col in profile.get("columns", []):
        for s in col.get("suggestions", []):
            if s.get("action") == "impute" and s.get("detail"):
                suggested.setdefault(str(s["detail"]), []).append(col["name"])
    out = []
    for n, step in enumerate(config.get("transform") or []):
        if not isinstance(step, dict) or step.get("op") != "impute":
            continue
        have = step.get("strategy") or "mean"
        cols = step.get("columns")
        for strategy, names in suggested.items():
            hit = [c for c in names if cols is None or c in cols]
            if strategy != have and hit:
                out.append(f"the data profile suggests impute {strategy} for {', '.join(hit[:6])}; "
                           f"transform.{n} imputes {have} (key transform.{n}.strategy)")
    return out


def step_brief(
    project: Project,
    run: Any,
    step: str,
    *,
    config: dict[str, Any],
    profile: dict[str, Any] | None = None,
    new_data: list[str] | None = None,
) -> StepBrief:
    """Summarise ``step`` of pipeline run ``run`` (a loaded :class:`~blase.track.RunDetail`)."""
    rec = step_records(run).get(step, {"state": "missing"})
    state = rec["state"]
    details = rec.get("details") if isinstance(rec.get("details"), dict) else {}
    lines = [f"Step {step} of pipeline run {run.id}: {state}"
             + (f" (from the cache of run {details.get('cache', {}).get('from_run')})" if state == "cached" else "")]
    signals: list[str] = []
    if state == "failed":
        lines.append(f"Error: {str(rec.get('error'))[:600]}")
        signals.append("the step failed: propose a config change that fixes it, or accept_step to stop here")
    elif state != "missing":
        lines.append(f"Rows in {rec.get('rows_in', 0)}, out {rec.get('rows_out', 0)}, rejected "
                     f"{rec.get('rows_rejected', 0)}; {_fmt(rec.get('seconds', 0.0))}s.")
        warnings = [str(w)[:200] for w in rec.get("warnings") or []][:5]
        lines.append("Warnings: " + ("; ".join(warnings) if warnings else "none"))
        if rec.get("rows_rejected"):
            signals.append(f"{rec['rows_rejected']} rows were rejected"
                           + (f" (see {details.get('rejects_file')})" if details.get("rejects_file") else ""))
    add = {"extract": _extract, "transform": _transform, "prepare": _prepare, "train": _train,
           "evaluate": _evaluate, "deploy": _deploy}.get(step)
    if add is not None and state not in ("failed", "missing"):
        add(project, details, config, profile, lines, signals, new_data or [])
    if step == "transform" or (state == "failed" and step in ("extract", "transform")):
        lines.append("Transform config now:")
        lines += _transform_lines(config)
    lines.append("Signals: " + ("; ".join(signals) if signals else "none"))
    return StepBrief(step=step, state=state, text="\n".join(lines), signals=signals)


def _extract(project: Project, d: dict[str, Any], config: dict[str, Any], profile: dict[str, Any] | None,
             lines: list[str], signals: list[str], new_data: list[str]) -> None:
    schema = d.get("schema") or {}
    if schema:
        lines.append("Columns: " + ", ".join(f"{k} ({v})" for k, v in list(schema.items())[:30]))
    if profile:
        nulls = [f"{c['name']} {c.get('null_share', 0):.1%}" for c in profile.get("columns", []) if c.get("null_share")]
        if nulls:
            lines.append("Missing values: " + ", ".join(nulls[:12]))
        for w in profile.get("warnings", [])[:3]:
            signals.append(f"data profile: {str(w)[:200]}")


def _transform(project: Project, d: dict[str, Any], config: dict[str, Any], profile: dict[str, Any] | None,
               lines: list[str], signals: list[str], new_data: list[str]) -> None:
    cols = d.get("columns_out") or []
    if cols:
        lines.append(f"Output columns ({len(cols)}): " + ", ".join(map(str, cols[:20])))
    if d.get("rows_filtered"):
        lines.append(f"Rows filtered: {d['rows_filtered']}")
    if d.get("unseen"):
        signals.append(f"unseen categories: {str(d['unseen'])[:200]}")
    signals += _impute_signal(config, profile)


def _prepare(project: Project, d: dict[str, Any], config: dict[str, Any], profile: dict[str, Any] | None,
             lines: list[str], signals: list[str], new_data: list[str]) -> None:
    counts = d.get("counts") or {}
    lines.append(f"Task {d.get('task')}, {d.get('n_features')} features, split {counts}")
    if isinstance(counts.get("test"), int) and counts["test"] < 100:
        signals.append(f"the test split has only {counts['test']} rows: test metrics move by several "
                       "points from a handful of rows")


def _train(project: Project, d: dict[str, Any], config: dict[str, Any], profile: dict[str, Any] | None,
           lines: list[str], signals: list[str], new_data: list[str]) -> None:
    train = config.get("train") or {}
    final = d.get("final") or {}
    ran, best = d.get("epochs_run"), d.get("best_epoch")
    lines.append(f"Model {train.get('model', 'mlp')}, epochs run {ran} (train.epochs={train.get('epochs', 10)}), "
                 f"best epoch {best}, stopped early {d.get('stopped_early')}, lr {train.get('lr')}, "
                 f"class_weights {train.get('class_weights', 'none')}")
    shown = {k: final[k] for k in ("train_loss", "val_loss", "val_accuracy", "val_rmse") if k in final}
    if shown:
        lines.append("Final epoch: " + ", ".join(f"{k} {_fmt(v)}" for k, v in shown.items()))
    if isinstance(ran, int) and isinstance(best, int) and not d.get("stopped_early"):
        if best >= ran - 1 and ran < 500:
            signals.append(f"the best validation loss came at the last epoch ({best} of {ran}): the model may "
                           f"be under-trained; train.epochs={min(ran * 2, 500)} would train longer")
        elif ran >= 10 and best <= ran // 2 and not train.get("early_stopping"):
            signals.append(f"the best epoch was {best} of {ran}: later epochs did not help; "
                           "train.early_stopping=5 would stop sooner")


def _evaluate(project: Project, d: dict[str, Any], config: dict[str, Any], profile: dict[str, Any] | None,
              lines: list[str], signals: list[str], new_data: list[str]) -> None:
    metrics, base = d.get("metrics") or {}, d.get("baseline") or {}
    shown = [f"{k} {_fmt(metrics[k])} (baseline {_fmt(base.get(k, '-'))})" for k in _HEADLINE if k in metrics]
    lines.append(f"Test metrics ({d.get('task')}, n={metrics.get('n')}): " + ", ".join(shown))
    if d.get("classes"):
        lines.append(f"Classes: {', '.join(map(str, d['classes'][:20]))}")
    acc, bal = metrics.get("accuracy"), metrics.get("balanced_accuracy")
    weights = (config.get("train") or {}).get("class_weights", "none")
    if isinstance(acc, (int, float)) and isinstance(bal, (int, float)) and acc - bal > 0.05 and weights == "none":
        signals.append(f"balanced accuracy {bal:.3f} lags accuracy {acc:.3f}: small classes are missed; "
                       "train.class_weights=balanced weighs them up")
    if isinstance(acc, (int, float)) and isinstance(base.get("accuracy"), (int, float)) and acc <= base["accuracy"] + 0.02:
        signals.append(f"accuracy {acc:.3f} barely beats the baseline {base['accuracy']:.3f}")
    r2 = metrics.get("r2")
    if isinstance(r2, (int, float)) and r2 < 0.1:
        signals.append(f"r2 {r2:.3f}: the model explains little of the target")


def _deploy(project: Project, d: dict[str, Any], config: dict[str, Any], profile: dict[str, Any] | None,
            lines: list[str], signals: list[str], new_data: list[str]) -> None:
    from blase.deploy import current_version, resolve_model

    name, version = d.get("model"), d.get("version")
    current = current_version(project, name) if name else None
    lines.append(f"Model {name} {version} packaged; current version: {current or 'none'}")
    if name and version and current and current != version:
        try:
            new_m = resolve_model(project, f"{name}@{version}").metrics
            cur_m = resolve_model(project, f"{name}@{current}").metrics
        except Exception as exc:
            logger.debug("cannot compare %s versions: %s", name, exc)
        else:
            for key in ("test.accuracy", "accuracy", "test.rmse", "rmse"):
                a, b = new_m.get(key), cur_m.get(key)
                if isinstance(a, (int, float)) and isinstance(b, (int, float)):
                    better = a > b if "accuracy" in key else a < b
                    lines.append(f"{key}: {version} {a:.4g} vs current {current} {b:.4g}")
                    if better:
                        signals.append(f"{version} scores better than the current {current} on {key}: "
                                       f"promote(name={name}, version={version}) would make it current "
                                       "(destructive: a person decides)")
                    break
    if new_data:
        signals.append("new data files in the project: " + ", ".join(new_data[:5])
                       + " (check_drift compares them with the training data; trigger_update retrains on them)")
