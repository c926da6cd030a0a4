"""One gate, ask and execute for every caller of the tools: the chat graph (:mod:`._graph`),
the autopilot graph (:mod:`._pilot_graph`) and the MCP server (:mod:`._mcp`).

- :func:`proposed_calls` reads a model's message: every call it made, the malformed ones
  included (arguments ``{}``, the parser's error kept), each with an id.
- :class:`CallGate` turns one call into a typed :class:`Proposal`: validated with pydantic,
  its risk, the exact ``blase`` command a person would type, and the gate's
  :func:`~agent._gate.judge` (a :class:`Status` and, when a limit denied it, the
  :class:`~agent._gate.Limit`). It applies a person's answer (approve, reject, edit) and runs
  an approved call, recording ``tool_proposal``, ``gate`` and ``tool_result`` events the same
  way for every caller.
- :meth:`Proposal.outcome` is what the model hears about a call that did not run.

Proposals travel through LangGraph checkpoints as plain data (:meth:`Proposal.state`,
:meth:`Proposal.load`); the code reads them typed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from blase.tools import Tool, ToolContext, ToolError, ToolInput, get_tool
from pydantic import BaseModel, Field

from ._gate import Budgets, Limit, judge

__all__ = [
    "CallGate",
    "Counters",
    "Proposal",
    "Recorder",
    "Status",
    "ToolRun",
    "invalid_streak",
    "proposed_calls",
    "read_answer",
    "result_text",
    "summary_line",
]

logger = logging.getLogger(__name__)

Recorder = Callable[..., None]
#: Longest tool result the model sees (characters of JSON); longer ones are cut with a note.
MAX_RESULT_CHARS = 6000


class Status(str, Enum):
    """Where a proposal stands: the gate's four decisions, then what a person or a check made of it."""

    RUN = "run"
    ASK = "ask"
    RECOMMEND = "recommend"
    DENY = "deny"
    REJECTED = "rejected"
    ERROR = "error"

    @property
    def word(self) -> str:
        """The past tense the event log uses (``ran``, ``asked``, ...)."""
        return _WORDS.get(self.value, self.value)


_WORDS = {"run": "ran", "ask": "asked", "recommend": "recommended", "deny": "denied"}


class Proposal(BaseModel):
    """One proposed tool call and what became of it."""

    id: str
    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    risk: str | None = None
    status: Status = Status.ERROR
    reason: str = ""
    limit: Limit | None = None
    message: str | None = Field(None, description="The tool error, for status error.")
    command: str | None = Field(None, description="The `blase` command a person types to do the same.")
    asked_at: float | None = None
    edited: bool = False
    approved: bool = False
    by: str = "gate"
    note: str | None = None
    change: dict[str, Any] | None = Field(None, description="The autopilot's planned config change.")

    def state(self) -> dict[str, Any]:
        """Plain data for a checkpoint."""
        return self.model_dump(mode="json")

    @classmethod
    def load(cls, items: Iterable[dict[str, Any] | Proposal]) -> list[Proposal]:
        """Proposals back from a checkpoint."""
        return [p if isinstance(p, Proposal) else cls.model_validate(p) for p in items]

    @property
    def ends_question(self) -> bool:
        """Denied by a limit that every later call would hit too: stop asking the model."""
        return self.status is Status.DENY and self.limit in (Limit.TOOL_CALLS, Limit.SECONDS, Limit.AUTONOMY)

    def approval(self) -> dict[str, Any]:
        """What a person is asked about (the interrupt's value)."""
        return {"tool": self.name, "args": self.args, "risk": self.risk, "reason": self.reason,
                "call_id": self.id, "command": self.command}

    def outcome(self) -> str:
        """What the model hears about a call that did not run."""
        if self.status is Status.RECOMMEND:
            return (f"Not run: {self.reason}. Recommend it to the person instead; they can run:\n"
                    f"    {self.command}\nSay in one line what it would do and why.")
        if self.status is Status.REJECTED:
            note = f" Their note: {self.note}" if self.note else ""
            return f"The person rejected this call to {self.name}; it did not run.{note} Do not retry it unchanged."
        if self.status is Status.DENY:
            return f"Not run: {self.reason}. Stop calling tools and answer with what you have."
        return f"Tool error: {self.message or 'invalid call'}"


