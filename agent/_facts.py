"""Answers from tool results: the facts are rendered by code; a model at most phrases them.

A 135M model asked to summarise a run list invents run ids and metric values. So after a
tool result, :func:`render_facts` writes its facts (ids, statuses, versions, metric values,
file rows) as short lines straight from the result. A model may add one sentence in front
(off for the embedded model); :func:`lead_is_safe` drops a sentence that carries a number or
an id the facts do not, so no invented value reaches the person.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

__all__ = ["lead_is_safe", "parse_result", "render_facts"]

#: Most lines of facts in one answer.
MAX_LINES = 14
_KEY_FIELDS = ("id", "name", "version", "current", "status", "kind", "step", "event", "source", "path")
#: The notes that cut a result (the graph's size budget) or a value in it (a tool's clip_text).
_TRUNCATED = re.compile(r"\s*\.\.\. \[(?:result truncated: )?\d+ more characters(?: truncated)?\]\s*$")


def _scan(text: str) -> tuple[list[str], int]:
    """The closers of what is open at the end of ``text``, and the last index where a cut
    leaves whole values (after a closing bracket or before a comma)."""
    stack: list[str] = []
    in_string = escaped = False
    last_safe = 0
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append("]" if ch == "[" else "}")
        elif ch in "]}" and stack:
            stack.pop()
            last_safe = i + 1
        elif ch == ",":
            last_safe = i
    return stack, last_safe


def parse_result(text: str) -> Any:
    """A tool result's JSON, also when the graph cut it to its size budget (the open
    lists and objects are closed after the last whole value); None when it is not JSON."""
    text = _TRUNCATED.sub("", text.strip())
    try:
        return json.loads(text)
    except ValueError:
        pass
    stack, last_safe = _scan(text)
    if not stack:
        return None
    head = text[:last_safe]
    try:
        return json.loads(head + "".join(reversed(_scan(head)[0])))
    except ValueError:
        return None


#: Keys whose number is a Unix time (a log event's ``time``), shown as a UTC time.
_TIME_KEYS = ("time", "t", "timestamp")
#: Longest rendering of one value.
MAX_VALUE_CHARS = 160


def _cut(text: str) -> str:
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


def _value(v: Any, key: str = "") -> str:
    if isinstance(v, bool) or v is None:
        return str(v).lower()
    if key in _TIME_KEYS and isinstance(v, (int, float)) and v > 1e9:
        return datetime.fromtimestamp(v, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return _cut(", ".join(_value(x) for x in v[:8]) + (f" (+{len(v) - 8} more)" if len(v) > 8 else ""))
    if isinstance(v, dict):
        return _cut(", ".join(f"{k}={_inner(x, str(k))}" for k, x in list(v.items())[:6]))
    text = str(v)
    if text.lstrip().startswith(("{", "[")):  # JSON kept as text (a clipped event's data): its values
        parsed = parse_result(text)
        if isinstance(parsed, (dict, list)):
            return _value(parsed, key)
    return _cut(text)


def _inner(v: Any, key: str) -> str:
    """A value inside another: a nested object in parentheses, so its pairs stay apart."""
    text = _value(v, key)
    return f"({text})" if isinstance(v, dict) else text


def _row(item: Mapping[str, Any]) -> str:
    head = [f"{k} {_value(item[k], k)}" for k in _KEY_FIELDS if item.get(k) not in (None, "", [], {})]
    rest = []
    for k, v in item.items():
        if k in _KEY_FIELDS or v in (None, "", [], {}) or k.endswith("_at"):
            continue
        rest.append(f"{k}: {_value(v, k)}" if isinstance(v, dict) or k == "data" else f"{k}={_value(v, k)}")
        if len(rest) >= 4:
            break
    return "; ".join([", ".join(head), *rest]) if head else "; ".join(rest)


def render_facts(tool: str, result: Any) -> list[str]:
    """Lines stating what ``result`` (a tool's output, as parsed JSON) says."""
    if not isinstance(result, Mapping):
        return [f"{tool}: {_value(result)}"] if result is not None else []
    lines: list[str] = []
    scalars = [f"{k}={_value(v)}" for k, v in result.items()
               if k != "notes" and not isinstance(v, (list, dict)) and v is not None and not (isinstance(v, str) and "\n" in v)]
    if scalars:
        lines.append(", ".join(scalars))
    for key, value in result.items():
        if key == "notes":
            continue
        if isinstance(value, str) and "\n" in value:
            body = value.strip().splitlines()
            lines += [f"{key}:", *[f"    {line}" for line in body[:30]]]
            if len(body) > 30:
                lines.append(f"    ... {len(body) - 30} more lines")
        elif isinstance(value, list) and value and isinstance(value[0], Mapping):
            lines.append(f"{key} ({len(value)}):")
            lines += [f"- {_row(item)}" for item in value[:MAX_LINES]]
        elif isinstance(value, list):
            lines.append(f"{key}: {_value(value) if value else 'none'}")
        elif isinstance(value, Mapping) and value:
            lines.append(f"{key}:")
            lines += [f"- {k}: {_value(v)}" for k, v in list(value.items())[:MAX_LINES]]
    notes = result.get("notes") or []
    lines += [f"({n})" for n in notes[:2]]
    return lines


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def lead_is_safe(lead: str, facts: str) -> bool:
    """Whether the model's sentence carries only numbers and ids the facts also carry."""
    return all(n in facts for n in _NUMBER.findall(lead)) and all(
        w in facts for w in re.findall(r"\b[0-9a-f]{8,}\b", lead))
