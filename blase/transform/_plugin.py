"""Operation plugins: built from ``blase.yaml``, saved by name, replayed by name.

An ``operation`` plugin's target is an :class:`~blase.transform.Operation` subclass whose
``op_name`` is the plugin's name. ``- op: NAME`` in ``transform:`` builds it from the step's
other keys, validated by the class's ``config_model`` (or, without one, by a model of its
``__init__`` parameters; unknown keys are refused). A fitted transform saves the plugin's
name, version and origin beside its parameters and JSON state, never a path to its code:
loading the transform (``blase predict``, ``monitor``, ``update``) finds the plugin by name
among the installed ones and the project's own, or says which package to install.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from blase.errors import TransformError
from blase.transform._base import Operation

if TYPE_CHECKING:
    from blase.plugins import Plugin, PluginSet

__all__ = ["build_plugin_operation", "plugin_entry", "plugin_of", "project_plugin_set", "replay_plugin_class",
           "tag"]

logger = logging.getLogger(__name__)

#: The private attribute of an operation built from a plugin: its manifest.
_PLUGIN_ATTR = "_blase_plugin"


def plugin_of(op: Operation) -> Plugin | None:
    """The manifest of the plugin ``op`` came from (None for a built-in or a Python class)."""
    return getattr(op, _PLUGIN_ATTR, None)


def project_plugin_set(root: str | os.PathLike[str] | None) -> PluginSet:
    """The plugins of the project holding ``root`` (a project, a model package inside one),
    or the installed ones when ``root`` is in no project."""
    from blase.errors import ProjectError
    from blase.plugins import plugin_set
    from blase.project import find_project

    if root is None:
        return plugin_set()
    try:
        project = find_project(root)
    except ProjectError:
        return plugin_set()
    return project.plugins()


def load_operation_class(plugin: Plugin) -> type[Operation]:
    """The plugin's :class:`Operation` subclass, checked against its manifest."""
    return plugin.load_class(Operation, name_attr="op_name")


def build_plugin_operation(plugins: PluginSet, name: str, options: dict[str, Any], *, index: int,
                           config_path: str | os.PathLike[str] | None = None) -> Operation:
    """The operation of ``transform[index]`` in ``blase.yaml``: plugin ``name`` with ``options``."""
    from blase.config import options_model, validate_plugin_options

    plugin = plugins.require("operation", name, used_by=f"blase.yaml transform[{index}].op")
    cls = load_operation_class(plugin)
    model = options_model(cls, from_signature=True)
    valid = validate_plugin_options(model, options, at=("transform", index), what=plugin.label,
                                    config_path=config_path)
    params = {key: getattr(valid, key) for key in type(valid).model_fields}
    try:
        op = cls(**params)
    except Exception as exc:
        raise TransformError(f"transform step {index + 1}: {plugin.label} cannot be built from its options: "
                             f"{type(exc).__name__}: {exc}",
                             hint="fix the step's keys in blase.yaml, or the plugin") from exc
    setattr(op, _PLUGIN_ATTR, plugin)
    return op


def plugin_entry(plugin: Plugin) -> dict[str, Any]:
    """What a saved transform records of a plugin (no path to its code)."""
    return {"kind": plugin.kind, "name": plugin.name, "version": plugin.version, "origin": plugin.origin,
            "install": plugin.install_hint}


def replay_plugin_class(entry: dict[str, Any], plugins: PluginSet, *, source: str,
                        step: int) -> tuple[type[Operation], Plugin]:
    """The class of a saved plugin step and its plugin, found by the plugin's name (never by
    a path)."""
    info = dict(entry.get("plugin") or {})
    name = str(info.get("name") or entry.get("op"))
    plugin = plugins.get("operation", name)
    if plugin is None:
        origin = f", from {info['origin']}" if info.get("origin") else ""
        raise TransformError(
            f"{source}: step {step} uses the operation plugin {name!r} (version {info.get('version', '?')}"
            f"{origin}), which is not installed here",
            hint=_install_hint(info),
        )
    if info.get("version") not in (None, plugin.version):
        logger.warning("%s: step %d was fitted with %s version %s; version %s is installed",
                       source, step, plugin.label, info.get("version"), plugin.version)
    return load_operation_class(plugin), plugin


def _install_hint(info: dict[str, Any]) -> str:
    install = str(info.get("install") or "")
    if install.startswith("pip install"):
        return f"install it: {install}"
    origin = str(info.get("origin") or "")
    if origin.endswith(".py"):
        return f"list {origin} (the project file that defines it) under `plugins:` in blase.yaml"
    return "install the package that provides it (`blase plugins` lists what is installed)"


def tag(op: Operation, plugin: Plugin) -> Operation:
    """Mark ``op`` (rebuilt from a saved transform) as coming from ``plugin``."""
    setattr(op, _PLUGIN_ATTR, plugin)
    return op
