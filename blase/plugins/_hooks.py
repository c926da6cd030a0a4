"""Hooks: plugins that observe a run (they can never change it).

A ``hooks`` plugin's target is a :class:`Hooks` subclass. Every method takes keyword-only
arguments plus ``**future_kwargs``, so Blase can pass more later without breaking a plugin.
A hook gets copies (a step's result as JSON), and a hook that raises is reported as a warning
naming the plugin: the run goes on as if the hook were not there.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["HookRunner", "Hooks"]

logger = logging.getLogger(__name__)


class Hooks:
    """Subclass and override the events you want; the defaults do nothing."""

    def on_step_start(self, *, step: str, run_id: str, **future_kwargs: Any) -> None:
        """``step`` is about to run (or be fetched from the cache) in run ``run_id``."""

    def on_step_end(self, *, step: str, run_id: str, state: str, result: dict[str, Any] | None,
                    **future_kwargs: Any) -> None:
        """``step`` ended: ``state`` is ``done``, ``cached``, ``failed`` or ``interrupted``;
        ``result`` is its record as JSON (None when it failed)."""

    def on_run_end(self, *, run_id: str, status: str, **future_kwargs: Any) -> None:
        """Run ``run_id`` ended with ``status`` (``finished``, ``failed``, ``interrupted``)."""


class HookRunner:
    """Calls each hook, turning its failures into warnings (``(plugin, message)``)."""

    def __init__(self, hooks: list[tuple[str, Hooks]] | None = None) -> None:
        self.hooks = list(hooks or [])
        self.failures: list[tuple[str, str]] = []

    def __bool__(self) -> bool:
        return bool(self.hooks)

    def call(self, event: str, **kwargs: Any) -> None:
        for name, hook in self.hooks:
            try:
                getattr(hook, event)(**kwargs)
            except Exception as exc:  # an observer must never break the run it observes
                message = f"hook {event} of plugin {name} raised {type(exc).__name__}: {exc}"
                logger.warning("%s (the run goes on)", message)
                self.failures.append((name, message))
