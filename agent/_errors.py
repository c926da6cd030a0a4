"""The assistant's errors. Each says what went wrong and what to do about it."""

from __future__ import annotations

from blase.errors import BlaseError

__all__ = ["AgentError", "ProviderError", "SessionError"]


class AgentError(BlaseError):
    """Root of the assistant's errors."""


class ProviderError(AgentError):
    """No LLM provider is configured or reachable, a key is rejected, or a call timed out."""


class SessionError(AgentError):
    """A conversation cannot be started, found or resumed (e.g. a damaged session store)."""
