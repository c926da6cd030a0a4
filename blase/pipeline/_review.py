"""The built-in steps' reviews (:meth:`blase.steps.Step.review`): the facts about one
execution that matter for that step, and the signals code can compute from them.

The assistant under ``blase run --autonomy`` reads these after each step; the wording is
written for it (config keys it can change, the tool that would act), but nothing here calls a
model. Each function takes the step's recorded :class:`~blase.steps.StepResult` and a
:class:`~blase.steps.ReviewContext` and returns a :class:`~blase.steps.StepReview`.
"""

from __future__ import annotations

import logging
from typing import Any

from blase.steps import Evaluation, Extracted, Package, ReviewContext, StepResult, StepReview

__all__ = ["review_deploy", "review_evaluate", "review_extract", "review_prepare", "review_train",
           "review_transform", "transform_lines"]

logger = logging.getLogger(__name__)



def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def transform_lines(config: dict[str, Any]) -> list[str]:
    """The transform steps of ``config`` as the keys a ``--set`` can change."""
    from blase.config import inline_yaml

    steps = config.get("transform") or []
    return ["Transform config now:"] + (
        [f"  transform.{n}: {inline_yaml(s)}" for n, s in enumerate(steps)] or ["  (no transform steps)"])


def review_extract(result: StepResult | None, ctx: ReviewContext) -> StepReview:
    """The columns read, the missing values the profile found; the transform config after a failure."""
    if ctx.state == "failed":
        return StepReview(lines=transform_lines(ctx.config))
    review = StepReview()
    if result is None or not ctx.finished:
        return review
    schema = result.output.schema if isinstance(result.output, Extracted) else {}
    if schema:
        review.lines.append("Columns: " + ", ".join(f"{k} ({v})" for k, v in list(schema.items())[:30]))
    profile = ctx.profile
    if profile:
        nulls = [f"{c['name']} {c.get('null_share', 0):.1%}" for c in profile.get("columns", []) if c.get("null_share")]
        if nulls:
            review.lines.append("Missing values: " + ", ".join(nulls[:12]))
        for w in profile.get("warnings", [])[:3]:
            review.signals.append(f"data profile: {str(w)[:200]}")
    return review


def review_transform(result: StepResult | None, ctx: ReviewContext) -> StepReview:
    """Output columns, filtered rows, unseen categories, the profile's imputation advice, and
    the transform config (whatever the step's state)."""
    review = StepReview()
    if result is not None and ctx.finished:
        d = result.details
        cols = d.get("columns_out") or []
        if cols:
            review.lines.append(f"Output columns ({len(cols)}): " + ", ".join(map(str, cols[:20])))
        if d.get("rows_filtered"):
            review.lines.append(f"Rows filtered: {d['rows_filtered']}")
        if d.get("unseen"):
            review.signals.append(f"unseen categories: {str(d['unseen'])[:200]}")
        review.signals += _impute_signal(ctx.config, ctx.profile)
    review.lines += transform_lines(ctx.config)
    return review


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


def review_prepare(result: StepResult | None, ctx: ReviewContext) -> StepReview:
    """The task, the feature count and the split sizes; a warning for a tiny test split."""
    review = StepReview()
    if result is None or not ctx.finished:
        return review
    d = result.details
    counts = d.get("counts") or {}
    review.lines.append(f"Task {d.get('task')}, {d.get('n_features')} features, split {counts}")
    if isinstance(counts.get("test"), int) and counts["test"] < 100:
        review.signals.append(f"the test split has only {counts['test']} rows: test metrics move by several "
                              "points from a handful of rows")
    return review


def review_train(result: StepResult | None, ctx: ReviewContext) -> StepReview:
    """Epochs run and the best one, the last epoch's losses; signals for under- and over-training."""
    review = StepReview()
    if result is None or not ctx.finished:
        return review
    d, train = result.details, ctx.config.get("train") or {}
    final = d.get("final") or {}
    ran, best = d.get("epochs_run"), d.get("best_epoch")
    review.lines.append(
        f"Model {train.get('model', 'mlp')}, epochs run {ran} (train.epochs={train.get('epochs', 10)}), "
        f"best epoch {best}, stopped early {d.get('stopped_early')}, lr {train.get('lr')}, "
        f"class_weights {train.get('class_weights', 'none')}")
    shown = {k: final[k] for k in ("train_loss", "val_loss", "val_accuracy", "val_rmse") if k in final}
    if shown:
        review.lines.append("Final epoch: " + ", ".join(f"{k} {_fmt(v)}" for k, v in shown.items()))
    if isinstance(ran, int) and isinstance(best, int) and not d.get("stopped_early"):
        if best >= ran - 1 and ran < 500:
            review.signals.append(f"the best validation loss came at the last epoch ({best} of {ran}): the model "
                                  f"may be under-trained; train.epochs={min(ran * 2, 500)} would train longer")
        elif ran >= 10 and best <= ran // 2 and not train.get("early_stopping"):
            review.signals.append(f"the best epoch was {best} of {ran}: later epochs did not help; "
                                  "train.early_stopping=5 would stop sooner")
    return review


