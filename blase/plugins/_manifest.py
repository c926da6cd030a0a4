"""What a plugin says about itself, before any of its code is imported.

A plugin is a :class:`Plugin` object in a light module: a name, a kind, a version, a
description, optionally a JSON schema of its options, and ``target``, the
``"module:attribute"`` of its implementation. Listing plugins (``blase plugins``) imports the
light modules only; the implementation, and the heavy libraries it imports, load when a
project's ``blase.yaml`` uses the plugin (:meth:`Plugin.load`).

An installed package publishes its plugins through the ``blase.plugins`` entry-point group::

    [project.entry-points."blase.plugins"]
    report = "blase_report:plugin"          # a Plugin, or a list of Plugins

A project lists its own under ``plugins:`` in ``blase.yaml`` (``scripts/my_plugin.py``, a file
that defines ``plugin = Plugin(...)`` or ``plugins = [...]``).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from blase.errors import BlaseError

__all__ = ["KINDS", "Kind", "Plugin", "PluginError"]

Kind = Literal["source", "operation", "model", "drift_test", "step", "hooks"]
#: The kinds of plugin, and what each one adds:
#: ``source`` an Extract reader (``data.format: NAME``), ``operation`` a Transform operation
#: (``op: NAME``), ``model`` a trainer (``train.model: NAME``), ``drift_test`` a Monitor test
#: (``monitor.tests: [NAME]``), ``step`` a whole pipeline step (listed under ``plugins:``),
#: ``hooks`` observers of steps and runs.
KINDS: tuple[str, ...] = get_args(Kind)

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SUFFIX = re.compile(r"^\.[a-z0-9][a-z0-9._-]{0,15}$")


class PluginError(BlaseError):
    """A plugin cannot be found, loaded or used; the message names the plugin and where it
    came from."""


@dataclass(frozen=True)
class Plugin:
    """A plugin's manifest.

    Parameters
    ----------
    name:
        What ``blase.yaml`` calls it (lower case, digits, ``_``): ``train.model: xgboost``.
    kind:
        One of :data:`KINDS`.
    target:
        ``"package.module:Attribute"``: the implementation, imported only when used. For a
        project plugin file it may name an attribute of the file itself (``":MyStep"``).
    version:
        The plugin's version (recorded with every run that uses it).
    description:
        One line for ``blase plugins``.
    config_schema:
        The JSON schema of the plugin's options, when known without importing it.
    requires:
        Import names of the libraries it needs (``["xgboost"]``): ``blase plugins`` reports the
        missing ones without importing anything.
    extra:
        The pip extra that installs them (``"xgboost"`` for ``pip install 'blase[xgboost]'``).
    suffixes:
        For a ``source`` plugin: the file extensions it reads (``(".xlsx", ".ods")``), so a
        source with one of them needs no ``data.format``. Never a built-in format's.
    """

    name: str
    kind: Kind
    target: str
    version: str = "0"
    description: str = ""
    config_schema: dict[str, Any] | None = None
    requires: tuple[str, ...] = ()
    extra: str | None = None
    suffixes: tuple[str, ...] = ()
    #: Where it came from (``"package blase-report 1.2 (entry point report)"``, a file path);
    #: set by discovery.
    origin: str = field(default="", compare=False)
    #: The module a project file was loaded as (a project plugin's ``":Attr"`` target).
    module: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        where = f" ({self.origin})" if self.origin else ""
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise PluginError(f"plugin name {self.name!r}{where} is not a name",
                              hint="use lower-case letters, digits and '_', starting with a letter")
        if self.kind not in KINDS:
            raise PluginError(f"plugin {self.name!r}{where} has kind {self.kind!r}",
                              hint=f"kinds: {', '.join(KINDS)}")
        if not isinstance(self.target, str) or ":" not in self.target:
            raise PluginError(f"plugin {self.name!r}{where} has target {self.target!r}",
                              hint="set target='package.module:Attribute'")
        if self.suffixes and (self.kind != "source" or isinstance(self.suffixes, str)
                              or not all(_SUFFIX.match(str(s)) for s in self.suffixes)):
            raise PluginError(f"plugin {self.name!r}{where} has suffixes {self.suffixes!r}",
                              hint="only a source plugin has suffixes: a tuple of lower-case extensions "
                                   "such as ('.xlsx', '.ods')")

    @property
    def install_hint(self) -> str:
        """How to install it: the extra of Blase, or the package it came from."""
        if self.extra:
            return f"pip install 'blase[{self.extra}]'"
        if self.origin.startswith("package "):
            return f"pip install {self.origin.split()[1]}"
        return "install the package that provides it (see `blase plugins`)"

    @property
    def label(self) -> str:
        return f"{self.kind} plugin {self.name!r}" + (f" ({self.origin})" if self.origin else "")

    def missing(self) -> list[str]:
        """The libraries in :attr:`requires` that are not installed (found without importing them)."""
        import importlib.util

        out = []
        for name in self.requires:
            try:
                found = importlib.util.find_spec(name) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                out.append(name)
        return out

    def load(self) -> Any:
        """Import and return the implementation (a class, usually).

        Raises
        ------
        PluginError
            When a library it needs is missing (naming the extra that installs it) or the
            target cannot be imported; the message names the plugin and its origin.
        """
        missing = self.missing()
        if missing:
            fix = f"pip install 'blase[{self.extra}]'" if self.extra else f"pip install {' '.join(missing)}"
            raise PluginError(f"{self.label} needs {', '.join(missing)}, which is not installed",
                              hint=f"install it: {fix}")
        module_name, _, attr = self.target.partition(":")
        try:
            module = self.module if not module_name else importlib.import_module(module_name)
            obj: Any = module
            for part in attr.split("."):
                obj = getattr(obj, part)
        except ImportError as exc:
            raise PluginError(f"{self.label} cannot be imported: {exc}",
                              hint=f"check that {module_name} is installed and imports") from exc
        except AttributeError:
            raise PluginError(f"{self.label}: {self.target!r} does not exist",
                              hint="fix the plugin's target (module:Attribute)") from None
        return obj

    def load_class(self, base: type, *, name_attr: str | None = "name") -> type:
        """:meth:`load` a class and check it against this manifest: a subclass of ``base``
        whose ``name_attr`` class attribute (None: no such check) is this plugin's name.

        Raises
        ------
        PluginError
            Naming the plugin, what its target is instead, and the fix.
        """
        cls = self.load()
        what = f"{base.__module__.split('._')[0]}.{base.__qualname__}"
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(f"{self.label}: {self.target} is not a {what} subclass",
                              hint=f"a {self.kind} plugin's target is a class that subclasses {what}")
        if name_attr is not None and getattr(cls, name_attr, None) != self.name:
            raise PluginError(f"{self.label}: its class has {name_attr} {getattr(cls, name_attr, None)!r}",
                              hint=f"set `{name_attr} = {self.name!r}` on {cls.__name__} (or rename the plugin)")
        return cls

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "version": self.version, "description": self.description,
                "target": self.target, "origin": self.origin, "requires": list(self.requires),
                "missing": self.missing(), "extra": self.extra, "config_schema": self.config_schema,
                "suffixes": list(self.suffixes)}
