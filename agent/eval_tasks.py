"""The task suites of ``blase agent eval``: the format, its loader, and the built-in suite
(``eval_suite.yaml`` next to this module; a user's own suite is a file in the same format).

Three categories, after the Berkeley Function Calling Leaderboard and tau-bench:

- ``single``: one request, one right tool call, scored on the call itself: the tool's name,
  arguments that validate against its schema (types, required fields, allowed values), and
  values among the accepted ones (BFCL's "possible answers"). Arguments not named in the
  expectation must be absent or equal to their default.
- ``irrelevance``: requests no tool fits; the right answer calls nothing.
- ``multi``: a goal that takes one or more tool calls that act on the project, scored by the
  final state (a run exists with these params, this version is current), not by the calls.

Prompts and accepted values may name ``{run}``, ``{run2}`` (two pipeline runs of the scratch
project), ``{model}`` (its model) and, after setup ``promote_latest``, ``{previous}``; they are
filled in when the suite runs. Changing a task changes the suite's hash, which every recorded
eval carries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ._errors import AgentError

__all__ = ["ANY", "BUILTIN_SUITE", "TASKS", "EvalSuiteError", "EvalTask", "ExpectedCall", "StateCheck",
           "load_suite", "suite_hash"]

#: An accepted value meaning "present, any value that validates".
ANY = "<any>"


@dataclass(frozen=True)
class ExpectedCall:
    """One acceptable call: the tool and, per argument, the accepted values."""

    tool: str
    args: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    optional: frozenset[str] = frozenset()
    unordered: frozenset[str] = frozenset()


@dataclass(frozen=True)
class StateCheck:
    """One fact the project must show after a multi-step task.

    ``kind``: ``new_run`` (a pipeline run started during the task, finished, with ``params``
    and, if given, ``steps``), ``version_added`` (the model has ``count`` more versions),
    ``current_version`` (the model's current version is ``version``), ``file_rows`` (a file
    with at least ``min_rows`` rows), ``best_deployed`` (the newest version packages the run
    with the best ``metric``).
    """

    kind: str
    spec: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalTask:
    """One task of the suite."""

    id: str
    category: str
    prompt: str
    expected: tuple[ExpectedCall, ...] = ()
    checks: tuple[StateCheck, ...] = ()
    setup: str | None = None


#: The setups a multi-step task may name (see ``agent._eval._setup``).
SETUPS: tuple[str, ...] = ("current_not_v1", "promote_latest", "no_predictions")
CHECK_KINDS: tuple[str, ...] = ("new_run", "version_added", "current_version", "file_rows", "best_deployed")
CATEGORY_NAMES: tuple[str, ...] = ("single", "irrelevance", "multi")
BUILTIN_SUITE = Path(__file__).with_name("eval_suite.yaml")

_TASK_KEYS = ("id", "category", "prompt", "expected", "checks", "setup")
_CALL_KEYS = ("tool", "args", "optional", "unordered")


class EvalSuiteError(AgentError):
    """An eval suite file is not in the documented format."""


def _fail(path: Path, where: str, problem: str, fix: str) -> EvalSuiteError:
    return EvalSuiteError(f"{path}: {where}: {problem}", hint=fix)


def _unknown(path: Path, where: str, got: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    import difflib

    for key in got:
        if key not in allowed:
            near = difflib.get_close_matches(str(key), allowed, n=1)
            raise _fail(path, where, f"unknown key {key!r}",
                        f"did you mean {near[0]!r}?" if near else f"allowed keys: {', '.join(allowed)}")


def _expected(path: Path, where: str, raw: Any) -> ExpectedCall:
    from blase.tools import TOOLS

    if not isinstance(raw, Mapping) or not isinstance(raw.get("tool"), str):
        raise _fail(path, where, "an expected call must be a mapping with a 'tool' name",
                    "write e.g. {tool: list_runs, args: {limit: 5}}")
    _unknown(path, where, raw, _CALL_KEYS)
    if raw["tool"] not in TOOLS:
        raise _fail(path, where, f"no tool {raw['tool']!r}", f"tools: {', '.join(TOOLS)}")
    args = raw.get("args") or {}
    if not isinstance(args, Mapping):
        raise _fail(path, f"{where}.args", "must be a mapping of argument: accepted value",
                    "write e.g. args: {run: '{run}', tail: 5}")
    accepted: dict[str, tuple[Any, ...]] = {}
    for key, value in args.items():
        if isinstance(value, Mapping):
            if set(value) != {"one_of"} or not isinstance(value["one_of"], list) or not value["one_of"]:
                raise _fail(path, f"{where}.args.{key}", "a mapping here must be {one_of: [value, ...]}",
                            "list the accepted values under one_of, or give one value")
            accepted[key] = tuple(value["one_of"])
        else:
            accepted[key] = (value,)
    optional, unordered = frozenset(raw.get("optional") or ()), frozenset(raw.get("unordered") or ())
    for name, keys in (("optional", optional), ("unordered", unordered)):
        stray = sorted(keys - set(accepted))
        if stray:
            raise _fail(path, f"{where}.{name}", f"{', '.join(stray)} not among the args",
                        f"name only arguments listed under args in {name}")
    return ExpectedCall(raw["tool"], accepted, optional, unordered)


def _check(path: Path, where: str, raw: Any) -> StateCheck:
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise _fail(path, where, "a check is a mapping with one key, its kind",
                    f"write e.g. {{current_version: {{model: '{{model}}', version: v1}}}}; kinds: {', '.join(CHECK_KINDS)}")
    kind, spec = next(iter(raw.items()))
    if kind not in CHECK_KINDS:
        _unknown(path, where, raw, CHECK_KINDS)
    return StateCheck(str(kind), dict(spec or {}))


def _task(path: Path, n: int, raw: Any) -> EvalTask:
    where = f"task {n + 1}"
    if not isinstance(raw, Mapping):
        raise _fail(path, where, "a task must be a mapping", "give it id, category and prompt")
    where = f"task {n + 1} ({raw.get('id', 'no id')})"
    _unknown(path, where, raw, _TASK_KEYS)
    for key in ("id", "category", "prompt"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise _fail(path, where, f"missing or empty {key!r}", "every task needs id, category and prompt")
    category = raw["category"]
    if category not in CATEGORY_NAMES:
        raise _fail(path, f"{where}.category", f"unknown category {category!r}",
                    f"choose one of: {', '.join(CATEGORY_NAMES)}")
    expected = tuple(_expected(path, f"{where}.expected[{i}]", e) for i, e in enumerate(raw.get("expected") or []))
    checks = tuple(_check(path, f"{where}.checks[{i}]", c) for i, c in enumerate(raw.get("checks") or []))
    setup = raw.get("setup")
    if category == "single" and not expected:
        raise _fail(path, where, "a single task needs at least one expected call", "add expected: [{tool: ...}]")
    if category == "multi" and not checks:
        raise _fail(path, where, "a multi task needs at least one state check", "add checks: [{new_run: {...}}]")
    if category == "irrelevance" and (expected or checks):
        raise _fail(path, where, "an irrelevance task expects no call", "remove expected and checks")
    if setup is not None and setup not in SETUPS:
        raise _fail(path, f"{where}.setup", f"unknown setup {setup!r}", f"choose one of: {', '.join(SETUPS)}")
    return EvalTask(raw["id"], category, raw["prompt"], expected, checks, setup)


def load_suite(path: str | Path) -> tuple[EvalTask, ...]:
    """The tasks of a YAML or JSON suite file (format: README, "Your own eval suite").

    Raises
    ------
    EvalSuiteError
        The file is missing or not in the format; the message names the task and key.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EvalSuiteError(f"cannot read eval suite {path}: {exc.strerror or exc}",
                             hint="pass the path of a .yaml or .json suite file to --tasks") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise EvalSuiteError(f"{path} is not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: "
                             f"{str(exc).splitlines()[0]}", hint="fix the syntax at the place named") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("tasks"), list) or not data["tasks"]:
        raise _fail(path, "top level", "expected a mapping with a non-empty 'tasks' list",
                    "start the file with `tasks:` and one entry per task")
    _unknown(path, "top level", data, ("tasks", "name"))
    tasks = tuple(_task(path, n, raw) for n, raw in enumerate(data["tasks"]))
    seen: set[str] = set()
    for t in tasks:
        if t.id in seen:
            raise _fail(path, f"task {t.id}", "duplicate id", "give every task its own id")
        seen.add(t.id)
    return tasks


#: The built-in suite, in the order it runs (nothing acts before the multi-step tasks).
TASKS: tuple[EvalTask, ...] = load_suite(BUILTIN_SUITE)
SINGLE = tuple(t for t in TASKS if t.category == "single")
IRRELEVANCE = tuple(t for t in TASKS if t.category == "irrelevance")
MULTI = tuple(t for t in TASKS if t.category == "multi")


def suite_hash(tasks: tuple[EvalTask, ...] = TASKS) -> str:
    """A short hash of the suite; recorded with every eval so scores compare like with like."""
    text = json.dumps([asdict(t) for t in tasks], default=lambda o: sorted(o) if isinstance(o, frozenset) else str(o),
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
