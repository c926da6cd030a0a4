"""A request that reads, then acts ("find the best run and deploy it"), for small models.

A small model gets one tool call per round and cannot plan. Many two-part requests have a fixed
shape, though: a read that finds something, then an action on what it found, joined by "then",
"and" or a semicolon. :func:`clauses` splits such a request when retrieval agrees that the
first part is a read tool's and the second a different tool's; each round then decides the
call of one clause. :func:`resolve` puts the run the previous round's result names first (a
sorted run list's top row, an inspected run) in place of the second clause's "it".

Nothing here calls a model; a request that does not split is one clause, as before.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from ._values import RUN_PRONOUN as _PRONOUN
from ._values import ProjectValues

__all__ = ["clauses", "first_run", "resolve"]

_JOINS = re.compile(r"\s*(?:,\s*and\s+then|,\s*then|\band\s+then|\bthen|;|,?\s+and|[.?!](?=\s+[A-Z]))\s+", re.I)
_RUN_ID = re.compile(r"\b[0-9a-f]{12}\b")

_CONDITION = re.compile(r"\b(?:if|unless|when|whether|in case)\b", re.I)


class _Picked(Protocol):
    tool: str | None
    risk: str | None
    kinds: frozenset[str]


def clauses(request: str, pick: Callable[[str], _Picked]) -> list[str]:
    """``request`` as the clauses its rounds decide: ``[read part, action part]`` when it is a
    read and then an action on the run it finds, else ``[request]``.

    ``pick(text)`` is what retrieval picks for ``text`` (:class:`~agent._decode.Pick`). The action
    must refer back ("it", "that run"), take a run, and not be conditional ("... if needed": a
    small model cannot judge the condition, so the request stays one clause and one round)."""
    for match in _JOINS.finditer(request):
        first, rest = request[: match.start()].strip(), request[match.end():].strip()
        if not first or not _PRONOUN.search(rest) or _CONDITION.search(rest):
            continue
        read, action = pick(first), pick(rest)
        if read.tool and action.tool and read.tool != action.tool and read.risk == "read" and "run" in action.kinds:
            return [first, rest]
    return [request]


def first_run(results: Sequence[str], values: ProjectValues) -> str | None:
    """The run the latest result is about: its first row's id (``runs``: a sorted list's top),
    else its ``run_id``/``run``/``id``, else the first known run id in its text."""
    known = set(values.runs)
    for text in reversed(results):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, Mapping):
            rows = data.get("runs")
            if isinstance(rows, list) and rows and isinstance(rows[0], Mapping) and rows[0].get("id"):
                return str(rows[0]["id"])
            for key in ("run_id", "run", "id"):
                if isinstance(data.get(key), str) and data[key]:
                    return data[key]
        for found in _RUN_ID.findall(text):
            if not known or found in known:
                return found
    return None


def resolve(clause: str, run: str | None) -> str:
    """``clause`` with its first "it"/"that run" replaced by ``run`` (unchanged without one)."""
    return _PRONOUN.sub(f"run {run}", clause, count=1) if run else clause
