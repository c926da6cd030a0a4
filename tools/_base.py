"""What every tool shares: the risk classes, the call context, errors, path confinement, and
the summarising helpers that keep a tool's output inside the model's context budget.

A tool is a plain function ``fn(args: InputModel, ctx: ToolContext) -> OutputModel`` declared
with :func:`tool`; the decorator records it in :data:`TOOLS` with its risk class and the
``blase`` command a person would type to do the same thing (used for recommendations).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from blase.config import check_model_name, check_model_ref
from blase.errors import BlaseError
from blase.project import Project, find_project

__all__ = [
    "RISKS",
    "TOOLS",
    "Clipped",
    "ModelName",
    "ModelRef",
    "Risk",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolInput",
    "ToolOutput",
    "ToolRow",
    "clip_list",
    "clip_text",
    "confine_path",
    "get_tool",
    "tool",
    "tool_schemas",
]

logger = logging.getLogger(__name__)

Risk = Literal["read", "write", "destructive"]
RISKS: tuple[str, ...] = ("read", "write", "destructive")

#: A model name argument: an identifier, never a path (it becomes ``models/NAME``).
ModelName = Annotated[str, AfterValidator(check_model_name)]
#: ``NAME`` or ``NAME@vN``: a tool never takes a package folder (those need a person's trust).
ModelRef = Annotated[str, AfterValidator(check_model_ref)]


class ToolError(BlaseError):
    """A tool cannot do what it was asked: bad arguments, a path outside the project, a
    capability this version lacks, or an engine error (its message is kept)."""


class ToolInput(BaseModel):
    """Base of every tool's arguments: unknown keys are an error, so a typo is caught."""

    model_config = ConfigDict(extra="forbid")


class ToolRow(BaseModel):
    """Base of the rows and parts inside a tool's result."""

    model_config = ConfigDict(extra="forbid")


class ToolOutput(BaseModel):
    """Base of every tool's result."""

    model_config = ConfigDict(extra="forbid")

    notes: list[str] = Field(
        default_factory=list, description="What was left out (truncation) or worth knowing."
    )


@dataclass
class ToolContext:
    """Everything a tool call needs besides its arguments.

    Attributes
    ----------
    project:
        The project the tool works in; every path is confined to it.
    session_id:
        The agent session (its Track run id) that made the call, for linking the runs a tool
        starts; ``None`` when a person calls a tool from Python.
    autonomy:
        The session's autonomy level (``manual``, ``semi``, ``auto``), for the record.
    session_track:
        The session's :class:`~blase.track.Track` run, where linked runs are recorded.
    max_rows:
        Longest list a tool returns before truncating (with a count of what was left out).
    max_chars:
        Longest text field a tool returns before truncating.
    started_runs:
        Ids of the runs tools started in this context (filled by the tools).
    """

    project: Project
    session_id: str | None = None
    autonomy: str = "manual"
    session_track: Any = None
    max_rows: int = 20
    max_chars: int = 2000
    started_runs: list[str] = field(default_factory=list)

    @classmethod
    def for_project(cls, project: Project | str | os.PathLike[str] | None = None, **kw: Any) -> ToolContext:
        """A context for ``project`` (a Project, a path inside one, or None for the cwd)."""
        proj = project if isinstance(project, Project) else find_project(project)
        return cls(project=proj, **kw)

    def link_runs(self, run_ids: Sequence[str], tool: str) -> None:
        """Tag runs a tool started with the session id and record them in the session run."""
        for run_id in run_ids:
            if run_id in self.started_runs:
                continue
            self.started_runs.append(run_id)
            if self.session_track is not None and getattr(self.session_track, "active", False):
                self.session_track.log_event("linked_run", run=run_id, tool=tool)


@dataclass(frozen=True)
class Tool:
    """One capability: a function, its argument and result models, and its risk class."""

    name: str
    func: Callable[[Any, ToolContext], ToolOutput]
    input_model: type[ToolInput]
    output_model: type[ToolOutput]
    risk: Risk
    description: str
    command: Callable[[Any], str]
    available: Callable[[], bool] = lambda: True
    risk_of: Callable[[Any], Risk] | None = None

    def risk_for(self, args: ToolInput) -> Risk:
        """The risk of this call: the tool's class, or lower for a harmless form (a dry run)."""
        return self.risk_of(args) if self.risk_of is not None else self.risk

    def validate(self, arguments: dict[str, Any] | ToolInput | None) -> ToolInput:
        """Arguments as the input model, or :class:`ToolError` saying which field is wrong."""
        if isinstance(arguments, self.input_model):
            return arguments
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise ToolError(
                f"{self.name}: arguments must be a JSON object, got {type(arguments).__name__}",
                hint=f"call {self.name} with an object matching its schema",
            )
        try:
            return self.input_model.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(arguments)'}: {e['msg']}"
                for e in exc.errors()
            )
            fields = {e["type"] for e in exc.errors()} & {"extra_forbidden", "missing"}
            raise ToolError(
                f"{self.name}: invalid arguments: {problems}",
                hint=f"allowed fields: {', '.join(self.input_model.model_fields) or 'none'}" if fields
                else "fix the value named above and call again",
            ) from None

    def __call__(self, arguments: dict[str, Any] | ToolInput | None, ctx: ToolContext) -> ToolOutput:
        """Validate ``arguments`` and run the tool; engine errors become :class:`ToolError`."""
        args = self.validate(arguments)
        try:
            with _confinement(ctx.project):
                return self.func(args, ctx)
        except ToolError:
            raise
        except BlaseError as exc:
            raise ToolError(f"{self.name}: {exc.message}", hint=exc.hint) from exc

    def recommend(self, arguments: dict[str, Any] | ToolInput | None) -> str:
        """The command a person can run to do what this call would do."""
        try:
            args = self.validate(arguments)
        except ToolError:
            return f"(invalid arguments for {self.name})"
        return self.command(args)

    def schema(self) -> dict[str, Any]:
        """The OpenAI-style function spec the model sees."""
        params = self.input_model.model_json_schema()
        params.pop("title", None)
        params.pop("description", None)
        params.setdefault("properties", {})
        for name, prop in list(params["properties"].items()):
            params["properties"][name] = _simplify(prop)
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": f"[risk: {self.risk}] {self.description}",
                "parameters": params,
            },
        }


