"""Plugins: sources, operations, models, drift tests, whole steps and hooks from outside Blase.

- :class:`Plugin`: a manifest (name, kind, version, options schema, the implementation's
  ``module:attribute``), readable without importing the plugin's dependencies.
- Discovery: the ``blase.plugins`` entry-point group for installed packages
  (:func:`installed_plugins`) and ``plugins:`` in ``blase.yaml`` for project files
  (:func:`project_plugins`); :func:`plugin_set` joins them and refuses clashes.
- :class:`Hooks`: observers of steps and runs.

``blase plugins`` lists what is installed; ``blase plugin check NAME|PATH`` runs the
conformance suite (:func:`blase.testing.check_plugin`).
"""

from blase.plugins._discover import (
    BUILTIN_NAMES,
    BUILTIN_SUFFIXES,
    ENTRY_POINT_GROUP,
    PluginSet,
    installed_plugins,
    plugin_set,
    project_plugins,
)
from blase.plugins._hooks import HookRunner, Hooks
from blase.plugins._manifest import KINDS, Kind, Plugin, PluginError

__all__ = [
    "BUILTIN_NAMES",
    "BUILTIN_SUFFIXES",
    "ENTRY_POINT_GROUP",
    "KINDS",
    "HookRunner",
    "Hooks",
    "Kind",
    "Plugin",
    "PluginError",
    "PluginSet",
    "installed_plugins",
    "plugin_set",
    "project_plugins",
]
