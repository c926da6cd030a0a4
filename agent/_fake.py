"""A scripted chat model for tests and demos: answers from a list, records what it saw.

It implements ``bind_tools`` like a real provider, so graph tests run the real graph, gate and
tools without an LLM, fast and exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from pydantic import Field

__all__ = ["ScriptedChatModel", "call"]

_ids = itertools.count(1)


def call(name: str, args: dict[str, Any] | None = None, *, content: str = "", id: str | None = None) -> AIMessage:
    """An AIMessage proposing one tool call."""
    return AIMessage(
        content=content,
        tool_calls=[{"name": name, "args": args or {}, "id": id or f"call_{next(_ids)}", "type": "tool_call"}],
    )


class ScriptedChatModel(BaseChatModel):
    """Returns ``responses`` in order (then ``repeat``, or a plain "done." answer).

    A response may be an AIMessage, a string (a plain answer), or a callable taking the
    messages the model was sent and returning either. ``seen`` keeps every request;
    ``bound_tools`` the tool specs of the last ``bind_tools``.
    """

    responses: list[Any] = Field(default_factory=list)
    repeat: Any = None
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[dict[str, Any]] = Field(default_factory=list)
    index: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any) -> Runnable:
        self.bound_tools = list(tools)
        return self.bind(tool_choice=tool_choice, **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        self.seen.append(list(messages))
        if self.index < len(self.responses):
            item = self.responses[self.index]
            self.index += 1
        elif self.repeat is not None:
            item = self.repeat
        else:
            item = "done."
        if isinstance(item, Callable) and not isinstance(item, (AIMessage, str)):
            item = item(messages)
        if isinstance(item, str):
            item = AIMessage(content=item)
        if isinstance(item, AIMessage) and item.tool_calls:
            # a fresh id per proposal, as a real model gives
            item = AIMessage(content=item.content, tool_calls=[
                {**c, "id": f"{c.get('id') or 'call'}_{next(_ids)}"} for c in item.tool_calls
            ], invalid_tool_calls=item.invalid_tool_calls)
        item = AIMessage(content=item.content, tool_calls=item.tool_calls,
                         invalid_tool_calls=item.invalid_tool_calls,
                         usage_metadata={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
                         response_metadata={"provider": "scripted", "model_name": "scripted", "latency_s": 0.0})
        return ChatResult(generations=[ChatGeneration(message=item)])
