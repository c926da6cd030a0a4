"""A pipeline step's Track record, summarised for the model: facts, then signals.

The driver of ``blase run --autonomy`` shows the model one step at a time. :func:`step_brief`
reads the step's event (``step``, ``step_reused`` or ``step_failed``) of a pipeline run and
writes a short text: rows, rejects, warnings, then what the step's own
:meth:`~blase.steps.Step.review` says (the facts that matter for that step and *signals*:
observations computed by code, such as the best epoch was the last one), so a plugin's step
is briefed through the same contract as the built-in ones. Signals are hints for the model;
what runs is still decided by the gate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase.evaluate import HEADLINE_METRICS
from blase.project import Project
from blase.steps import ReviewContext, Step, StepOutputError, StepResult, StepReview

__all__ = ["StepBrief", "data_profile", "step_brief", "step_records", "test_metrics"]

logger = logging.getLogger(__name__)

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
            details = data.get("details") if isinstance(data.get("details"), dict) else {}
            data["state"] = "cached" if StepResult(step=step, details=details).cache_hit else "ran"
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
            if k.startswith("test.") and k.split(".", 1)[1] in HEADLINE_METRICS and isinstance(v, (int, float))}


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


def _result(rec: dict[str, Any]) -> StepResult | None:
    """The recorded result of a step that ran or came from the cache (its typed output left
    out when no loaded step defines its type)."""
    if rec.get("state") not in ("ran", "cached"):
        return None
    data = {k: v for k, v in rec.items() if k != "state"}
    try:
        return StepResult.from_json(data)
    except StepOutputError:
        return StepResult.from_json({k: v for k, v in data.items() if k != "output"})


def _header(run: Any, step: str, rec: dict[str, Any], result: StepResult | None) -> StepReview:
    """What every step's brief starts with: its state, rows, time, warnings, rejects."""
    state = rec["state"]
    cached = f" (from the cache of run {result.cached_from})" if state == "cached" and result is not None else ""
    review = StepReview(lines=[f"Step {step} of pipeline run {run.id}: {state}{cached}"])
    if state == "failed":
        review.lines.append(f"Error: {str(rec.get('error'))[:600]}")
        review.signals.append("the step failed: propose a config change that fixes it, or accept_step to stop here")
    elif state != "missing":
        review.lines.append(f"Rows in {rec.get('rows_in', 0)}, out {rec.get('rows_out', 0)}, rejected "
                            f"{rec.get('rows_rejected', 0)}; {_fmt(rec.get('seconds', 0.0))}s.")
        warnings = [str(w)[:200] for w in rec.get("warnings") or []][:5]
        review.lines.append("Warnings: " + ("; ".join(warnings) if warnings else "none"))
        if rec.get("rows_rejected"):
            rejects = result.rejects_file if result is not None else None
            review.signals.append(f"{rec['rows_rejected']} rows were rejected" + (f" (see {rejects})" if rejects else ""))
    return review


def step_brief(
    project: Project,
    run: Any,
    step: Step,
    *,
    config: dict[str, Any],
    profile: dict[str, Any] | None = None,
    new_data: list[str] | None = None,
) -> StepBrief:
    """Summarise ``step`` of pipeline run ``run`` (a loaded :class:`~blase.track.RunDetail`):
    the record every step has, then what the step's own :meth:`~blase.steps.Step.review` says."""
    rec = step_records(run).get(step.name, {"state": "missing"})
    result = _result(rec)
    review = _header(run, step.name, rec, result)
    review += step.review(result, ReviewContext(project=project, run_id=run.id, state=rec["state"], config=config,
                                                profile=profile, new_data=new_data or []))
    review.lines.append("Signals: " + ("; ".join(review.signals) if review.signals else "none"))
    return StepBrief(step=step.name, state=rec["state"], text="\n".join(review.lines), signals=review.signals)
