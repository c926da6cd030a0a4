"""The LangGraph graph: model -> gate -> (ask) -> execute -> model ... -> answer.

- ``model`` calls the chat model with the system prompt, the conversation and the tool specs.
- ``gate`` validates every proposed call with pydantic (an unknown tool or bad arguments goes
  back to the model as a tool error) and decides per call with :func:`~agent._gate.decide`.
- ``ask`` pauses on LangGraph's ``interrupt`` once per call that needs a person; the resume
  value approves, rejects (with a note for the model) or edits the arguments.
- ``execute`` runs what may run and answers every call with a ToolMessage: the summarised
  result, the error, the recommendation (the exact ``blase`` command), the rejection or the
  budget that stopped it.
- ``finish`` ends a question that a budget, repeated invalid calls or Ctrl-C stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

from blase.tools import TOOLS, ToolContext, ToolError, get_tool, tool_schemas
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
from langgraph.types import interrupt

from ._gate import Budgets, decide

__all__ = ["AgentState", "Recorder", "build_graph", "hash_text"]

logger = logging.getLogger(__name__)

Recorder = Callable[..., None]
#: Longest tool result the model sees (characters of JSON); longer ones are cut with a note.
MAX_RESULT_CHARS = 6000
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


def _result_text(output: Any) -> str:
    text = output.model_dump_json(exclude_defaults=False) if hasattr(output, "model_dump_json") else json.dumps(output, default=str)
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + f" ... [result truncated: {len(text) - MAX_RESULT_CHARS} more characters]"
    return text


def _summary(output: Any) -> str:
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

    def gate_node(state: AgentState) -> dict[str, Any]:
        ai = state["messages"][-1]
        assert isinstance(ai, AIMessage)
        autonomy = state.get("autonomy", "manual")
        calls = [dict(c) for c in ai.tool_calls]
        for bad in ai.invalid_tool_calls:
            calls.append({
                "name": bad.get("name") or "(none)", "args": {"_invalid": str(bad.get("args"))[:300]},
                "id": bad.get("id"), "invalid": bad.get("error") or "arguments are not valid JSON",
            })
        rewritten = False
        for n, c in enumerate(calls):
            if not c.get("id"):
                c["id"] = f"call_{ai.id or 'x'}_{n}"
                rewritten = True
        if ai.invalid_tool_calls:
            rewritten = True
        tool_calls, writes = state.get("tool_calls", 0), state.get("write_actions", 0)
        elapsed = time.time() - state.get("turn_started", time.time())
        pending: list[dict[str, Any]] = []
        any_invalid = False
        for c in calls:
            item: dict[str, Any] = {"id": c["id"], "name": c["name"], "args": c.get("args") or {}, "risk": None}
            record("tool_proposal", call_id=c["id"], tool=c["name"], args=item["args"])
            if c.get("invalid"):
                item.update(decision="error", message=f"your call to {c['name']} was malformed: {c['invalid']}. "
                            "Send the arguments as one JSON object matching the tool's schema.")
            else:
                try:
                    tool = get_tool(c["name"])
                    args = tool.validate(item["args"])
                except ToolError as exc:
                    item.update(decision="error", message=str(exc))
                else:
                    risk = tool.risk_for(args)
                    item["risk"] = risk
                    item["args"] = args.model_dump(mode="json", exclude_none=True)
                    item["command"] = tool.recommend(args)
                    decision, reason = decide(
                        autonomy, risk, tool_calls=tool_calls, write_actions=writes,
                        elapsed=elapsed, budgets=budgets,
                    )
                    item.update(decision=decision, reason=reason)
                    if decision == "run":
                        tool_calls += 1
                        writes += risk != "read"
                    elif decision == "ask":
                        item["asked_at"] = time.time()
            if item["decision"] == "error":
                any_invalid = True
                record("gate", call_id=item["id"], tool=item["name"], decision="error", by="gate",
                       reason=item["message"][:300])
            else:
                record("gate", call_id=item["id"], tool=item["name"], decision=_word(item["decision"]),
                       by="gate", risk=item["risk"], reason=item["reason"])
            pending.append(item)
        update: dict[str, Any] = {"pending": pending, "invalid": state.get("invalid", 0) + 1 if any_invalid else 0}
        if rewritten:
            # The conversation must show every call the model made, so each gets an answer.
            fixed = [{"name": c["name"], "args": c.get("args") or {}, "id": c["id"], "type": "tool_call"} for c in calls]
            update["messages"] = [AIMessage(content=ai.content, tool_calls=fixed, id=ai.id,
                                            usage_metadata=ai.usage_metadata, response_metadata=ai.response_metadata)]
        return update

    def ask_node(state: AgentState) -> dict[str, Any]:
        pending = [dict(p) for p in state["pending"]]
        index = next(i for i, p in enumerate(pending) if p["decision"] == "ask")
        item = pending[index]
        answer = interrupt({
            "tool": item["name"], "args": item["args"], "risk": item["risk"], "reason": item["reason"],
            "call_id": item["id"], "command": item.get("command"),
        })
        action, args, note, by = _read_answer(answer)
        waited = time.time() - item.get("asked_at", time.time())
        update: dict[str, Any] = {"turn_started": state.get("turn_started", time.time()) + waited}
        if action == "edit" and args is not None:
            try:
                tool = get_tool(item["name"])
                valid = tool.validate(args)
            except ToolError as exc:
                item.update(decision="error", message=f"the person's edited arguments are invalid: {exc}")
                record("gate", call_id=item["id"], tool=item["name"], decision="error", by=by, reason=str(exc)[:300])
            else:
                new_risk = tool.risk_for(valid)
                item.update(args=valid.model_dump(mode="json", exclude_none=True), decision="run",
                            edited=True, risk=new_risk, command=tool.recommend(valid))
                record("gate", call_id=item["id"], tool=item["name"], decision="approved", by=by,
                       edited=True, args=item["args"], note=note)
        elif action in ("approve", "edit"):
            item["decision"] = "run"
            record("gate", call_id=item["id"], tool=item["name"], decision="approved", by=by, note=note)
        else:
            item.update(decision="rejected", note=note)
            record("gate", call_id=item["id"], tool=item["name"], decision="rejected", by=by, note=note)
        pending[index] = item
        update["pending"] = pending
        return update

    def execute_node(state: AgentState) -> dict[str, Any]:
        messages: list[ToolMessage] = []
        tool_calls, writes = state.get("tool_calls", 0), state.get("write_actions", 0)
        recommendations = list(state.get("recommendations", []))
        stop = None
        for item in state.get("pending", []):
            name, call_id = item["name"], item["id"]
            decision = item["decision"]
            status = "success"
            if stop == "interrupted":
                content = "Not run: the person interrupted the previous tool (Ctrl-C)."
                status = "error"
            elif decision == "run":
                tool_calls += 1
                writes += item.get("risk") != "read"
                content, status, stop_now = _run_tool(item, ctx, record)
                stop = stop_now or stop
            elif decision == "recommend":
                recommendations.append({"tool": name, "args": item["args"], "risk": item["risk"],
                                        "command": item["command"]})
                content = (f"Not run: {item['reason']}. Recommend it to the person instead; they can run:\n"
                           f"    {item['command']}\nSay in one line what it would do and why.")
            elif decision == "rejected":
                note = f" Their note: {item['note']}" if item.get("note") else ""
                content = f"The person rejected this call to {name}; it did not run.{note} Do not retry it unchanged."
                status = "error"
            elif decision == "deny":
                content = f"Not run: {item['reason']}. Stop calling tools and answer with what you have."
                status = "error"
                if "budget" in item["reason"] and "write" not in item["reason"]:
                    stop = stop or f"stopped: {item['reason']}"
            else:
                content = f"Tool error: {item.get('message', 'invalid call')}"
                status = "error"
            messages.append(ToolMessage(content=content, tool_call_id=call_id, name=name, status=status))
        invalid = state.get("invalid", 0)
        if stop is None and invalid >= budgets.max_invalid_calls:
            stop = f"stopped: the model made invalid tool calls {invalid} times in a row"
        return {
            "messages": messages, "pending": [], "tool_calls": tool_calls, "write_actions": writes,
            "rounds": state.get("rounds", 0) + 1, "recommendations": recommendations, "stop": stop,
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
        return "ask" if any(p["decision"] == "ask" for p in state.get("pending", [])) else "execute"

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


def _word(decision: str) -> str:
    return {"run": "ran", "ask": "asked", "recommend": "recommended", "deny": "denied"}.get(decision, decision)


def _read_answer(answer: Any) -> tuple[str, dict[str, Any] | None, str | None, str]:
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


def _run_tool(item: dict[str, Any], ctx: ToolContext, record: Recorder) -> tuple[str, str, str | None]:
    """Run one approved call: ``(content for the model, status, stop reason or None)``."""
    name, call_id = item["name"], item["id"]
    before = len(ctx.started_runs)
    started = time.perf_counter()
    try:
        output = get_tool(name)(item["args"], ctx)
    except KeyboardInterrupt:
        runs = ctx.started_runs[before:]
        record("tool_result", call_id=call_id, tool=name, status="interrupted", runs=runs,
               seconds=round(time.perf_counter() - started, 3))
        return (f"Interrupted by the person (Ctrl-C) while {name} ran"
                + (f"; run {', '.join(runs)} is marked interrupted" if runs else "") + "."), "error", "interrupted"
    except ToolError as exc:
        record("tool_result", call_id=call_id, tool=name, status="error", error=str(exc)[:500],
               runs=ctx.started_runs[before:], seconds=round(time.perf_counter() - started, 3))
        return f"Tool error: {exc}", "error", None
    except Exception as exc:  # a tool bug must not end the session: the model hears of it
        logger.debug("tool %s raised", name, exc_info=True)
        record("tool_result", call_id=call_id, tool=name, status="error",
               error=f"{type(exc).__name__}: {exc}"[:500], runs=ctx.started_runs[before:])
        return f"Tool error: {name} failed unexpectedly ({type(exc).__name__}: {exc})", "error", None
    record("tool_result", call_id=call_id, tool=name, status="ok", summary=_summary(output),
           runs=ctx.started_runs[before:], seconds=round(time.perf_counter() - started, 3))
    return _result_text(output), "success", None
