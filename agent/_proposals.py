"""What the assistant may propose while it drives the pipeline (``blase run --autonomy``).

Two tools of its own, built like :mod:`blase.tools` (pydantic input and output models, a risk
class, the ``blase`` command a person would type) but kept out of the shared registry, so the
chat assistant's tool list stays as it is:

- ``propose_config_change(key, value, reason)`` (write): set one ``blase.yaml`` key for the
  following runs and re-run the pipeline from the step the key affects. The change is checked
  against :class:`~blase.config.ProjectConfig` before anything runs (an invalid one goes back
  to the model as a tool error); ``blase.yaml`` itself is never edited, the change travels as
  ``--set``.
- ``accept_step(reason)`` (read): nothing to change after this step; go on.

:func:`plan_change` is the pure part: a proposed key and value against the project's config
and the overrides so far, as the ``--set`` pair, the step to re-run from and the exact
command.
"""

from __future__ import annotations

import copy
import logging
import shlex
from dataclasses import dataclass
from typing import Any

import yaml
from blase.tools import Tool, ToolContext, ToolError, ToolInput, ToolOutput, confine_path
from pydantic import Field, field_validator

from blase.config import inline_yaml
from blase.project import Project

__all__ = [
    "AcceptInput",
    "AcceptOutput",
    "ConfigChange",
    "ConfigChangeInput",
    "ConfigChangeOutput",
    "affected_step",
    "current_config",
    "inline_yaml",
    "plan_change",
    "rerun_command",
]

logger = logging.getLogger(__name__)

#: The first step each top-level key of blase.yaml affects.
SECTION_STEP: dict[str, str] = {
    "data": "extract",
    "memory": "extract",
    "transform": "transform",
    "prepare": "prepare",
    "seed": "prepare",
    "train": "train",
    "evaluate": "evaluate",
    "deploy": "deploy",
}
#: Keys the assistant may not change, and why (said to the model as a tool error).
FORBIDDEN: dict[str, str] = {
    "project": "the project's name is the person's choice",
    "agent": "agent settings belong to the person",
    "track": "tracking settings do not change results; they belong to the person",
    "monitor": "monitor settings are read by `blase monitor`, not by the pipeline",
    "update": "update settings are read by `blase update`, not by the pipeline",
    "deploy.promote": "promoting a model is the destructive `promote` tool, never a setting",
}
_PATH_KEYS = ("data.source",)


def current_config(project: Project, overrides: list[str]) -> dict[str, Any]:
    """``blase.yaml`` with ``overrides`` (``--set`` pairs) applied, as plain data."""
    from blase.config import apply_overrides, parse_overrides

    raw = yaml.safe_load(project.config_path.read_text(encoding="utf-8")) or {}
    return apply_overrides(raw, parse_overrides(list(overrides)))


def affected_step(key: str) -> str | None:
    """The first pipeline step a change of ``key`` affects (None: no step reads it)."""
    return SECTION_STEP.get(key.split(".", 1)[0])


def _parts(key: str) -> list[str | int]:
    parts: list[str | int] = []
    for raw in key.strip().split("."):
        if not raw:
            raise ToolError(f"key {key!r} has an empty part", hint="write keys like train.epochs or transform.0.strategy")
        parts.append(int(raw) if raw.isdigit() else raw)
    return parts


def _get(data: Any, parts: list[str | int]) -> Any:
    for part in parts:
        if isinstance(part, int) and isinstance(data, list) and part < len(data):
            data = data[part]
        elif isinstance(part, str) and isinstance(data, dict):
            data = data.get(part)
        else:
            return None
    return data


def _set(data: dict[str, Any], parts: list[str | int], value: Any, key: str) -> None:
    cursor: Any = data
    for n, part in enumerate(parts):
        last = n == len(parts) - 1
        where = ".".join(str(p) for p in parts[: n + 1])
        if isinstance(part, int):
            if not isinstance(cursor, list):
                raise ToolError(f"{key}: {'.'.join(str(p) for p in parts[:n])} is not a list",
                                hint="use a numeric part only after a list key, e.g. transform.0.strategy")
            if part >= len(cursor):
                raise ToolError(f"{key}: {where} does not exist (the list has {len(cursor)} items)",
                                hint=f"use an index from 0 to {len(cursor) - 1}")
            if last:
                cursor[part] = value
            else:
                cursor = cursor[part]
        else:
            if not isinstance(cursor, dict):
                raise ToolError(f"{key}: {where} cannot be set inside a {type(cursor).__name__}")
            if last:
                cursor[part] = value
            else:
                if cursor.get(part) is None:
                    cursor[part] = {}
                cursor = cursor[part]


@dataclass(frozen=True)
class ConfigChange:
    """A validated change: the ``--set`` pair that carries it and where the pipeline re-runs."""

    key: str
    value: Any
    before: Any
    pair: str
    from_step: str
    overrides: tuple[str, ...]

    @property
    def command(self) -> str:
        """The exact ``blase run`` a person types to make this change and re-run."""
        return rerun_command(list(self.overrides), self.from_step)


def rerun_command(overrides: list[str], from_step: str) -> str:
    """``blase run --set ... --from STEP``: re-run from ``from_step`` with ``overrides``."""
    sets = "".join(f" --set {shlex.quote(pair)}" for pair in overrides)
    return f"blase run{sets} --from {from_step}"


