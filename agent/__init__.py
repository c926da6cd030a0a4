"""The Blase assistant: a LangGraph agent that drives :mod:`blase.tools`.

Installed as ``blase.agent``. The autonomy gate is code (:func:`decide`): ``manual`` runs read
tools and turns the rest into recommendations, ``semi`` asks a person before write and
destructive tools, ``auto`` runs write tools within budgets and still asks before destructive
ones. Conversations persist per project (``.blase/agent/sessions.sqlite``) and every model
call, proposal, decision and result is an event of the session's Track run::

    from blase.agent import Session
    with Session(".", autonomy="semi") as s:
        turn = s.send("which run has the best accuracy?")
        if turn.pending:
            turn = s.decide("approve")
        print(turn.answer)

The pipeline under the assistant (``blase run --autonomy``) is :class:`Autopilot`; ``blase agent
eval`` (:mod:`agent._eval`) scores a model on a fixed suite of tool-use tasks; ``blase mcp``
(:class:`McpSession`) serves the same tools, behind the same gate, to any MCP client.

Importing this package needs the ``agent`` extra (``pip install 'blase[agent]'``). Nothing in
:mod:`blase` imports it.
"""

from __future__ import annotations

from ._answers import AnswerBox, ClaimResult
from ._autopilot import Autopilot, AutopilotResult
from ._errors import AgentError, ProviderError, SessionError
from ._eval import CATEGORIES as EVAL_CATEGORIES
from ._eval import run_eval, unevaluated_warning
from ._gate import AUTONOMY, Budgets, Decision, Limit, Verdict, decide, judge
from ._mcp import McpSession
from ._mcp import serve as serve_mcp
from ._providers import ProviderSpec, make_chat_model, resolve_provider
from ._report import AutopilotReport
from ._session import Approval, Session, TurnResult, move_store_aside, store_path

__all__ = [
    "AUTONOMY",
    "EVAL_CATEGORIES",
    "AgentError",
    "AnswerBox",
    "Approval",
    "Autopilot",
    "AutopilotReport",
    "AutopilotResult",
    "Budgets",
    "ClaimResult",
    "Decision",
    "Limit",
    "McpSession",
    "ProviderError",
    "ProviderSpec",
    "Session",
    "SessionError",
    "TurnResult",
    "Verdict",
    "decide",
    "judge",
    "make_chat_model",
    "move_store_aside",
    "resolve_provider",
    "run_eval",
    "serve_mcp",
    "store_path",
    "unevaluated_warning",
]
