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
from typing import Literal

__all__ = ["AUTONOMY", "Budgets", "Decision", "decide"]

AUTONOMY: tuple[str, ...] = ("manual", "semi", "auto")

Decision = Literal["run", "ask", "recommend", "deny"]


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


def decide(
    autonomy: str,
    risk: str,
    *,
    tool_calls: int,
    write_actions: int,
    elapsed: float,
    budgets: Budgets,
) -> tuple[Decision, str]:
    """The gate's decision for one call and a one-line reason.

    ``tool_calls`` and ``write_actions`` count what already ran for this question.
    """
    if autonomy not in AUTONOMY:
        return "deny", f"unknown autonomy level {autonomy!r}"
    if tool_calls >= budgets.max_tool_calls:
        return "deny", f"tool-call budget reached ({budgets.max_tool_calls} per question)"
    if elapsed >= budgets.max_seconds:
        return "deny", f"time budget reached ({budgets.max_seconds:g}s per question)"
    if risk == "read":
        return "run", "read tools always run"
    if autonomy == "manual":
        return "recommend", f"autonomy manual: {risk} tools become recommendations"
    if risk == "destructive":
        return "ask", "destructive tools always need a person's approval"
    if autonomy == "semi":
        return "ask", "autonomy semi: write tools need a person's approval"
    if write_actions >= budgets.max_write_actions:
        return "deny", f"write budget reached ({budgets.max_write_actions} write actions per question)"
    return "run", "autonomy auto: write tool within budget"
