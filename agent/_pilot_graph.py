"""The autopilot's LangGraph graph: pipeline -> next step -> model -> gate -> (ask) -> execute.

- ``pipeline`` runs the deterministic pipeline once (one tracked run).
- ``next`` takes the next step of the run under review, summarises its record and picks the
  tools for that moment; with no step left (or a stop) it goes to ``report``.
- ``model`` asks the model for one decision about the step.
- ``gate``, ``ask`` and ``execute`` go through the shared :class:`~agent._calls.CallGate` (the
  chat graph's and the MCP server's too): each proposal is validated (pydantic, and a config
  change against ProjectConfig) and judged by :func:`~agent._gate.judge`; only the first write
  or destructive proposal of a step counts (one change at a time). ``ask`` pauses on
  ``interrupt`` for a person; ``execute`` runs what may run, turns the rest into
  recommendations, rejections or budget denials, and records an ``agent_decision`` each.
  An executed config change re-runs the pipeline from the affected step; the review goes on
  with the new run.
- ``report`` writes the final report.
"""

from __future__ import annotations

import time
from typing import Any

from blase.tools import Tool, ToolError, get_tool
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.graph import END, START, StateGraph

from ._calls import CallGate, Counters, Proposal, Status, invalid_streak, proposed_calls
from ._graph import hash_text
from ._pilot_state import SYSTEM_PROMPT, AutopilotState, summary_json
from ._proposals import (
    ACCEPT_DOC,
    CONFIG_CHANGE_DOC,
    AcceptInput,
    AcceptOutput,
    ConfigChangeInput,
    ConfigChangeOutput,
    accept_step,
    current_config,
    make_tool,
    plan_change,
    rerun_command,
)
from ._records import step_brief, step_records, test_metrics

__all__ = ["build_pilot_graph", "pilot_tools"]

CHANGE = "propose_config_change"
ACCEPT = "accept_step"


def pilot_tools() -> dict[str, Tool]:
    """The autopilot's own tools (not in the shared registry)."""

    def no_direct_call(args: ConfigChangeInput, ctx: Any) -> ConfigChangeOutput:
        raise ToolError("propose_config_change runs only under `blase run --autonomy`",
                        hint="use run_pipeline with overrides in a chat")

    return {
        CHANGE: make_tool(CHANGE, no_direct_call, ConfigChangeInput, ConfigChangeOutput, "write", CONFIG_CHANGE_DOC,
                          lambda a: f"blase run --set {a.key}={a.value}"),
        ACCEPT: make_tool(ACCEPT, accept_step, AcceptInput, AcceptOutput, "read", ACCEPT_DOC, lambda a: ""),
    }


def _lookup(own: dict[str, Tool], name: str) -> Tool:
    return own[name] if name in own else get_tool(name)


def _queue(pilot: Any, run_id: str, from_step: str | None) -> list[str]:
    from blase.track import load_run

    order = pilot.steps().order()
    records = step_records(load_run(run_id, [pilot.project.root], history=False))
    start = order.index(from_step) if from_step in order else 0
    return [s for s in order[start:] if s in records and records[s]["state"] != "reused"]


def _tools_for(pilot: Any, step: Any, failed: bool, to_step: str | None) -> list[str]:
    """The tools offered after ``step``: its own review tools (fewer after a failure), those
    it offers when the run stopped early, and the drift and update tools when there is new data."""
    names = [CHANGE, ACCEPT, "read_run_log"] if failed else list(step.review_tools)
    if to_step not in (None, pilot.steps().order()[-1]):
        names += step.review_tools_if_stopped
    return names


