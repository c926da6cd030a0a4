"""Reading steps back from a run's record: what ``--resume``, ``--from``, ``blase deploy RUN``
and ``blase update`` continue from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from blase.steps._outputs import StepOutputError
from blase.steps._result import StepResult

if TYPE_CHECKING:
    from blase.project import Project

__all__ = ["BUILTIN_STEPS", "finished_steps", "latest_with", "step_records"]

#: The built-in pipeline, in order.
BUILTIN_STEPS: tuple[str, ...] = ("extract", "transform", "prepare", "train", "evaluate", "deploy")


def _from_event(name: str, fields: dict[str, Any]) -> StepResult | None:
    try:
        if name == "step":
            return StepResult.from_json(fields)
        return StepResult.from_json({"step": fields["step"], "outputs": fields.get("outputs", {}),
                                     "details": fields.get("details", {}), "output": fields.get("output")})
    except StepOutputError:
        return None


def _usable(result: StepResult | None) -> bool:
    """A recorded step can be continued from while its output folder still exists."""
    return result is not None and result.output is not None and result.output.root.exists()


def finished_steps(project: Project, ref: str, order: Sequence[str] = BUILTIN_STEPS
                   ) -> tuple[str, dict[str, StepResult]]:
    """The steps run ``ref`` finished (its own or reused ones) whose outputs still exist:
    the longest prefix of ``order`` (only a prefix can be continued from)."""
    from blase.track import load_run

    run = load_run(ref, [project.root], history=False)
    found: dict[str, StepResult | None] = {}
    for record in run.event_list:
        name, fields = record.get("event"), record.get("data") or {}
        if name in ("step", "step_reused") and fields.get("step") in order:
            found[fields["step"]] = _from_event(name, fields)
    usable: dict[str, StepResult] = {}
    for step in order:
        if not _usable(found.get(step)):
            break
        usable[step] = found[step]  # type: ignore[assignment]
    return run.id, usable


def latest_with(project: Project, steps: Sequence[str], order: Sequence[str] = BUILTIN_STEPS
                ) -> tuple[str | None, dict[str, StepResult]]:
    """The newest pipeline run that finished all of ``steps`` (and those steps)."""
    from blase.track import list_runs

    for summary in list_runs([project.root]):
        if summary.kind != "pipeline":
            continue
        run_id, usable = finished_steps(project, summary.id, order)
        if all(s in usable for s in steps):
            return run_id, usable
    return None, {}


def step_records(project: Project, ref: str) -> dict[str, dict[str, Any]]:
    """``{step: step_cache event data}`` of run ``ref``: key, components, output digest and
    output files of each step it ran or took from the cache."""
    from blase.track import load_run

    run = load_run(ref, [project.root], history=False)
    return {
        (e.get("data") or {}).get("step"): e.get("data") or {}
        for e in run.event_list
        if e.get("event") == "step_cache"
    }
