"""System prompts of the assistant, shipped as package data (``blase.prompts``).

Prompts are text files, read with :func:`read_prompt`; their hash is logged with every
model call so a change of prompt shows in a run's record.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["read_prompt"]


def read_prompt(name: str) -> str:
    """Return the text of prompt ``name`` (a file in this package, e.g. ``"system.md"``)."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
