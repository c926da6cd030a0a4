"""The LangGraph graph: model -> gate -> (ask) -> execute -> model ... -> answer.

- ``model`` calls the chat model with the system prompt, the conversation and the tool specs.
- ``gate``, ``ask`` and ``execute`` are the shared :class:`~agent._calls.CallGate` (the same
  one the autopilot and the MCP server use): every proposed call is validated with pydantic (an
  unknown tool or bad arguments goes back to the model as a tool error) and judged by
  :func:`~agent._gate.judge`; ``ask`` pauses on LangGraph's ``interrupt`` once per call that
  needs a person (approve, reject with a note, or edit the arguments); ``execute`` runs what
  may run and answers every call with a ToolMessage: the summarised result, the error, the
  recommendation (the exact ``blase`` command), the rejection or the budget that stopped it.
- ``finish`` ends a question that a budget, repeated invalid calls or Ctrl-C stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Annotated, Any, TypedDict

from blase.tools import TOOLS, ToolContext, tool_schemas
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from ._calls import CallGate, Counters, Proposal, Recorder, Status, invalid_streak, proposed_calls
from ._gate import Budgets

__all__ = ["AgentState", "Recorder", "build_graph", "hash_text"]

logger = logging.getLogger(__name__)

#: Conversation kept in the model's window (characters); older whole questions are dropped.
MAX_HISTORY_CHARS = 24000


class AgentState(TypedDict, total=False):
    """The graph's state; everything here is checkpointed per session (thread)."""

    messages: Annotated[list[AnyMessage], add_messages]
    autonomy: str
    pending: list[dict[str, Any]]
    tool_calls: int
    write_actions: int
    rounds: int
    invalid: int
    turn_started: float
    stop: str | None
    recommendations: list[dict[str, Any]]