@dataclass
class Counters:
    """What already ran for this question, and for how long (the gate's budgets count these)."""

    tool_calls: int = 0
    write_actions: int = 0
    elapsed: float = 0.0

    def ran(self, risk: str | None) -> None:
        self.tool_calls += 1
        self.write_actions += risk not in ("read", None)


@dataclass
class ToolRun:
    """One executed call: what the model reads, whether it worked, why the question must stop."""

    content: str
    ok: bool
    stop: str | None = None
    output: Any = None
    runs: list[str] = field(default_factory=list)


def proposed_calls(ai: Any) -> tuple[list[dict[str, Any]], bool]:
    """The calls of a model message: valid ones, then malformed ones (``args`` ``{}``, the
    parser's complaint under ``invalid`` and the raw text under ``raw``), each with an id.
    The flag says whether the message must be rewritten to show exactly these calls."""
    calls = [dict(c) for c in ai.tool_calls]
    for bad in ai.invalid_tool_calls:
        calls.append({"name": bad.get("name") or "(none)", "args": {}, "id": bad.get("id"),
                      "invalid": bad.get("error") or "arguments are not valid JSON",
                      "raw": str(bad.get("args"))[:300]})
    rewritten = bool(ai.invalid_tool_calls)
    for n, c in enumerate(calls):
        if not c.get("id"):
            c["id"] = f"call_{ai.id or 'x'}_{n}"
            rewritten = True
    return calls, rewritten


def invalid_streak(previous: int, pending: Iterable[Proposal]) -> int:
    """Rounds in a row with a malformed or invalid call (the retry cap counts these)."""
    return previous + 1 if any(p.status is Status.ERROR for p in pending) else 0


