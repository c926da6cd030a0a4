"""``blase check``: validate a project without running anything.

Beyond the schema of ``blase.yaml`` (see :mod:`blase.config`), it checks that the files the
configuration names exist: user functions (``call:``, ``train.model``) are errors when their
file or function is missing; a missing ``data.source`` is a warning, since data often arrives
after the project is made. When the source exists, its header (a schema read, no scan) is
compared with the column names the configuration uses: ``data.label``, ``data.key``, the
transform's ``columns`` (followed through the steps) and ``prepare.features``.
"""

from __future__ import annotations

import ast
import glob
from dataclasses import dataclass, field
from typing import Any

import yaml

from blase.config import ProjectConfig, config_from_text, key_lines, load_config
from blase.errors import BlaseError, ConfigError, ConfigProblem
from blase.project import Project

__all__ = ["CheckResult", "check_project"]


@dataclass
class CheckResult:
    config: ProjectConfig
    warnings: list[str] = field(default_factory=list)
    #: The source whose header the configuration's column names were checked against.
    header_of: str | None = None

    def to_json(self) -> dict:
        return {"valid": True, "warnings": self.warnings, "header_of": self.header_of,
                "config": self.config.model_dump(mode="json")}


def check_project(project: Project, text: str | None = None) -> CheckResult:
    """Validate ``project``; raise :class:`ConfigError` listing every problem found.

    ``text``: a ``blase.yaml`` for the project not yet saved (the web app's builder checks
    what it is about to write), checked instead of the file on disk.
    """
    if text is None:
        config = load_config(project.config_path)
        text = project.config_path.read_text(encoding="utf-8")
    else:
        config = config_from_text(text, file=project.config_path.name)
    lines = key_lines(yaml.compose(text, Loader=yaml.SafeLoader))
    file = project.config_path.name
    problems: list[ConfigProblem] = []
    warnings: list[str] = []
    header_of = None

    def line(*path: str | int) -> str:
        n = lines.get(tuple(path))
        return f" (line {n})" if n else ""

    for i, step in enumerate(config.transform):
        if step.call:
            problem = _check_callable(project, step.call)
            if problem:
                key = f"transform[{i}].call"
                problems.append(ConfigProblem(file, lines.get(("transform", i, "call")), key,
                                              f"{key}{line('transform', i, 'call')}: {problem}"))
    if ":" in config.train.model:
        problem = _check_callable(project, config.train.model)
        if problem:
            problems.append(ConfigProblem(file, lines.get(("train", "model")), "train.model",
                                          f"train.model{line('train', 'model')}: {problem}"))
    else:
        problems += _check_model(project, config, file, lines)
    problems += _plugin_problems(project, config, file, lines)
    if problems:
        raise ConfigError(problems, hint="fix the paths and plugins above, then run `blase check` again")

    source = config.data.source
    if source is None:
        warnings.append("data.source is not set: `blase run` needs it")
    else:
        path = source
        head, sep, _ = source.rpartition(":")
        if sep and head.endswith((".sqlite", ".sqlite3", ".db", ".duckdb")):
            path = head  # 'file.sqlite:table'
        full = project.root / path
        if not glob.glob(str(full)) and not full.exists():
            warnings.append(f"data.source{line('data', 'source')}: {source} does not exist yet")
        else:
            schema, problem = _header(project, config)
            if schema is None:
                warnings.append(f"data.source{line('data', 'source')}: cannot read {source}: {problem}")
            else:
                header_of = source
                found, unsure = _column_problems(config, schema.names, source,
                                                 lambda i, step: _schema_only_plugin(project, i, step, schema))
                problems += [ConfigProblem(file, lines.get(k), ".".join(map(str, k)),
                                           f"{_key(k)}{line(*k)}: {m}") for k, m in found]
                warnings += [f"{_key(k)}{line(*k)}: {m}" for k, m in unsure]
    if problems:
        raise ConfigError(problems, hint="fix the names above in blase.yaml (`blase schema "
                          "DATA` lists the data's columns), then run `blase check` again")
    return CheckResult(config, warnings, header_of)


