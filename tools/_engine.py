"""Finding engine functions that arrive with later issues (cache, monitor, update).

Tools over those modules are always declared, so their schemas stay stable; when the engine
function is missing, calling the tool is a :class:`~tools._base.ToolError` saying so.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from ._base import ToolError

__all__ = ["call_with_supported", "engine_attr", "has_engine_attr"]

#: Where each capability may live in the engine (module, attribute), first match wins.
_PLACES: dict[str, tuple[tuple[str, str], ...]] = {
    "diff_runs": (("blase.diff", "diff_runs"), ("blase.cache", "diff_runs")),
    "gc": (("blase.gc", "collect"), ("blase.cache", "gc")),
    "reproduce": (("blase.reproduce", "reproduce"),),
    "Monitor": (("blase.monitor", "Monitor"),),
    "Update": (("blase.update", "Update"),),
}


def _find(name: str) -> Any | None:
    for module, attr in _PLACES.get(name, ()):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        value = getattr(mod, attr, None)
        if value is not None:
            return value
    return None


def has_engine_attr(name: str) -> bool:
    """Whether this version of the engine offers ``name``."""
    return _find(name) is not None


def engine_attr(name: str, *, tool: str) -> Any:
    """The engine's ``name``, or :class:`ToolError` "not available in this version"."""
    value = _find(name)
    if value is None:
        from blase import __version__

        places = " or ".join(f"{m}.{a}" for m, a in _PLACES.get(name, (("blase", name),)))
        raise ToolError(
            f"{tool} is not available in this version of Blase ({__version__}): no {places}",
            hint="upgrade Blase; meanwhile answer from the other tools or tell the person",
        )
    return value


def call_with_supported(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` with the keyword arguments its signature accepts (None values dropped)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(*args, **{k: v for k, v in kwargs.items() if v is not None})
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    chosen = {k: v for k, v in kwargs.items() if v is not None and (takes_any or k in params)}
    return fn(*args, **chosen)