def plan_change(
    project: Project, overrides: list[str], key: str, value: Any, *, ctx: ToolContext | None = None
) -> ConfigChange:
    """Check a proposed change of ``key`` to ``value`` (text is read as YAML, like ``--set``).

    A key inside a list (``transform.0.strategy``) becomes a ``--set`` of the whole list, which
    is what the engine's ``--set`` replaces. The result is validated as a whole project config.

    Raises
    ------
    ToolError
        For a forbidden or unknown key, an index out of range, a path outside the project, a
        value the config rejects, or no change at all; the message says what to send instead.
    """
    from blase.config import check_confined, config_from_dict
    from blase.errors import ConfigError

    key = key.strip()
    parts = _parts(key)
    head = str(parts[0])
    for blocked, why in FORBIDDEN.items():
        if key == blocked or key.startswith(blocked + ".") or (head == blocked):
            raise ToolError(f"{key} cannot be changed here: {why}",
                            hint="propose a data, transform, prepare, train, evaluate or deploy key")
    if affected_step(key) is None:
        raise ToolError(f"unknown key {key!r}",
                        hint=f"keys start with one of: {', '.join(SECTION_STEP)}")
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError as exc:
            raise ToolError(f"{key}: value {value!r} is not valid YAML ({exc.__class__.__name__})",
                            hint="write the value as in blase.yaml, e.g. 100, balanced or [64, 32]") from None
    config = current_config(project, overrides)
    before = copy.deepcopy(_get(config, parts))
    if before == value and before is not None:
        raise ToolError(f"{key} is already {inline_yaml(value)}; nothing would change",
                        hint="propose a different value, or accept_step if nothing needs changing")
    proposed = copy.deepcopy(config)
    _set(proposed, parts, value, key)
    for guarded in (["deploy", "promote"], ["agent"], ["project"]):
        if _get(proposed, guarded) != _get(config, guarded):
            raise ToolError(f"{key} cannot be changed here: it would change {'.'.join(guarded)}",
                            hint="promoting is the destructive `promote` tool; agent settings belong to the person")
    try:
        resulting = config_from_dict(proposed, file="the proposed change")
    except ConfigError as exc:
        raise ToolError(f"{key}={inline_yaml(value)} is not a valid setting: {exc.message}",
                        hint="send a value blase.yaml accepts (see the config shown above)") from None
    try:  # the whole resulting config, whatever the shape of the change
        check_confined(resulting, project.root, base=project.config(), file="the proposed change")
    except ConfigError as exc:
        raise ToolError(f"{key}={inline_yaml(value)} is not allowed: {exc.message}",
                        hint="name only files and code inside the project") from None
    if ctx is not None:
        if key in _PATH_KEYS and isinstance(value, str):
            confine_path(ctx, value, what=key)
        call = _get(proposed, [*parts[:2], "call"]) if head == "transform" and len(parts) >= 2 else None
        if isinstance(call, str) and ":" in call:
            confine_path(ctx, call.rpartition(":")[0], what=f"{key} (user code)")
    index = next((n for n, p in enumerate(parts) if isinstance(p, int)), None)
    if index is None:
        set_key, set_value = key, value
    else:  # the engine's --set replaces a whole list
        set_key = ".".join(str(p) for p in parts[:index])
        set_value = _get(proposed, parts[:index])
    pair = f"{set_key}={inline_yaml(set_value)}"
    kept = [o for o in overrides if o.partition("=")[0].strip() != set_key]
    step = affected_step(key) or "extract"
    return ConfigChange(key=key, value=value, before=before, pair=pair, from_step=step,
                        overrides=(*kept, pair))


# ---------------------------------------------------------------------- the tools' models


class ConfigChangeInput(ToolInput):
    key: str = Field(description="The blase.yaml key, dotted; list items by index. Examples: train.epochs, "
                     "train.class_weights, train.lr, transform.0.strategy, prepare.stratify.")
    value: str = Field(description="The new value as written in blase.yaml, e.g. 100, balanced, mean, true.")
    reason: str = Field("", description="Why, in one sentence, from what the step's record shows.")

    @field_validator("value", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        # models send 100 or true as JSON numbers and booleans; the value is YAML text either way
        if isinstance(value, (bool, int, float, list, dict)):
            return inline_yaml(value)
        return value


class ConfigChangeOutput(ToolOutput):
    key: str
    value: Any = None
    before: Any = None
    from_step: str
    run_id: str = Field(description="The new pipeline run.")
    status: str
    metrics: dict[str, Any] = Field(default_factory=dict, description="Test metrics of the new run, if evaluated.")


class AcceptInput(ToolInput):
    reason: str = Field("", description="One line: why nothing needs to change after this step.")


class AcceptOutput(ToolOutput):
    accepted: bool = True


def make_tool(name: str, func: Any, input_model: type[ToolInput], output_model: type[ToolOutput],
              risk: str, description: str, command: Any) -> Tool:
    """A :class:`~blase.tools.Tool` that is not in the shared registry."""
    return Tool(name=name, func=func, input_model=input_model, output_model=output_model,
                risk=risk,  # type: ignore[arg-type]
                description=" ".join(description.split()), command=command)


CONFIG_CHANGE_DOC = """Change one blase.yaml setting for the following runs and re-run the pipeline from
the step it affects (transform.* from transform, train.* from train, ...). Use it to change an
imputation strategy, train longer (train.epochs), use class weights (train.class_weights=balanced)
or any other setting the step's record calls for."""

ACCEPT_DOC = """Nothing needs to change after this step: go on with the next step (or finish after
the last one)."""


def accept_step(args: AcceptInput, ctx: ToolContext) -> AcceptOutput:
    """Nothing to change: the driver moves on."""
    return AcceptOutput(accepted=True)
