"""Typed tools over Blase's public API, for people and for the assistant.

Installed as ``blase.tools``. Each tool is one function with a pydantic input model, a
pydantic output model and a risk class (``read``, ``write``, ``destructive``); see
``DESIGN.md``. They arrive with the assistant issue ([6/7]). Nothing in :mod:`blase`
imports this package.
"""

__all__: list[str] = []