class CallGate:
    """Validates, judges, asks about and runs tool calls, recording every step.

    Parameters
    ----------
    record:
        ``record(event, **fields)``: one event in the caller's Track run.
    budgets:
        The limits :func:`~agent._gate.judge` applies.
    lookup:
        Finds a tool by name (default: the shared registry; the autopilot adds its own tools).
    describe:
        ``describe(proposal, tool, args)`` fills in what a valid call would do (default: the
        tool's command); it may raise :class:`ToolError` to refuse the call.
    free:
        Tools that need no gate (name -> the reason recorded), e.g. the autopilot's ``accept_step``.
    """

    def __init__(
        self,
        record: Recorder,
        budgets: Budgets,
        *,
        lookup: Callable[[str], Tool] = get_tool,
        describe: Callable[[Proposal, Tool, ToolInput], None] | None = None,
        free: dict[str, str] | None = None,
    ) -> None:
        self.record = record
        self.budgets = budgets
        self.lookup = lookup
        self.describe = describe or _command_of
        self.free = dict(free or {})

    # ------------------------------------------------------------------ the gate

    def check(
        self,
        call: dict[str, Any],
        *,
        autonomy: str,
        counters: Counters,
        allowed: Iterable[str] | None = None,
        acting: bool = False,
        **where: Any,
    ) -> Proposal:
        """One call as a judged :class:`Proposal` (``where`` goes into its events, e.g. ``step``).

        ``allowed`` limits the tools this moment offers; ``acting`` says a write or
        destructive call was already proposed in this round and only one is considered.
        """
        p = Proposal(id=call["id"], name=call["name"], args=dict(call.get("args") or {}))
        self.record("tool_proposal", call_id=p.id, tool=p.name, args=p.args,
                    **({"raw": call["raw"]} if call.get("raw") else {}), **where)
        try:
            if call.get("invalid"):
                raise ToolError(f"your call to {p.name} was malformed: {call['invalid']}",
                                hint="send the arguments as one JSON object matching the tool's schema")
            if allowed is not None and p.name not in set(allowed):
                raise ToolError(f"{p.name} is not available now", hint=f"call one of: {', '.join(sorted(allowed))}")
            tool = self.lookup(p.name)
            args = tool.validate(p.args)
            p.args = args.model_dump(mode="json", exclude_none=True)
            p.risk = tool.risk_for(args)
            if acting and p.risk != "read":
                raise ToolError("one change at a time: this proposal was not considered",
                                hint="propose it again after the re-run, if it is still needed")
            self.describe(p, tool, args)
        except ToolError as exc:
            p.status, p.message = Status.ERROR, str(exc)
            self.record("gate", call_id=p.id, tool=p.name, decision="error", by="gate", reason=str(exc)[:300], **where)
            return p
        if p.name in self.free:
            p.status, p.reason = Status.RUN, self.free[p.name]
        else:
            verdict = judge(autonomy, p.risk, tool_calls=counters.tool_calls, write_actions=counters.write_actions,
                            elapsed=counters.elapsed, budgets=self.budgets)
            p.status, p.reason, p.limit = Status(verdict.decision.value), verdict.reason, verdict.limit
        if p.status is Status.RUN:
            counters.ran(p.risk)
        elif p.status is Status.ASK:
            p.asked_at = time.time()
        self.record("gate", call_id=p.id, tool=p.name, decision=p.status.word, by="gate", risk=p.risk,
                    reason=p.reason, **where)
        return p

    def review(
        self,
        calls: list[dict[str, Any]],
        *,
        autonomy: str,
        counters: Counters,
        allowed: Iterable[str] | None = None,
        one_change: bool = False,
        **where: Any,
    ) -> list[Proposal]:
        """Every call of one model message, judged in order (``counters`` is not changed)."""
        running = replace(counters)
        allowed = list(allowed) if allowed is not None else None
        pending: list[Proposal] = []
        acting = False
        for call in calls:
            p = self.check(call, autonomy=autonomy, counters=running, allowed=allowed,
                           acting=one_change and acting, **where)
            acting = acting or (p.status is not Status.ERROR and p.risk not in ("read", None))
            pending.append(p)
        return pending

    # ------------------------------------------------------------------ a person's answer

    def answer(self, p: Proposal, answer: Any) -> Proposal:
        """Apply a person's answer (see :func:`read_answer`) to a proposal that asked."""
        action, args, note, by = read_answer(answer)
        p = p.model_copy(deep=True)
        p.by = by
        if action == "edit" and args is not None:
            try:
                tool = self.lookup(p.name)
                valid = tool.validate(args)
                p.args = valid.model_dump(mode="json", exclude_none=True)
                p.risk = tool.risk_for(valid)
                self.describe(p, tool, valid)
            except ToolError as exc:
                p.status, p.message = Status.ERROR, f"the person's edited arguments are invalid: {exc}"
                self.record("gate", call_id=p.id, tool=p.name, decision="error", by=by, reason=str(exc)[:300])
                return p
            p.status, p.edited, p.approved = Status.RUN, True, True
            self.record("gate", call_id=p.id, tool=p.name, decision="approved", by=by, edited=True, args=p.args,
                        note=note)
        elif action in ("approve", "edit"):
            p.status, p.approved = Status.RUN, True
            self.record("gate", call_id=p.id, tool=p.name, decision="approved", by=by, note=note)
        else:
            p.status, p.note = Status.REJECTED, note
            self.record("gate", call_id=p.id, tool=p.name, decision="rejected", by=by, note=note)
        return p

    def ask(self, pending: list[Proposal], **context: Any) -> tuple[list[Proposal], float]:
        """Pause on LangGraph's ``interrupt`` for the first proposal that asks; returns the
        proposals with the answer applied and how long the person took."""
        from langgraph.types import interrupt

        pending = list(pending)
        index = next(i for i, p in enumerate(pending) if p.status is Status.ASK)
        p = pending[index]
        answer = interrupt({**p.approval(), **context})
        pending[index] = self.answer(p, answer)
        return pending, time.time() - (p.asked_at or time.time())

    # ------------------------------------------------------------------ running

    def run(self, p: Proposal, ctx: ToolContext) -> ToolRun:
        """Run one approved call; a tool error or a tool's bug becomes what the model reads."""
        before = len(ctx.started_runs)
        started = time.perf_counter()

        def seconds() -> float:
            return round(time.perf_counter() - started, 3)

        try:
            output = self.lookup(p.name)(p.args, ctx)
        except KeyboardInterrupt:
            runs = ctx.started_runs[before:]
            self.record("tool_result", call_id=p.id, tool=p.name, status="interrupted", runs=runs, seconds=seconds())
            return ToolRun((f"Interrupted by the person (Ctrl-C) while {p.name} ran"
                            + (f"; run {', '.join(runs)} is marked interrupted" if runs else "") + "."),
                           ok=False, stop="interrupted", runs=runs)
        except ToolError as exc:
            runs = ctx.started_runs[before:]
            self.record("tool_result", call_id=p.id, tool=p.name, status="error", error=str(exc)[:500], runs=runs,
                        seconds=seconds())
            return ToolRun(f"Tool error: {exc}", ok=False, runs=runs)
        except Exception as exc:  # a tool bug must not end the session: the model hears of it
            logger.debug("tool %s raised", p.name, exc_info=True)
            runs = ctx.started_runs[before:]
            self.record("tool_result", call_id=p.id, tool=p.name, status="error",
                        error=f"{type(exc).__name__}: {exc}"[:500], runs=runs, seconds=seconds())
            return ToolRun(f"Tool error: {p.name} failed unexpectedly ({type(exc).__name__}: {exc})", ok=False,
                           runs=runs)
        runs = ctx.started_runs[before:]
        self.record("tool_result", call_id=p.id, tool=p.name, status="ok", summary=summary_line(output), runs=runs,
                    seconds=seconds())
        return ToolRun(result_text(output), ok=True, output=output, runs=runs)


