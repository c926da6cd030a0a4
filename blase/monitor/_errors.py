"""The monitor's error."""

from __future__ import annotations

from blase.errors import BlaseError

__all__ = ["MonitorError"]


class MonitorError(BlaseError):
    """New data cannot be checked against a model: no reference profile, missing or retyped
    columns, unreadable data."""
