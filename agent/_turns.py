"""One call of the embedded model, as the graphs see it: a tool turn or an answer.

:func:`tool_turn` decides the call with :func:`agent._decode.decide_call` (only the latest
request is read: a short history window, and tool results, where injected text could hide,
never choose a tool); :func:`facts_answer` answers from the tool results of the turn. Both
return an OpenAI-format assistant message, the token usage and the decoding trace that the
``model_call`` event records.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from ._clauses import clauses, first_run, resolve
from ._decode import Choice, ConstrainedLM, LlamaConstrained, chatml, decide_call, retrieval_pick
from ._facts import lead_is_safe, parse_result, render_facts
from ._values import ProjectValues

__all__ = ["SHORT_SYSTEM", "facts_answer", "tool_turn"]

#: What the embedded model is told when it answers in words (the full system prompt costs a
#: 135M model seconds of prompt reading and it follows none of its rules).
SHORT_SYSTEM = ("You are the Blase assistant for a machine-learning project. Answer in one or two short "
                "sentences. You cannot browse, send messages or act outside the project.")
_LEAD_SYSTEM = ("Write one short sentence that tells the user what the result below is about. "
                "Do not write numbers or ids.")

Message = dict[str, Any]


def _request(messages: Sequence[BaseMessage]) -> str:
    last = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
    return str(last.content) if last is not None else ""


def _forced(tool_choice: Any) -> str | None:
    if isinstance(tool_choice, Mapping):
        return (tool_choice.get("function") or {}).get("name")
    if isinstance(tool_choice, str) and tool_choice not in ("auto", "none", "required", "any"):
        return tool_choice
    return None


def _usage(calls: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    return {"prompt_tokens": sum(c.get("prompt_tokens", 0) for c in calls),
            "completion_tokens": sum(c.get("output_tokens", 0) for c in calls)}


def _rounds(messages: Sequence[BaseMessage]) -> tuple[int, list[ToolMessage]]:
    """Tool rounds since the latest request, and the results of the last one."""
    rounds, last = 0, []
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            break
        if isinstance(m, AIMessage) and m.tool_calls:
            rounds += 1
    if rounds:
        last = _turn_results(messages)
    return rounds, last


def _failed(results: Sequence[ToolMessage]) -> bool:
    return not results or any(m.status == "error" or str(m.content).startswith(("Not run", "The person rejected"))
                              for m in results)


def tool_turn(lm: ConstrainedLM, messages: Sequence[BaseMessage], tools: Sequence[Mapping[str, Any]],
              tool_choice: Any, values: ProjectValues, policy: Choice
              ) -> tuple[Message, dict[str, int], dict[str, Any]] | None:
    """The model's move for the latest request: one tool call, or a short answer when none fits;
    ``None`` once every clause of the request had its round (or a round failed): then the
    results are answered.

    A request that reads and then acts on what it found is two clauses (:func:`~agent._clauses.clauses`),
    decided one per round; the second's "it" is the run the first one's result names."""
    request = _request(messages)
    forced = _forced(tool_choice)
    parts = [request] if forced else clauses(request, lambda text: retrieval_pick(text, tools, values))
    done, last = _rounds(messages)
    if done >= len(parts) or (done and _failed(last)):
        return None
    clause = resolve(parts[done], first_run([str(m.content) for m in last], values)) if done else parts[0]
    decision = decide_call(clause, tools, values, lm, choice=policy, force=forced)
    trace = decision.trace
    if len(parts) > 1:
        trace["clause"] = {"index": done, "of": len(parts), "text": clause}
    if decision.tool is not None:
        call = {"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                "function": {"name": decision.tool, "arguments": json.dumps(decision.args)}}
        message: Message = {"content": "", "tool_calls": [call]}
    else:
        text, timing = lm.answer(SHORT_SYSTEM, request)
        trace.setdefault("calls", []).append({"stage": "answer", **timing})
        message = {"content": text.strip()}
    calls = trace.get("calls", [])
    trace["first_token_s"] = calls[0]["first_token_s"] if calls else trace.get("seconds")
    return message, _usage(calls), trace


def _turn_results(messages: Sequence[BaseMessage], *, since: type[BaseMessage] = AIMessage) -> list[ToolMessage]:
    """The tool results after the latest ``since`` message (the last round's, or with
    ``HumanMessage`` every round's of the question)."""
    out: list[ToolMessage] = []
    for m in reversed(messages):
        if isinstance(m, ToolMessage):
            out.append(m)
        elif isinstance(m, since):
            break
    return list(reversed(out))


def facts_lines(results: Sequence[ToolMessage]) -> list[str]:
    """The facts of this turn's tool results, each under the tool's name; errors and
    recommendations word for word."""
    lines: list[str] = []
    for m in results:
        text = str(m.content)
        parsed = parse_result(text) if m.status != "error" and not text.startswith("Not run") else None
        if parsed is None:
            lines.append(text.strip())
        else:
            lines += [f"{m.name or 'the tool'} says:", *render_facts(m.name or "tool", parsed)]
    return lines


def facts_answer(llama: Any, messages: Sequence[BaseMessage], *, lead: bool = False
                 ) -> tuple[Message, dict[str, int], dict[str, Any]]:
    """The answer after tool results: the facts by code, and with ``lead`` one sentence of the
    model's in front (kept only when it carries no number or id the facts lack).

    The embedded 135M model's sentences invent (asked to introduce a run list it wrote of
    "the 2019 NBA season"), so ``lead`` is off for it; a failed or refused call is always told
    word for word, with no sentence in front."""
    results = _turn_results(messages, since=HumanMessage)
    facts = "\n".join(facts_lines(results))
    trace: dict[str, Any] = {"answer": "facts rendered by code", "lead_kept": False, "calls": []}
    if not lead or any(m.status == "error" or str(m.content).startswith("Not run") for m in results):
        return {"content": facts}, _usage([]), trace
    names = ", ".join(dict.fromkeys(m.name or "a tool" for m in results))
    text, timing = LlamaConstrained(llama).complete(
        chatml(_LEAD_SYSTEM, f"Question: {_request(messages)}\nResult of: {names}"),
        max_tokens=32, stop=("<|im_end|>", "\n"), repeat_penalty=1.3)
    text = text.strip()
    trace.update(lead_kept=bool(text) and lead_is_safe(text, facts), calls=[{"stage": "lead", **timing}],
                 first_token_s=timing["first_token_s"])
    content = f"{text}\n{facts}" if trace["lead_kept"] else facts
    return {"content": content}, _usage(trace["calls"]), trace