def _plugin_problems(project: Project, config: ProjectConfig, file: str,
                     lines: dict[tuple[str | int, ...], int]) -> list[ConfigProblem]:
    """The operation, drift-test and step plugins blase.yaml names: installed, and their options
    valid (each loaded and its options validated, as `blase run` and `blase monitor` will)."""
    from blase.monitor import chosen_tests
    from blase.plugins import PluginError, plugin_set
    from blase.transform import build_plugin_operation

    used = [(i, s) for i, s in enumerate(config.transform) if s.is_plugin]
    if not used and not config.plugins and all(c.test == "auto" for c in config.monitor.tests.values()):
        return []
    problems: list[ConfigProblem] = []

    def attempt(key: tuple[str | int, ...], action: Any) -> None:
        try:
            action()
        except ConfigError as exc:
            problems.extend(exc.problems)
        except PluginError as exc:
            problems.append(ConfigProblem(file, lines.get(key), _key(key), exc.message))

    try:
        plugins = plugin_set(project.root, config.plugins)  # the config checked, saved or not
    except PluginError as exc:
        return [ConfigProblem(file, lines.get(("plugins",)), "plugins", exc.message)]
    for i, step in used:
        attempt(("transform", i, "op"), lambda i=i, step=step: build_plugin_operation(
            plugins, str(step.op), step.options, index=i, config_path=project.config_path))
    attempt(("monitor", "tests"), lambda: chosen_tests(config.monitor, plugins, project.config_path))
    for plugin in plugins.active("step"):
        at = next((i for i, e in enumerate(config.plugins) if plugin.name == e.name or plugin.origin == e.path), None)
        if at is not None:
            attempt(("plugins", at), lambda p=plugin, at=at: _step_options(p, plugins.options.get(p.name, {}),
                                                                          at, project))
    return problems


def _step_options(plugin: Any, options: dict[str, Any], at: int, project: Project) -> None:
    """A step plugin's ``options`` validated by its ``config_model`` (as the pipeline will)."""
    from blase.config import validate_plugin_options
    from blase.steps import Step

    model = plugin.load_class(Step).config_model
    if model is None:
        if options:
            raise ConfigError([ConfigProblem(project.config_path.name, None, f"plugins[{at}].options",
                                             f"plugins[{at}].options: step plugin {plugin.name!r} takes no options")])
        return
    validate_plugin_options(model, options, at=("plugins", at, "options"), what=f"step plugin {plugin.name!r}",
                            config_path=project.config_path)


def _key(path: tuple[str | int, ...]) -> str:
    """``('transform', 2, 'columns')`` -> ``transform[2].columns``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _header(project: Project, config: ProjectConfig) -> tuple[Any, str]:
    """The source's schema (a schema read: the CSV sniffer or Parquet metadata, no scan), or
    ``(None, why)`` when it cannot be read."""
    from blase.errors import BlaseError
    from blase.extract import Extract

    try:
        return Extract.from_config(config.data, project).schema(), ""
    except BlaseError as exc:
        return None, exc.message.splitlines()[0]
    except Exception as exc:  # a reader's own error: the check reports it, run will too
        return None, str(exc).splitlines()[0]


_Found = list[tuple[tuple[str | int, ...], str]]


def _schema_only_plugin(project: Project, index: int, step: Any, schema: Any) -> list[str] | None:
    """The columns after an operation plugin whose fit reads only the schema (``flatten``),
    applied first to the source's columns; None for any other plugin."""
    import pyarrow as pa

    from blase.transform import build_plugin_operation

    try:
        op = build_plugin_operation(project.plugins(), str(step.op), step.options, index=index,
                                    config_path=project.config_path)
        if op.needs_data:
            return None
        empty = pa.Table.from_batches([], schema=schema)
        return op.fit(empty, exclude=[c for c in (project.config().data.label,) if c]).output_schema(schema).names
    except Exception:  # the run reports a plugin that cannot fit; the check only guesses
        return None


