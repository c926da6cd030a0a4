"""The Evaluate subsystem's root error."""

from __future__ import annotations

from blase.errors import BlaseError

__all__ = ["EvaluateError"]


class EvaluateError(BlaseError):
    """A model cannot be evaluated: no shards, an empty split, a model whose output does not
    fit the task, predictions that are not finite numbers."""