def review_evaluate(result: StepResult | None, ctx: ReviewContext) -> StepReview:
    """The headline test metrics against the baseline; signals for missed classes and weak models."""
    from blase.evaluate import HEADLINE_METRICS  # numpy and pyarrow: not for a cached `blase run`

    review = StepReview()
    if result is None or not ctx.finished:
        return review
    output = result.output if isinstance(result.output, Evaluation) else None
    d = result.details
    metrics = output.metrics if output is not None else d.get("metrics") or {}
    base = output.baseline if output is not None else d.get("baseline") or {}
    shown = [f"{k} {_fmt(metrics[k])} (baseline {_fmt(base.get(k, '-'))})" for k in HEADLINE_METRICS if k in metrics]
    review.lines.append(f"Test metrics ({d.get('task')}, n={metrics.get('n')}): " + ", ".join(shown))
    if d.get("classes"):
        review.lines.append(f"Classes: {', '.join(map(str, d['classes'][:20]))}")
    acc, bal = metrics.get("accuracy"), metrics.get("balanced_accuracy")
    weights = (ctx.config.get("train") or {}).get("class_weights", "none")
    if _is_number(acc) and _is_number(bal) and acc - bal > 0.05 and weights == "none":
        review.signals.append(f"balanced accuracy {bal:.3f} lags accuracy {acc:.3f}: small classes are missed; "
                              "train.class_weights=balanced weighs them up")
    if _is_number(acc) and _is_number(base.get("accuracy")) and acc <= base["accuracy"] + 0.02:
        review.signals.append(f"accuracy {acc:.3f} barely beats the baseline {base['accuracy']:.3f}")
    r2 = metrics.get("r2")
    if _is_number(r2) and r2 < 0.1:
        review.signals.append(f"r2 {r2:.3f}: the model explains little of the target")
    return review


def review_deploy(result: StepResult | None, ctx: ReviewContext) -> StepReview:
    """The version packaged against the current one; new data files worth a drift check."""
    from blase.deploy import current_version

    review = StepReview()
    if result is None or not ctx.finished:
        return review
    package = result.output if isinstance(result.output, Package) else Package()
    name, version = package.model or None, package.version
    current = current_version(ctx.project, name) if name else None
    review.lines.append(f"Model {name} {version} packaged; current version: {current or 'none'}")
    if name and version and current and current != version:
        review += _compare_versions(ctx, name, version, current)
    if ctx.new_data:
        review.signals.append("new data files in the project: " + ", ".join(ctx.new_data[:5])
                              + " (check_drift compares them with the training data; trigger_update retrains on them)")
    return review


def _compare_versions(ctx: ReviewContext, name: str, version: str, current: str) -> StepReview:
    from blase.deploy import resolve_model

    review = StepReview()
    try:
        new_m = resolve_model(ctx.project, f"{name}@{version}").metrics
        cur_m = resolve_model(ctx.project, f"{name}@{current}").metrics
    except Exception as exc:  # a comparison is a nicety; the review goes on without it
        logger.debug("cannot compare %s versions: %s", name, exc)
        return review
    for key in ("test.accuracy", "accuracy", "test.rmse", "rmse"):
        a, b = new_m.get(key), cur_m.get(key)
        if _is_number(a) and _is_number(b):
            better = a > b if "accuracy" in key else a < b
            review.lines.append(f"{key}: {version} {a:.4g} vs current {current} {b:.4g}")
            if better:
                review.signals.append(f"{version} scores better than the current {current} on {key}: "
                                      f"promote(name={name}, version={version}) would make it current "
                                      "(destructive: a person decides)")
            break
    return review