def build_pilot_graph(pilot: Any, *, checkpointer: Any = None) -> Any:
    """Compile the autopilot graph for an :class:`~agent._autopilot.Autopilot`."""
    own = pilot_tools()
    record = pilot._record
    budgets = pilot.budgets

    def gate_for(state: AutopilotState) -> CallGate:
        """The shared gate, with this moment's tools and a config change planned against the
        overrides in effect."""
        overrides = list(state.get("overrides", []))

        def describe(p: Proposal, tool: Tool, args: Any) -> None:
            if p.name == CHANGE:
                change = plan_change(pilot.project, overrides, args.key, args.value, ctx=pilot.ctx)
                p.change = {"key": change.key, "value": change.value, "before": change.before,
                            "pair": change.pair, "from_step": change.from_step,
                            "overrides": list(change.overrides)}
                p.command = change.command
            else:
                p.command = tool.recommend(args)

        return CallGate(record, budgets, lookup=lambda name: _lookup(own, name), describe=describe,
                        free={ACCEPT: "accepting a step needs no approval"})

    def pipeline_node(state: AutopilotState) -> dict[str, Any]:
        plan = state["plan"]
        info = pilot.run_pipeline(list(state.get("overrides", [])), from_step=plan.get("from_step"),
                                  to_step=plan.get("to_step"), resume=plan.get("resume"),
                                  cache=plan.get("cache", True), first=True)
        record("pipeline_run", run=info["run_id"], status=info["status"], cause=None, seconds=info["seconds"])
        return {"runs": [info], "run_id": info["run_id"], "queue": _queue(pilot, info["run_id"], plan.get("from_step")),
                "step": None}

    def next_node(state: AutopilotState) -> dict[str, Any]:
        from blase.track import load_run

        queue = list(state.get("queue", []))
        if state.get("stop") or not queue:
            return {"step": None, "queue": []}
        step = queue.pop(0)
        reviewed = pilot.steps().get(step)
        run = load_run(state["run_id"], [pilot.project.root], history=False)
        config = current_config(pilot.project, list(state.get("overrides", [])))
        new_data = pilot.new_data(config) if "new_data" in reviewed.review_inputs else []
        brief = step_brief(pilot.project, run, reviewed, config=config,
                           profile=pilot.profile(config) if "profile" in reviewed.review_inputs else None,
                           new_data=new_data)
        names = _tools_for(pilot, reviewed, brief.state == "failed", (state.get("plan") or {}).get("to_step"))
        if new_data:
            names += ["check_drift", "trigger_update"]
        names = [n for n in names if n in own or _available(n)]
        done = [a for a in state.get("actions", []) if a["decision"] not in ("accepted",)]
        history = "; ".join(f"{a['step']}: {a['tool']} {a.get('summary', '')} -> {a['decision']}"
                            + (f" by {a['by']} (note: {a['note']})" if a.get("note") else "") for a in done[-4:])
        text = (f"{brief.text}\n"
                f"Overrides in effect: {', '.join(state.get('overrides', [])) or 'none'}\n"
                + (f"Earlier decisions: {history}\n" if history else "")
                + f"Decide for step {step}: call one of {', '.join(names)}.")
        record("step_review", run=run.id, step=step, state=brief.state, signals=brief.signals, tools=names,
               text=text[:3000])
        return {"queue": queue, "step": step, "messages": [HumanMessage(content=text)], "rounds": 0,
                "tool_calls": 0, "invalid": 0, "step_done": False, "tool_names": names,
                "reviews": state.get("reviews", 0) + 1}

    def model_node(state: AutopilotState) -> dict[str, Any]:
        names = state.get("tool_names") or [ACCEPT]
        schemas = [_lookup(own, n).schema() for n in names]
        system = SystemMessage(SYSTEM_PROMPT + f"\n\nAutonomy level now: {state.get('autonomy', 'manual')}.")
        request = [system, *state.get("messages", [])]
        started = time.perf_counter()
        ai = pilot.llm.bind_tools(schemas).invoke(request)
        latency = time.perf_counter() - started
        if not isinstance(ai, AIMessage):
            ai = AIMessage(content=str(getattr(ai, "content", ai)))
        usage, meta = ai.usage_metadata or {}, ai.response_metadata or {}
        record("model_call", provider=meta.get("provider", pilot.spec.provider),
               model=meta.get("model_name", pilot.spec.model), prompt_hash=pilot.prompt_hash,
               request_hash=hash_text(summary_json([m.content for m in request])),
               input_tokens=usage.get("input_tokens"), output_tokens=usage.get("output_tokens"),
               latency_s=round(meta.get("latency_s", latency), 3), tools_bound=True, step=state.get("step"),
               tool_calls=[c["name"] for c in ai.tool_calls] + [f"(invalid) {c.get('name')}" for c in ai.invalid_tool_calls],
               text=str(ai.content)[:500], decode=meta.get("decode"))
        return {"messages": [*state.get("messages", []), ai],
                "agent_seconds": state.get("agent_seconds", 0.0) + latency}

    def after_model(state: AutopilotState) -> str:
        ai = state["messages"][-1]
        if isinstance(ai, AIMessage) and (ai.tool_calls or ai.invalid_tool_calls):
            return "gate"
        return "answered"

    def answered_node(state: AutopilotState) -> dict[str, Any]:
        ai = state["messages"][-1]
        accepted = Proposal(id="", name=ACCEPT, args={"reason": str(ai.content)[:300]}, risk="read")
        action = _action(state, accepted, "accepted", by="model", gate_reason="the model answered without a proposal")
        return {"actions": [*state.get("actions", []), action], "step_done": True}

    def gate_node(state: AutopilotState) -> dict[str, Any]:
        ai = state["messages"][-1]
        calls, _ = proposed_calls(ai)
        counters = Counters(state.get("tool_calls", 0), state.get("write_actions", 0), state.get("agent_seconds", 0.0))
        pending = gate_for(state).review(calls, autonomy=state.get("autonomy", "manual"), counters=counters,
                                         allowed=state.get("tool_names") or [], one_change=True,
                                         step=state.get("step"))
        fixed = [{"name": c["name"], "args": c.get("args") or {}, "id": c["id"], "type": "tool_call"} for c in calls]
        messages = [*state["messages"][:-1], AIMessage(content=ai.content, tool_calls=fixed, id=ai.id)]
        return {"pending": [p.state() for p in pending], "messages": messages}

    def ask_node(state: AutopilotState) -> dict[str, Any]:
        pending, _ = gate_for(state).ask(Proposal.load(state["pending"]), step=state.get("step"),
                                         run=state.get("run_id"))
        return {"pending": [p.state() for p in pending]}

    def rerun(p: Proposal, state: AutopilotState) -> tuple[str, dict[str, Any]]:
        """An approved config change: the pipeline again from the step it affects."""
        change = p.change or {}
        info = pilot.run_pipeline(change["overrides"], from_step=change["from_step"],
                                  cause={"step": state.get("step"), "key": change["key"],
                                         "value": change["value"], "from_run": state.get("run_id")})
        record("pipeline_run", run=info["run_id"], status=info["status"], cause=info["cause"],
               seconds=info["seconds"])
        record("tool_result", call_id=p.id, tool=p.name, status="ok",
               summary=f"run {info['run_id']} {info['status']} from {change['from_step']}",
               runs=[info["run_id"]], seconds=info["seconds"])
        content = summary_json({"run_id": info["run_id"], "status": info["status"],
                                "from_step": change["from_step"], "metrics": _metrics(pilot, info["run_id"]),
                                "error": info["error"]})
        return content, info

    def execute_node(state: AutopilotState) -> dict[str, Any]:
        started = time.perf_counter()
        pipeline_seconds = 0.0
        messages = list(state.get("messages", []))
        actions = list(state.get("actions", []))
        runs = list(state.get("runs", []))
        overrides = list(state.get("overrides", []))
        update: dict[str, Any] = {}
        counters = Counters(state.get("tool_calls", 0), state.get("write_actions", 0))
        pending = Proposal.load(state.get("pending", []))
        gate = gate_for(state)
        step_done = False
        for p in pending:
            ok, result_run = True, None
            if p.status is Status.RUN:
                counters.ran(p.risk)
                word = "approved" if p.approved else "ran"
                if p.name == ACCEPT:
                    content, word = "Accepted; the driver goes on.", "accepted"
                elif p.name == CHANGE:
                    content, info = rerun(p, state)
                    pipeline_seconds += info["seconds"]
                    result_run = info["run_id"]
                    runs.append(info)
                    overrides = list((p.change or {})["overrides"])
                    update.update(run_id=info["run_id"], queue=_queue(pilot, info["run_id"], info["from_step"]))
                else:
                    done = gate.run(p, pilot.ctx)
                    if done.stop == "interrupted":
                        raise KeyboardInterrupt
                    content, ok = done.content, done.ok
                    word = word if ok else "failed"
                    result_run = done.runs[-1] if done.runs else None
                step_done = step_done or p.name == ACCEPT or p.risk != "read"
            else:
                content, ok = p.outcome(), p.status is Status.RECOMMEND
                word = p.status.word
                step_done = step_done or p.status is not Status.ERROR
            messages.append(ToolMessage(content=content, tool_call_id=p.id, name=p.name,
                                        status="success" if ok else "error"))
            if p.status is not Status.ERROR and not (p.risk == "read" and p.name != ACCEPT):
                actions.append(_action(state, p, word, by=p.by, gate_reason=p.reason or None,
                                       result_run=result_run, note=p.note))
        invalid = invalid_streak(state.get("invalid", 0), pending)
        rounds = state.get("rounds", 0) + 1
        if rounds >= pilot.max_rounds or invalid >= budgets.max_invalid_calls:
            step_done = True
        if step_done and not any(a["run"] == state.get("run_id") and a["step"] == state.get("step") for a in actions):
            actions.append(_action(state, Proposal(id="", name="(read tools only)"), "undecided", by="model",
                                   gate_reason="the model read but proposed nothing within its rounds"))
        agent = state.get("agent_seconds", 0.0) + (time.perf_counter() - started) - pipeline_seconds
        return {**update, "messages": messages, "actions": actions, "runs": runs, "overrides": overrides,
                "pending": [], "tool_calls": counters.tool_calls, "write_actions": counters.write_actions,
                "invalid": invalid, "rounds": rounds, "step_done": step_done, "agent_seconds": agent}

    def _action(state: AutopilotState, p: Proposal, decision: str, *, by: str,
                gate_reason: str | None = None, result_run: str | None = None, note: str | None = None) -> dict[str, Any]:
        change = p.change or {}
        summary = f"{change['key']}={_short(change['value'])}" if change else ", ".join(
            f"{k}={_short(v)}" for k, v in p.args.items() if k != "reason")
        command = p.command
        if decision == "recommended" and change:
            command = rerun_command(change["overrides"], change["from_step"])
        action = {"run": state.get("run_id"), "step": state.get("step"), "tool": p.name, "args": p.args,
                  "risk": p.risk, "decision": decision, "by": by, "reason": str(p.args.get("reason") or "")[:300],
                  "gate_reason": gate_reason, "command": command, "summary": summary, "result_run": result_run,
                  "note": note, "change": change or None}
        record("agent_decision", **action)
        return action

    def after_next(state: AutopilotState) -> str:
        return "model" if state.get("step") else "report"

    def after_gate(state: AutopilotState) -> str:
        return "ask" if any(p.status is Status.ASK for p in Proposal.load(state.get("pending", []))) else "execute"

    def after_execute(state: AutopilotState) -> str:
        return "next" if state.get("step_done") else "model"

    def report_node(state: AutopilotState) -> dict[str, Any]:
        from ._report import build_report

        report = build_report(pilot, state)
        record("report", **report.to_json())
        record("answer", text=report.text[:4000])
        return {"report": report.to_json()}

    graph = StateGraph(AutopilotState)
    graph.add_node("pipeline", pipeline_node)
    graph.add_node("next", next_node)
    graph.add_node("model", model_node)
    graph.add_node("answered", answered_node)
    graph.add_node("gate", gate_node)
    graph.add_node("ask", ask_node)
    graph.add_node("execute", execute_node)
    graph.add_node("report", report_node)
    graph.add_edge(START, "pipeline")
    graph.add_edge("pipeline", "next")
    graph.add_conditional_edges("next", after_next, ["model", "report"])
    graph.add_conditional_edges("model", after_model, ["gate", "answered"])
    graph.add_edge("answered", "next")
    graph.add_conditional_edges("gate", after_gate, ["ask", "execute"])
    graph.add_conditional_edges("ask", after_gate, ["ask", "execute"])
    graph.add_conditional_edges("execute", after_execute, ["model", "next"])
    graph.add_edge("report", END)
    return graph.compile(checkpointer=checkpointer)


def _available(name: str) -> bool:
    try:
        return get_tool(name).available()
    except ToolError:
        return False


def _metrics(pilot: Any, run_id: str) -> dict[str, Any]:
    from blase.track import load_run

    try:
        return {k: round(v, 4) for k, v in test_metrics(load_run(run_id, [pilot.project.root], history=False)).items()}
    except Exception:
        return {}


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else summary_json(value)
    return text if len(text) <= 60 else text[:57] + "..."

