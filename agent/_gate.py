"""The autonomy gate: code, never a prompt, decides what happens to each proposed tool call.

======== ============ ====================== =================================
autonomy read         write                  destructive
======== ============ ====================== =================================
manual   run          recommend (a command)  recommend (a command)
semi     run          ask a person           ask a person
auto     run          run within budgets     ask a person
======== ============ ====================== =================================

Budgets (``agent:`` in ``blase.yaml``): ``max_tool_calls`` and ``max_seconds`` per question in
every mode (a model that never stops calling tools is stopped), ``max_write_actions`` per
question for what ``auto`` runs without asking.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = ["AUTONOMY", "Budgets", "Decision", "Limit", "Verdict", "decide", "judge"]

AUTONOMY: tuple[str, ...] = ("manual", "semi", "auto")


class Decision(str, Enum):
    """What the gate does with one call (a ``str``, so ``Decision.RUN == "run"``)."""

    RUN = "run"
    ASK = "ask"
    RECOMMEND = "recommend"
    DENY = "deny"


class Limit(str, Enum):
    """Why a call was denied, when a limit denied it (control flow reads this, never the text)."""

    AUTONOMY = "autonomy"
    TOOL_CALLS = "tool_calls"
    SECONDS = "seconds"
    WRITE_ACTIONS = "write_actions"


@dataclass(frozen=True)
class Verdict:
    """The gate's decision for one call, the one-line reason people read, and the limit that
    denied it (None unless denied)."""

    decision: Decision
    reason: str
    limit: Limit | None = None

    @property
    def ends_question(self) -> bool:
        """A limit that stops the whole question (every later call would be denied too)."""
        return self.limit in (Limit.TOOL_CALLS, Limit.SECONDS, Limit.AUTONOMY)


@dataclass(frozen=True)
class Budgets:
    """Limits per question (one person's message and everything the agent does for it)."""

    max_tool_calls: int = 20
    max_write_actions: int = 5
    max_seconds: float = 600.0
    max_invalid_calls: int = 3

    @classmethod
    def from_config(cls, agent: object) -> Budgets:
        """From an ``AgentConfig`` (``blase.yaml``'s ``agent:`` section)."""
        return cls(
            max_tool_calls=int(getattr(agent, "max_tool_calls", cls.max_tool_calls)),
            max_write_actions=int(getattr(agent, "max_write_actions", cls.max_write_actions)),
            max_seconds=float(getattr(agent, "max_seconds", cls.max_seconds)),
        )


def judge(
    autonomy: str,
    risk: str,
    *,
    tool_calls: int,
    write_actions: int,
    elapsed: float,
    budgets: Budgets,
) -> Verdict:
    """The gate: what happens to one call of risk ``risk`` at ``autonomy``.

    ``tool_calls`` and ``write_actions`` count what already ran for this question. The chat
    graph, the autopilot graph and the MCP server all decide with this function.
    """
    if autonomy not in AUTONOMY:
        return Verdict(Decision.DENY, f"unknown autonomy level {autonomy!r}", Limit.AUTONOMY)
    if tool_calls >= budgets.max_tool_calls:
        return Verdict(Decision.DENY, f"tool-call budget reached ({budgets.max_tool_calls} per question)",
                       Limit.TOOL_CALLS)
    if elapsed >= budgets.max_seconds:
        return Verdict(Decision.DENY, f"time budget reached ({budgets.max_seconds:g}s per question)", Limit.SECONDS)
    if risk == "read":
        return Verdict(Decision.RUN, "read tools always run")
    if autonomy == "manual":
        return Verdict(Decision.RECOMMEND, f"autonomy manual: {risk} tools become recommendations")
    if risk == "destructive":
        return Verdict(Decision.ASK, "destructive tools always need a person's approval")
    if autonomy == "semi":
        return Verdict(Decision.ASK, "autonomy semi: write tools need a person's approval")
    if write_actions >= budgets.max_write_actions:
        return Verdict(Decision.DENY,
                       f"write budget reached ({budgets.max_write_actions} write actions per question)",
                       Limit.WRITE_ACTIONS)
    return Verdict(Decision.RUN, "autonomy auto: write tool within budget")


def decide(autonomy: str, risk: str, **counts: Any) -> tuple[Decision, str]:
    """:func:`judge` as a ``(decision, reason)`` pair (same keyword arguments)."""
    verdict = judge(autonomy, risk, **counts)
    return verdict.decision, verdict.reason