def _simplify(prop: dict[str, Any]) -> dict[str, Any]:
    """An optional field as its plain type: ``anyOf [X, null]`` with default null becomes X.

    Small local models follow flat schemas far better, and llama.cpp's grammar stays small;
    leaving the field out means null.
    """
    prop = {k: v for k, v in prop.items() if k != "title"}
    options = prop.get("anyOf")
    if isinstance(options, list) and prop.get("default", ...) is None:
        others = [o for o in options if o.get("type") != "null"]
        if len(others) == 1 and len(options) == 2:
            merged = {k: v for k, v in prop.items() if k not in ("anyOf", "default")}
            merged.update(others[0])
            return merged
    return prop


#: Every tool by name, in declaration order.
TOOLS: dict[str, Tool] = {}

In = TypeVar("In", bound=ToolInput)
Out = TypeVar("Out", bound=ToolOutput)


def tool(
    *,
    risk: Risk,
    command: Callable[[Any], str],
    available: Callable[[], bool] | None = None,
    risk_of: Callable[[Any], Risk] | None = None,
) -> Callable[[Callable[[In, ToolContext], Out]], Callable[[In, ToolContext], Out]]:
    """Register ``fn(args, ctx) -> output`` as a tool named after the function.

    The input and output models come from the function's annotations; the description the
    model reads is the function's docstring. ``risk_of(args)`` may lower the risk of a
    harmless form of a call (``gc`` with ``dry_run=true`` is a read).
    """

    def register(fn: Callable[[In, ToolContext], Out]) -> Callable[[In, ToolContext], Out]:
        import typing

        hints = typing.get_type_hints(fn)
        params = [p for p in hints if p != "return"]
        input_model, output_model = hints[params[0]], hints["return"]
        doc = " ".join((fn.__doc__ or "").split())
        TOOLS[fn.__name__] = Tool(
            name=fn.__name__,
            func=fn,
            input_model=input_model,
            output_model=output_model,
            risk=risk,
            description=doc,
            command=command,
            available=available or (lambda: True),
            risk_of=risk_of,
        )
        return fn

    return register


def get_tool(name: str) -> Tool:
    """The tool called ``name``, or :class:`ToolError` listing the known ones."""
    try:
        return TOOLS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(str(name), list(TOOLS), n=1)
        raise ToolError(
            f"unknown tool {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
            hint=f"tools: {', '.join(TOOLS)}",
        ) from None


def tool_schemas(names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """OpenAI-style function specs of the tools (all, or ``names``), in registry order."""
    chosen = list(TOOLS) if names is None else [n for n in TOOLS if n in set(names)]
    return [TOOLS[n].schema() for n in chosen]


# ---------------------------------------------------------------------- paths


def confine_path(ctx: ToolContext, path: str | os.PathLike[str], *, what: str = "path") -> Path:
    """``path`` resolved inside the project (relative paths start at its root).

    Raises
    ------
    ToolError
        When the path (after ``..`` and symlinks) lies outside the project.
    """
    root = ctx.project.root.resolve()
    raw = Path(os.path.expanduser(os.fspath(path)))
    full = (raw if raw.is_absolute() else root / raw).resolve()
    if full != root and root not in full.parents:
        raise ToolError(
            f"{what} {os.fspath(path)!r} is outside the project {root}",
            hint="use a path inside the project, e.g. data/FILE.csv",
        )
    return full


# ---------------------------------------------------------------------- summarising


@dataclass
class Clipped:
    """A list cut to a budget, with the count of what was left out."""

    items: list[Any]
    total: int
    note: str | None


def clip_list(items: Sequence[Any], limit: int, *, what: str = "items", keep: str = "head") -> Clipped:
    """The first (or last, ``keep="tail"``) ``limit`` items, with a note naming the rest."""
    items = list(items)
    total = len(items)
    if total <= limit:
        return Clipped(items, total, None)
    shown = items[:limit] if keep == "head" else items[-limit:]
    side = "first" if keep == "head" else "last"
    return Clipped(shown, total, f"showing the {side} {limit} of {total} {what}; {total - limit} left out")


def clip_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return text[:limit] + f" ... [{len(text) - limit} more characters truncated]"


def clip_value(value: Any, max_chars: int) -> Any:
    """A JSON value whose serialised form fits ``max_chars``, or a truncated string of it."""
    text = json.dumps(value, default=str)
    if len(text) <= max_chars:
        return value
    return clip_text(text, max_chars)


def quote(value: Any) -> str:
    """Shell-quote one argument of a recommended command."""
    return shlex.quote(str(value))


def _confinement(project: Project) -> AbstractContextManager[None]:
    """What a tool's reads may open: :func:`blase.config.confined_reads` of the project."""
    from blase.config import confined_reads

    try:
        config = project.config()
    except BlaseError:  # a blase.yaml that does not load names nothing
        config = None
    return confined_reads(project.root, config)