def _command_of(p: Proposal, tool: Tool, args: ToolInput) -> None:
    p.command = tool.recommend(args)


def read_answer(answer: Any) -> tuple[str, dict[str, Any] | None, str | None, str]:
    """``(action, edited args, note, who)`` from a resume value: a dict, a bool or y/n text."""
    if isinstance(answer, bool):
        return ("approve" if answer else "reject"), None, None, "person"
    if isinstance(answer, str):
        word = answer.strip().lower()
        return ("approve" if word in ("y", "yes", "approve", "ok") else "reject"), None, None, "person"
    if isinstance(answer, dict):
        action = str(answer.get("action", "reject")).lower()
        if action not in ("approve", "reject", "edit"):
            action = "reject"
        args = answer.get("args")
        return action, args if isinstance(args, dict) else None, answer.get("note"), str(answer.get("by", "person"))
    return "reject", None, None, "person"


def result_text(output: Any) -> str:
    """A tool's output as JSON for the model, cut to :data:`MAX_RESULT_CHARS` with a note."""
    text = output.model_dump_json(exclude_defaults=False) if hasattr(output, "model_dump_json") else json.dumps(output, default=str)
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + f" ... [result truncated: {len(text) - MAX_RESULT_CHARS} more characters]"
    return text


def summary_line(output: Any) -> str:
    """One line for people and for Track: the output's counts and headline fields."""
    data = output.model_dump() if hasattr(output, "model_dump") else {}
    parts = []
    for key, value in data.items():
        if key == "notes":
            continue
        if isinstance(value, list):
            parts.append(f"{key}: {len(value)}")
        elif isinstance(value, dict):
            parts.append(f"{key}: {len(value)} keys")
        elif value is not None:
            parts.append(f"{key}={str(value)[:60]}")
        if len(parts) >= 6:
            break
    return ", ".join(parts)

