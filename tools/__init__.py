"""Typed tools over Blase's public API, for people and for the assistant.

Installed as ``blase.tools``. Each tool is one function ``fn(args, ctx)`` with a pydantic
input model, a pydantic output model, a docstring the model reads, and a risk class:

- ``read``: list/inspect/compare/diff runs, read logs, preview data, suggest a schema, check drift;
- ``write``: run a step or the pipeline, evaluate, reproduce, deploy a new version, predict, update;
- ``destructive``: promote over the current model, roll back, garbage-collect.

They are plain Python, usable without the agent::

    from blase.tools import ToolContext, call_tool
    ctx = ToolContext.for_project(".")
    call_tool("list_runs", {"limit": 5}, ctx).runs

:data:`TOOLS` is the registry, :func:`tool_schemas` the OpenAI-style function specs the model
sees. Paths are confined to the project, and outputs are cut to a budget with a note saying
what was left out. Nothing in :mod:`blase` imports this package.
"""

from __future__ import annotations

from typing import Any

from ._base import (
    RISKS,
    TOOLS,
    Risk,
    Tool,
    ToolContext,
    ToolError,
    ToolInput,
    ToolOutput,
    confine_path,
    get_tool,
    tool_schemas,
)
from ._data import preview_data, show_config, suggest_schema
from ._models import deploy, list_models, predict, promote, rollback
from ._ops import check_drift, gc, trigger_update
from ._pipeline import evaluate, reproduce, run_pipeline, run_step

# Registration order is the order the model sees the tools in.
from ._runs import compare_runs, diff_runs, inspect_run, list_runs, read_run_log

__all__ = [
    "RISKS",
    "TOOLS",
    "Risk",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolInput",
    "ToolOutput",
    "call_tool",
    "check_drift",
    "compare_runs",
    "confine_path",
    "deploy",
    "diff_runs",
    "evaluate",
    "gc",
    "get_tool",
    "inspect_run",
    "list_models",
    "list_runs",
    "predict",
    "preview_data",
    "promote",
    "read_run_log",
    "reproduce",
    "rollback",
    "run_pipeline",
    "run_step",
    "show_config",
    "suggest_schema",
    "tool_schemas",
    "trigger_update",
]


# The order the model sees the tools in: reading first, then acting, then the destructive ones.
_ORDER = (
    "list_runs", "inspect_run", "read_run_log", "compare_runs", "diff_runs", "preview_data",
    "suggest_schema", "show_config", "list_models", "check_drift", "run_step", "run_pipeline",
    "evaluate", "reproduce", "deploy", "predict", "trigger_update", "promote", "rollback", "gc",
)
_registered = dict(TOOLS)
TOOLS.clear()
TOOLS.update({name: _registered.pop(name) for name in _ORDER if name in _registered})
TOOLS.update(_registered)


def call_tool(name: str, arguments: dict[str, Any] | None, ctx: ToolContext) -> ToolOutput:
    """Validate ``arguments`` for tool ``name`` and run it.

    Raises
    ------
    ToolError
        For an unknown tool, invalid arguments, a path outside the project, a capability
        this version lacks, or an engine error (its message and hint are kept).
    """
    return get_tool(name)(arguments, ctx)
