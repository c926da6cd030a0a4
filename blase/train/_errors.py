"""The train step's error (defined with the model contract, :mod:`blase.model`)."""

from __future__ import annotations

from blase.model import TrainError

__all__ = ["TrainError"]