def hash_text(text: str) -> str:
    """Short content hash of a prompt (logged with every model call)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _window(messages: list[BaseMessage], max_chars: int) -> list[BaseMessage]:
    """The latest whole questions that fit ``max_chars`` (always the current one)."""
    starts = [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
    if not starts:
        return messages
    size = 0
    keep_from = starts[-1]
    for i in range(len(messages) - 1, -1, -1):
        size += len(str(messages[i].content)) + 200
        if size > max_chars:
            break
        if i in starts:
            keep_from = i
    return messages[keep_from:]


def build_graph(
    llm: Any,
    *,
    ctx: ToolContext,
    record: Recorder,
    budgets: Budgets,
    system_prompt: str,
    provider: str = "",
    model_name: str = "",
    max_tool_rounds: int | None = None,
    checkpointer: Any = None,
    tool_names: list[str] | None = None,
) -> Any:
    """Compile the agent graph.

    Parameters
    ----------
    llm:
        A LangChain chat model with ``bind_tools`` (a provider adapter, or a fake in tests).
    ctx:
        The tool context (project, session id); tools run with it.
    record:
        ``record(event, **fields)``: writes one event into the session's Track run.
    budgets:
        Limits per question.
    system_prompt:
        The system prompt text (its hash is logged with every model call).
    max_tool_rounds:
        For small models: after this many rounds of tool calls in a question, the model is
        called without tools, so it answers.
    checkpointer:
        Where the conversation persists (a SqliteSaver), or None.
    """
    names = tool_names or list(TOOLS)
    schemas = tool_schemas(names)
    prompt_hash = hash_text(system_prompt)
    bound = llm.bind_tools(schemas)

    def model_node(state: AgentState) -> dict[str, Any]:
        history = _window(list(state.get("messages", [])), MAX_HISTORY_CHARS)
        system = SystemMessage(system_prompt + f"\n\nAutonomy level now: {state.get('autonomy', 'manual')}.")
        no_tools = max_tool_rounds is not None and state.get("rounds", 0) >= max_tool_rounds
        runnable = llm if no_tools else bound
        request = [system, *history]
        request_hash = hash_text(json.dumps([m.model_dump(mode="json") for m in request], default=str, sort_keys=True))
        started = time.perf_counter()
        ai = runnable.invoke(request)
        latency = time.perf_counter() - started
        if not isinstance(ai, AIMessage):
            ai = AIMessage(content=str(getattr(ai, "content", ai)))
        usage = ai.usage_metadata or {}
        meta = ai.response_metadata or {}
        record(
            "model_call",
            provider=meta.get("provider", provider), model=meta.get("model_name", model_name),
            prompt_hash=prompt_hash, request_hash=request_hash,
            input_tokens=usage.get("input_tokens"), output_tokens=usage.get("output_tokens"),
            latency_s=round(meta.get("latency_s", latency), 3), tools_bound=not no_tools,
            tool_calls=[c["name"] for c in ai.tool_calls] + [f"(invalid) {c.get('name')}" for c in ai.invalid_tool_calls],
            text=str(ai.content)[:500], decode=meta.get("decode"),
        )
        return {"messages": [ai]}

    gate = CallGate(record, budgets)

    def gate_node(state: AgentState) -> dict[str, Any]:
        ai = state["messages"][-1]
        assert isinstance(ai, AIMessage)
        calls, rewritten = proposed_calls(ai)
        counters = Counters(state.get("tool_calls", 0), state.get("write_actions", 0),
                            time.time() - state.get("turn_started", time.time()))
        pending = gate.review(calls, autonomy=state.get("autonomy", "manual"), counters=counters)
        update: dict[str, Any] = {"pending": [p.state() for p in pending],
                                  "invalid": invalid_streak(state.get("invalid", 0), pending)}
        if rewritten:
            # The conversation must show every call the model made, so each gets an answer.
            fixed = [{"name": c["name"], "args": c.get("args") or {}, "id": c["id"], "type": "tool_call"} for c in calls]
            update["messages"] = [AIMessage(content=ai.content, tool_calls=fixed, id=ai.id,
                                            usage_metadata=ai.usage_metadata, response_metadata=ai.response_metadata)]
        return update

    def ask_node(state: AgentState) -> dict[str, Any]:
        pending, waited = gate.ask(Proposal.load(state["pending"]))
        return {"pending": [p.state() for p in pending],
                "turn_started": state.get("turn_started", time.time()) + waited}

    def execute_node(state: AgentState) -> dict[str, Any]:
        messages: list[ToolMessage] = []
        counters = Counters(state.get("tool_calls", 0), state.get("write_actions", 0))
        recommendations = list(state.get("recommendations", []))
        stop = None
        for p in Proposal.load(state.get("pending", [])):
            ok = p.status in (Status.RUN, Status.RECOMMEND)
            if stop == "interrupted":
                content, ok = "Not run: the person interrupted the previous tool (Ctrl-C).", False
            elif p.status is Status.RUN:
                counters.ran(p.risk)
                done = gate.run(p, ctx)
                content, ok, stop = done.content, done.ok, done.stop or stop
            else:
                content = p.outcome()
                if p.status is Status.RECOMMEND:
                    recommendations.append({"tool": p.name, "args": p.args, "risk": p.risk, "command": p.command})
                if p.ends_question:
                    stop = stop or f"stopped: {p.reason}"
            messages.append(ToolMessage(content=content, tool_call_id=p.id, name=p.name,
                                        status="success" if ok else "error"))
        invalid = state.get("invalid", 0)
        if stop is None and invalid >= budgets.max_invalid_calls:
            stop = f"stopped: the model made invalid tool calls {invalid} times in a row"
        return {
            "messages": messages, "pending": [], "tool_calls": counters.tool_calls,
            "write_actions": counters.write_actions, "rounds": state.get("rounds", 0) + 1,
            "recommendations": recommendations, "stop": stop,
        }

    def finish_node(state: AgentState) -> dict[str, Any]:
        reason = state.get("stop") or "stopped"
        if reason == "interrupted":
            text = "Interrupted (Ctrl-C): the running tool was stopped and its run marked interrupted. Ask again to continue."
        else:
            text = f"I {reason}. Here is where things stand: see the tool results above."
        record("stopped", reason=reason)
        return {"messages": [AIMessage(content=text)]}

    def after_model(state: AgentState) -> str:
        ai = state["messages"][-1]
        if isinstance(ai, AIMessage) and (ai.tool_calls or ai.invalid_tool_calls):
            return "gate"
        return END

    def after_gate(state: AgentState) -> str:
        return "ask" if any(p.status is Status.ASK for p in Proposal.load(state.get("pending", []))) else "execute"

    def after_execute(state: AgentState) -> str:
        return "finish" if state.get("stop") else "model"

    graph = StateGraph(AgentState)
    graph.add_node("model", model_node)
    graph.add_node("gate", gate_node)
    graph.add_node("ask", ask_node)
    graph.add_node("execute", execute_node)
    graph.add_node("finish", finish_node)
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", after_model, ["gate", END])
    graph.add_conditional_edges("gate", after_gate, ["ask", "execute"])
    graph.add_conditional_edges("ask", after_gate, ["ask", "execute"])
    graph.add_conditional_edges("execute", after_execute, ["model", "finish"])
    graph.add_edge("finish", END)
    return graph.compile(checkpointer=checkpointer)
