"""The errors of training and using a model (every kind: built-in or a plugin's)."""

from __future__ import annotations

from blase.errors import BlaseError

__all__ = ["ExportUnsupported", "TrainError"]


class TrainError(BlaseError):
    """Training cannot start or go on: a bad model or script, a mismatch between the model and
    the shards, a NaN loss, a full disk while checkpointing, or an unusable checkpoint; or a
    model kind that cannot be found, loaded or given its options."""


class ExportUnsupported(TrainError):
    """A model kind has no export to the format asked for (ONNX): the package keeps the
    model in its own format, which ``blase predict`` runs."""