def _column_problems(config: ProjectConfig, header: list[str], source: str,
                     plugin_columns: Any = None) -> tuple[_Found, _Found]:
    """Names in ``data.label``, ``data.key``, ``prepare.features`` and the transform's
    ``columns`` that are not columns where they are used: ``(problems, warnings)``.

    The transform is followed step by step (drop, select, rename, datetime, sql and the
    encoders change the columns); after a step that may add columns that cannot be named
    without running it (a user function, an encoder, a datetime step that learns its parts),
    a missing name is a warning rather than a problem.
    """
    import difflib

    def missing(name: str, names: list[str], where: str) -> str:
        close = difflib.get_close_matches(name, names, n=1)
        return f"{name!r} is not a column {where}" + (f"; did you mean {close[0]!r}?" if close else "")

    problems: _Found = []
    unsure: _Found = []
    of_source = f"of {source}"
    for key in ("label", "key"):
        name = getattr(config.data, key)
        made = any(s.name == name or name in (s.mapping or {}).values() for s in config.transform)
        if name is not None and name not in header and not made:
            problems.append((("data", key), missing(name, header, of_source)))
    from blase.transform import DEFAULT_PARTS

    cols = list(header)
    certain = True  # False once a step may have added columns we cannot name

    def absent(key: tuple[str | int, ...], message: str) -> None:
        if certain:
            problems.append((key, message))
        else:
            unsure.append((key, message + " (unless an earlier user function or encoder adds it)"))

    for i, step in enumerate(config.transform):
        if step.columns is not None:
            where = of_source if i == 0 else f"after transform[{i - 1}]"
            for name in step.columns:
                if name not in cols:
                    absent(("transform", i, "columns"), missing(name, cols, where))
        named = [c for c in (step.columns or []) if c in cols]
        made = plugin_columns(i, step) if step.is_plugin and plugin_columns and cols == header else None
        if made is not None:
            cols = made
        elif step.call or step.is_plugin:
            certain = False  # a function or plugin may add columns (or drop them: run says so)
        elif step.op in ("onehot", "hash", "ordinal", "drop"):
            cols = [c for c in cols if c not in named]
            certain = certain and step.op == "drop"
        elif step.op == "select":
            cols = named
        elif step.op == "rename":
            cols = [(step.mapping or {}).get(c, c) for c in cols]
        elif step.op == "sql" and step.name and step.name not in cols:
            cols.append(step.name)
        elif step.op == "datetime":
            dates = named if step.columns is not None else []
            cols = [c for c in cols if c not in dates]
            cols += [f"{c}_{p}" for c in dates for p in (step.parts or DEFAULT_PARTS)]
            # with no parts, only the parts that vary are made; with no columns, every date
            certain = certain and step.parts is not None and step.columns is not None
    for name in config.prepare.features or []:
        if name not in cols:
            absent(("prepare", "features"), missing(name, cols, "after the transform"))
    return problems, unsure


def _check_model(project: Project, config: ProjectConfig, file: str,
                 lines: dict[tuple[Any, ...], int]) -> list[ConfigProblem]:
    """``train.model`` names a known kind whose library is installed, and ``train.options``
    are that kind's: each bad option its own problem, at its line."""
    from blase.model import model_kind

    def at(key: str) -> tuple[int | None, str]:
        n = lines.get(tuple(key.split(".")))
        return n, f" (line {n})" if n else ""

    try:
        model_kind(config.train.model, config.train.options, root=project.root, entries=config.plugins)
    except ConfigError as exc:
        found = []
        for p in exc.problems:
            n, where = at(p.key)
            found.append(ConfigProblem(file, n, p.key, p.message.replace(p.key, p.key + where, 1)))
        return found
    except BlaseError as exc:
        n, where = at("train.model")
        return [ConfigProblem(file, n, "train.model", f"train.model{where}: {exc.message} ({exc.hint})")]
    return []


def _check_callable(project: Project, ref: str) -> str | None:
    """Check 'path/to/file.py:function' without importing the file."""
    file, _, func = ref.rpartition(":")
    path = project.root / file
    if not path.is_file():
        return f"{file} does not exist in the project"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        return f"{file} has a syntax error at line {exc.lineno}: {exc.msg}"
    names = {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }
    names |= {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    if func not in names:
        defined = ", ".join(sorted(names)) or "nothing"
        return f"{file} defines no function {func!r} (it defines: {defined})"
    return None
