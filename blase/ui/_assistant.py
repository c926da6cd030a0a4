"""The assistant's waiting calls, read and answered for the web app.

A ``semi`` (or ``auto``, for a destructive tool) session pauses on a LangGraph ``interrupt``
saved in the project's checkpointer (``.blase/agent/sessions.sqlite``). :func:`pending_call`
reads that checkpoint without starting anything, so listing sessions has no side effect.
:func:`decide_pending` answers it the way ``blase chat --resume`` does: it resumes the session
(:class:`blase.agent.Session`, a new Track run of the session) and calls
:meth:`~blase.agent.Session.decide`, so the same gate runs the call and records the decision,
made ``by`` a person from ``blase ui``.
"""

from __future__ import annotations

import importlib.util
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from blase.errors import BlaseError
from blase.project import Project

__all__ = ["DECIDED_BY", "AnswerConflict", "answer_autopilot", "autopilot_answer", "decide_pending", "pending_call"]

logger = logging.getLogger(__name__)

#: Who a decision made on the assistant page is recorded as made by.
DECIDED_BY = "person (blase ui)"
ACTIONS = ("approve", "reject", "edit")


class AnswerConflict(BlaseError):
    """A decision that came too late: answered elsewhere first, or nobody waits any more."""


def _agent_installed() -> bool:
    return importlib.util.find_spec("langgraph") is not None


def pending_call(project: Project, session_id: str) -> dict[str, Any] | None:
    """The call session ``session_id`` waits on (``tool``, ``args``, ``risk``, ``reason``,
    ``command``), or ``None``; read-only, and ``None`` without the ``agent`` extra."""
    if not _agent_installed():
        return None
    from blase.agent import store_path

    path = store_path(project)
    if not path.is_file():
        return None
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    try:
        found = SqliteSaver(conn).get_tuple({"configurable": {"thread_id": session_id}})
    except Exception:  # a damaged or foreign store: the page says nothing waits
        logger.debug("cannot read the session store %s", path, exc_info=True)
        return None
    finally:
        conn.close()
    for _task, channel, value in (found.pending_writes or []) if found else []:
        if channel != "__interrupt__":
            continue
        for intr in value if isinstance(value, (list, tuple)) else [value]:
            data = getattr(intr, "value", None)
            if isinstance(data, dict) and "tool" in data:
                return {k: data.get(k) for k in ("call_id", "tool", "args", "risk", "reason", "command")}
    return None


def decide_pending(project: Project, session_id: str, action: str, *, args: dict[str, Any] | None = None,
                   note: str | None = None, llm: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Answer the waiting call of ``session_id``: ``approve``, ``reject`` (``note`` goes to the
    model) or ``edit`` (new ``args``); returns the turn (answer, next waiting call, events).

    ``llm`` makes the chat model the resumed session talks to (default: the provider of
    ``blase.yaml``, as ``blase chat`` chooses it).

    Raises
    ------
    BlaseError
        Without the ``agent`` extra, for an unknown action, or when nothing waits.
    """
    _check_decision(project, session_id, action, args)
    from blase.agent import Session

    with Session(project, session_id=session_id, llm=llm() if llm is not None else None) as session:
        turn = session.decide(action, args=args, note=note or None, by=DECIDED_BY)
        return turn.to_json()


def _check_decision(project: Project, session_id: str, action: str, args: dict[str, Any] | None) -> dict[str, Any]:
    """The waiting call a decision answers (errors for a bad decision or nothing waiting)."""
    if action not in ACTIONS:
        raise BlaseError(f"unknown decision {action!r}", hint=f"choose one of: {', '.join(ACTIONS)}")
    if action == "edit" and not isinstance(args, dict):
        raise BlaseError("an edit needs the new arguments as a JSON object", hint='send e.g. {"args": {"key": "v"}}')
    if not _agent_installed():
        raise BlaseError("the assistant is not installed here", hint="pip install 'blase[agent]'")
    pending = pending_call(project, session_id)
    if pending is None:
        raise BlaseError(f"session {session_id} waits on no call", hint="reload the assistant page")
    return pending


def answer_autopilot(project: Project, session_id: str, action: str, *, args: dict[str, Any] | None = None,
                     note: str | None = None) -> dict[str, Any]:
    """Answer the proposal a ``blase run --autonomy`` process waits on, from the page.

    The answer goes to the session's answer box (:class:`blase.agent.AnswerBox`); the waiting
    process applies it through its gate, recorded as made by :data:`DECIDED_BY`. The first answer
    wins: when the terminal answered first, this one is refused (409) and names that answer.
    """
    from blase.agent import AnswerBox

    pending = _check_decision(project, session_id, action, args)
    box = AnswerBox(project, session_id)
    waiting = box.waiting()
    call_id = str(pending.get("call_id") or "")
    stands = box.answer(call_id)
    if stands is None and (waiting is None or waiting.get("call_id") != call_id):
        raise AnswerConflict(f"no `blase run --autonomy` process waits on session {session_id}'s proposal any more",
                      hint="start the pipeline again with `blase run --autonomy semi`")
    claim = box.claim(call_id, {"action": action, "args": args, "note": note, "by": DECIDED_BY})
    if not claim.won:
        other = claim.answer
        raise AnswerConflict(f"this proposal was already answered: {other.get('action')} by {other.get('by') or 'person'}",
                      hint="reload the session page to see what the pipeline did next")
    return {"session": session_id, "call_id": call_id, "tool": pending.get("tool"), "decision": action,
            "by": DECIDED_BY, "answer": f"{action} sent to the waiting `blase run --autonomy` process"}


def autopilot_answer(project: Project, session_id: str, call_id: str) -> dict[str, Any] | None:
    """The answer given to an autopilot's waiting call (from the terminal or the page), if any:
    ``action`` and ``by``; the process that waits may not have applied it yet."""
    from blase.agent import AnswerBox

    found = AnswerBox(project, session_id).answer(call_id)
    return {"action": found.get("action"), "by": found.get("by")} if found else None
