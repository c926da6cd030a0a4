"""Finding plugins: installed packages (entry points) and a project's own files.

:func:`installed_plugins` reads the ``blase.plugins`` entry-point group (importing only the
light modules the entry points name); :func:`project_plugins` loads the files a project lists
under ``plugins:`` in ``blase.yaml`` (confined to the project). :func:`plugin_set` joins both
into a :class:`PluginSet`, refusing two plugins with one name, and a plugin whose name is taken
by a built-in of its kind (a plugin can add, never replace).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from blase._pyfile import exec_file
from blase.plugins._manifest import Plugin, PluginError

__all__ = ["BUILTIN_SUFFIXES", "ENTRY_POINT_GROUP", "PluginSet", "installed_plugins", "plugin_set",
           "project_plugins"]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "blase.plugins"

#: Names the built-ins of each kind already use: a plugin cannot take them.
BUILTIN_NAMES: dict[str, frozenset[str]] = {
    "source": frozenset({"auto", "csv", "parquet", "json", "ndjson", "arrow", "sqlite", "duckdb", "postgres"}),
    "operation": frozenset({"select", "drop", "rename", "cast", "filter", "impute", "scale", "clip", "log1p",
                            "onehot", "ordinal", "hash", "datetime", "sql", "call"}),
    "model": frozenset({"linear", "mlp", "glm", "kernel", "ensemble", "auto"}),
    "drift_test": frozenset({"auto", "none", "ks", "chi2", "chisquare", "z", "ztest", "wasserstein",
                             "jensenshannon", "psi"}),
    "step": frozenset({"extract", "transform", "prepare", "train", "evaluate", "deploy"}),
    "hooks": frozenset(),
}
#: File extensions the built-in readers own (``blase.extract``): no source plugin may claim them.
BUILTIN_SUFFIXES: frozenset[str] = frozenset({
    ".csv", ".tsv", ".tab", ".txt", ".parquet", ".pq", ".json", ".ndjson", ".jsonl", ".arrow", ".feather",
    ".ipc", ".arrows", ".sqlite", ".sqlite3", ".db", ".duckdb", ".ddb", ".gz", ".gzip", ".zst", ".zstd",
})


def _as_plugins(obj: Any, origin: str) -> list[Plugin]:
    items = obj if isinstance(obj, (list, tuple)) else [obj]
    out = []
    for item in items:
        if not isinstance(item, Plugin):
            raise PluginError(f"{origin} gives {type(item).__name__}, not a blase.plugins.Plugin",
                              hint="make the entry point (or the file's `plugin`) a Plugin(name=..., kind=..., "
                                   "target=...) or a list of them")
        out.append(replace(item, origin=origin) if not item.origin else item)
    return out


#: The last scan of the entry points, with the state of ``sys.path`` it was made in.
_INSTALLED: tuple[tuple[Any, ...], list[Plugin]] | None = None


def _path_state() -> tuple[Any, ...]:
    """``sys.path`` and the mtime of each of its package folders (``site-packages``,
    ``dist-packages``; other entries, such as a script's folder, change for other reasons):
    installing or removing a package (its ``*.dist-info``) changes its folder's, so a scan
    made in the same state is still true."""
    out: list[Any] = []
    for entry in sys.path:
        if os.path.basename(entry.rstrip(os.sep)) not in ("site-packages", "dist-packages"):
            out.append(entry)
            continue
        try:
            out.append((entry, os.stat(entry).st_mtime_ns))
        except OSError:
            out.append((entry, None))
    return tuple(out)


def installed_plugins() -> list[Plugin]:
    """Every plugin installed packages publish under the ``blase.plugins`` entry points.

    A broken entry point does not hide the others: it is reported by :func:`plugin_set`
    when a project uses it, and logged here. The scan (reading every installed package's
    metadata: ~0.5 s with 50 packages) is kept while ``sys.path`` and its folders are
    unchanged, so a process that extracts twice scans once.
    """
    global _INSTALLED
    state = _path_state()
    if _INSTALLED is not None and _INSTALLED[0] == state:
        return list(_INSTALLED[1])
    found = _scan_entry_points()
    _INSTALLED = (state, found)
    return list(found)


def _scan_entry_points() -> list[Plugin]:
    from importlib.metadata import entry_points

    found: list[Plugin] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        origin = (f"package {dist.name} {dist.version}" if dist is not None else "an installed package") + \
            f" (entry point {ep.name})"
        try:
            found += _as_plugins(ep.load(), origin)
        except PluginError:
            raise
        except Exception as exc:  # a plugin package that fails to import must not break blase
            raise PluginError(f"the plugin entry point {ep.name!r} of {origin} cannot be loaded: "
                              f"{type(exc).__name__}: {exc}",
                              hint=f"fix or uninstall the package ({ep.value})") from exc
    return found


def _load_file(path: Path, rel: str) -> Any:
    name = "blase_plugin_" + "".join(c if c.isalnum() else "_" for c in rel)
    try:
        module = exec_file(path, name)
    except Exception as exc:
        raise PluginError(f"plugin file {rel} raised {type(exc).__name__} while loading: {exc}",
                          hint=f"fix {rel}; it must define `plugin = Plugin(...)` or `plugins = [...]`") from exc
    module.__blase_path__ = str(path)
    return module


def project_plugins(root: str | Path, files: Iterable[str]) -> list[Plugin]:
    """The plugins defined by project files (``scripts/my_plugin.py``), which must lie inside
    ``root``. A file defines ``plugin`` (a :class:`Plugin`) or ``plugins`` (a list); a target
    ``":Attr"`` names an attribute of the file itself."""
    root = Path(root).resolve()
    found: list[Plugin] = []
    for rel in files:
        path = (root / rel).resolve()
        try:
            path.relative_to(root)
        except ValueError:
            raise PluginError(f"plugin file {rel} is outside the project {root}",
                              hint="a project's plugins live inside it, e.g. scripts/my_plugin.py") from None
        if not path.is_file():
            raise PluginError(f"plugin file {rel} not found (looked for {path})",
                              hint="paths under `plugins:` are relative to the project folder")
        module = _load_file(path, rel)
        declared = getattr(module, "plugins", None) or getattr(module, "plugin", None)
        if declared is None:
            raise PluginError(f"plugin file {rel} defines no `plugin` or `plugins`",
                              hint="add `plugin = Plugin(name=..., kind=..., target=':MyClass')`")
        for item in _as_plugins(declared, rel):
            found.append(replace(item, origin=rel, module=module))
    return found


@dataclass
class PluginSet:
    """The plugins a project can use, by kind and name, with each one's options."""

    plugins: dict[tuple[str, str], Plugin] = field(default_factory=dict)
    #: The options ``blase.yaml`` gives each listed plugin (by name).
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The names ``blase.yaml`` lists under ``plugins:`` (step and hooks plugins run only then).
    enabled: list[str] = field(default_factory=list)

    def add(self, plugin: Plugin) -> None:
        key = (plugin.kind, plugin.name)
        if plugin.name in BUILTIN_NAMES.get(plugin.kind, frozenset()):
            raise PluginError(f"{plugin.label} takes the name of Blase's built-in {plugin.kind} {plugin.name!r}",
                              hint="a plugin cannot replace a built-in; give it another name")
        taken = sorted(set(plugin.suffixes) & BUILTIN_SUFFIXES)
        if taken:
            raise PluginError(f"{plugin.label} claims {', '.join(taken)}, which Blase's built-in readers own",
                              hint="a plugin cannot replace a built-in reader; remove those suffixes "
                                   "(data.format: NAME still selects the plugin)")
        other = self.plugins.get(key)
        if other is not None and other.origin != plugin.origin:
            raise PluginError(
                f"two {plugin.kind} plugins are named {plugin.name!r}: {other.origin} and {plugin.origin}",
                hint="uninstall one, or remove one from blase.yaml's plugins",
            )
        self.plugins[key] = plugin

    def get(self, kind: str, name: str) -> Plugin | None:
        return self.plugins.get((kind, name))

    def require(self, kind: str, name: str, *, used_by: str) -> Plugin:
        """The ``kind`` plugin ``name``, or a :class:`PluginError` saying ``used_by`` (``"blase.yaml
        transform[2].op"``) names something that is neither built in nor installed."""
        plugin = self.get(kind, name)
        if plugin is not None:
            return plugin
        import difflib

        known = sorted(BUILTIN_NAMES.get(kind, frozenset()) | set(self.names(kind)))
        close = difflib.get_close_matches(name, known, n=1)
        raise PluginError(
            f"{used_by} names the {kind.replace('_', ' ')} {name!r}, which is neither built in nor an "
            f"installed {kind} plugin" + (f"; did you mean {close[0]!r}?" if close else ""),
            hint="see `blase plugins` for what is installed; install the package that provides it, or "
                 "list your own file under `plugins:` in blase.yaml",
        )

    def by_suffix(self, suffix: str) -> Plugin | None:
        """The source plugin that reads files ending in ``suffix`` (None: no plugin does)."""
        found = [p for p in self.of_kind("source") if suffix.lower() in p.suffixes]
        if len(found) > 1:
            raise PluginError(f"source plugins {', '.join(repr(p.name) for p in found)} all read {suffix} files",
                              hint="choose one with data.format: NAME in blase.yaml")
        return found[0] if found else None

    def of_kind(self, kind: str) -> list[Plugin]:
        return [p for (k, _), p in self.plugins.items() if k == kind]

    def active(self, kind: str) -> list[Plugin]:
        """The plugins of ``kind`` that ``blase.yaml`` lists (for steps and hooks)."""
        return [p for p in self.of_kind(kind) if p.name in self.enabled]

    def names(self, kind: str) -> list[str]:
        return sorted(name for k, name in self.plugins if k == kind)

    def __iter__(self) -> Any:
        return iter(sorted(self.plugins.values(), key=lambda p: (p.kind, p.name)))


def _split_entries(entries: Sequence[Any]) -> tuple[list[str], list[str], dict[str, dict[str, Any]]]:
    """``plugins:`` items (a name, a ``.py`` path, or ``{name|path, options}``) as
    (names, files, options by name-or-path)."""
    names: list[str] = []
    files: list[str] = []
    options: dict[str, dict[str, Any]] = {}
    for item in entries:
        if isinstance(item, str):
            ref, opts = item, {}
        else:
            ref = getattr(item, "path", None) or getattr(item, "name", None)
            opts = dict(getattr(item, "options", None) or {})
            if isinstance(item, Mapping):
                ref = item.get("path") or item.get("name")
                opts = dict(item.get("options") or {})
        if not ref:
            continue
        (files if str(ref).endswith(".py") else names).append(str(ref))
        options[str(ref)] = opts
    return names, files, options


def plugin_set(root: str | Path | None = None, entries: Sequence[Any] = ()) -> PluginSet:
    """The plugins available to a project: every installed one, plus the project files among
    ``entries`` (``blase.yaml``'s ``plugins:``). Names in ``entries`` must exist."""
    names, files, options = _split_entries(entries)
    found = PluginSet()
    for plugin in installed_plugins():
        found.add(plugin)
    if files:
        for plugin in project_plugins(root or ".", files):
            found.add(plugin)
            found.enabled.append(plugin.name)
            found.options[plugin.name] = options.get(plugin.origin, {})
    for name in names:
        if not any(p.name == name for p in found.plugins.values()):
            import difflib

            known = sorted({p.name for p in found.plugins.values()})
            close = difflib.get_close_matches(name, known, n=1)
            raise PluginError(
                f"blase.yaml lists the plugin {name!r}, which is not installed"
                + (f"; did you mean {close[0]!r}?" if close else ""),
                hint="see what is installed with `blase plugins`, or install the package that provides it",
            )
        found.enabled.append(name)
        found.options[name] = options.get(name, {})
    return found
