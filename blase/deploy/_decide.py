"""Whether a pipeline run gets a model version: a pure decision table with a reason for each row.

An experiment should not need a model version. A run deploys a new version when it is asked to
(``blase deploy RUN``), when ``deploy.promote`` or ``deploy.always`` is set, when the model has
no current version yet (the first deploy, which also becomes current), or when its test metric
(:func:`blase.evaluate.primary_metric`: accuracy, or RMSE for regression) beats the current
version's. Otherwise the deploy step records why it did not deploy, and ``blase deploy RUN``
packages the run later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DeployDecision", "decide_deploy"]


@dataclass(frozen=True)
class DeployDecision:
    deploy: bool
    promote: bool
    reason: str


def _beats(new: Any, old: Any, higher: bool) -> bool | None:
    if not isinstance(new, (int, float)) or not isinstance(old, (int, float)):
        return None
    return new > old if higher else new < old


def decide_deploy(
    *,
    name: str,
    task: str | None,
    metrics: dict[str, Any],
    current: str | None,
    current_metrics: dict[str, Any] | None,
    asked: bool = False,
    promote: bool = False,
    always: bool = False,
) -> DeployDecision:
    """Decide for a run with test ``metrics``, given the model's ``current`` version and its metrics."""
    from blase.evaluate import primary_metric

    if asked:
        return DeployDecision(True, promote or current is None, "asked for (blase deploy)")
    if promote:
        return DeployDecision(True, True, "deploy.promote is set")
    if current is None:
        return DeployDecision(True, True, f"first version of {name}")
    if always:
        return DeployDecision(True, False, "deploy.always is set")
    metric, higher = primary_metric(task)
    new, old = metrics.get(metric), (current_metrics or {}).get(metric)
    better = _beats(new, old, higher)
    if better is None:
        missing = "this run has" if not isinstance(new, (int, float)) else f"{name} {current} has"
        return DeployDecision(True, False, f"{missing} no test {metric} to compare")
    if better:
        return DeployDecision(True, False, f"test {metric} {new:.4g} beats {old:.4g} of {name} {current} (current)")
    return DeployDecision(False, False, f"test {metric} {new:.4g} does not beat {old:.4g} of {name} {current} "
                                        "(current)")
