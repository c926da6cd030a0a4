"""Importing a project's own ``.py`` file as a module: transform functions, model scripts, plugin
files and Keras build scripts all go through :func:`exec_file`, and callers turn a failure into
their subsystem's error (naming the file and the fix)."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["exec_file", "functions_of"]


def exec_file(path: str | Path, module_name: str, **attributes: Any) -> ModuleType:
    """Import ``path`` as ``module_name`` and return the module.

    The module is in ``sys.modules`` while its code runs (dataclasses and ``typing`` look their
    module up there) and stays there afterwards; ``attributes`` are set on it before its code
    runs. Whatever the file raises propagates, with the half-imported module removed.
    """
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be imported as Python code")
    module = importlib.util.module_from_spec(spec)
    for name, value in attributes.items():
        setattr(module, name, value)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def functions_of(module: ModuleType) -> list[str]:
    """The functions ``module`` defines itself (not those it imports), sorted: what a "has no
    function X (it defines ...)" message lists."""
    return sorted(n for n, v in vars(module).items() if inspect.isfunction(v) and v.__module__ == module.__name__)
