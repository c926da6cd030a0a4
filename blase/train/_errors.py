"""The train step's error."""

from __future__ import annotations

from blase.errors import BlaseError

__all__ = ["TrainError"]


class TrainError(BlaseError):
    """Training cannot start or go on: a bad model or script, a mismatch between the model and
    the shards, a NaN loss, a full disk while checkpointing, or an unusable checkpoint."""
