"""Load ``blase.yaml`` into :class:`ProjectConfig` with errors that name line and key.

YAML is composed into nodes first, so every key path keeps the line it came from; pydantic
then validates the plain data, and each of its errors is turned into one
:class:`~blase.errors.ConfigProblem` naming the file, the line, the dotted key path and, for
an unknown key, the closest valid one.
"""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import BaseModel, ValidationError

from blase.config._models import ProjectConfig
from blase.errors import ConfigError, ConfigProblem

__all__ = ["apply_overrides", "config_from_dict", "inline_yaml", "key_lines", "load_config", "parse_overrides",
           "plugin_options_error"]

_Path = tuple[str | int, ...]


def load_config(path: str | Path) -> ProjectConfig:
    """Read and validate a ``blase.yaml`` file.

    Raises
    ------
    ConfigError
        With one problem per invalid key, each naming the line and key path.
    """
    path = Path(path)
    display = path.name if path.name == "blase.yaml" else str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [ConfigProblem(display, None, "", f"{path} does not exist")],
            hint="run `blase create NAME` to make a project with a valid blase.yaml",
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [ConfigProblem(display, None, "", f"not UTF-8 text (byte {exc.start})")],
            hint="save blase.yaml as UTF-8",
        ) from None
    return config_from_text(text, file=display)


def config_from_text(text: str, *, file: str = "blase.yaml") -> ProjectConfig:
    """Validate YAML text as a project config (see :func:`load_config`)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        problem = f"{exc.problem or 'invalid YAML'}" + (f" (line {line})" if line else "")
        raise ConfigError(
            [ConfigProblem(file, line, "", f"YAML syntax error: {problem}")],
            hint="check the indentation and the colons around that line",
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [ConfigProblem(file, 1, "", "the top level must be a mapping of keys (project:, data:, ...)")]
        )
    lines = key_lines(node) if node is not None else {}
    return config_from_dict(data, file=file, lines=lines)


def config_from_dict(
    data: dict[str, Any], *, file: str = "<python>", lines: dict[_Path, int] | None = None
) -> ProjectConfig:
    """Validate a plain dict as a project config; Python and YAML build the same model."""
    try:
        return ProjectConfig.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(err, data, file, lines or {}) for err in exc.errors()]
        problems.sort(key=lambda p: (p.line is None, p.line or 0))
        raise ConfigError(problems, hint="fix the keys above, then run `blase check`") from None


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn ``["train.epochs=5", "transform.1.strategy=mean"]`` into a nested dict.

    Values are parsed as YAML. A part made of digits is a list index (an ``int`` key), which
    :func:`apply_overrides` uses to reach one item of a list such as ``transform``.
    """
    out: dict[Any, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        parts = key.strip().split(".")
        if not sep or not key.strip() or not all(p.strip() for p in parts):
            raise ConfigError(
                [ConfigProblem("--set", None, pair, f"override {pair!r} is not KEY=VALUE")],
                hint="write it like --set train.epochs=5 or --set transform.1.strategy=mean",
            )
        value = yaml.safe_load(raw) if raw.strip() else ""
        cursor = out
        keys: list[str | int] = [int(p) if p.strip().isdigit() else p.strip() for p in parts]
        for part in keys[:-1]:
            nxt = cursor.setdefault(part, {})
            if not isinstance(nxt, dict):  # an earlier pair set a whole value here: replace it
                nxt = cursor[part] = {}
            cursor = nxt
        cursor[keys[-1]] = value
    return out


def inline_yaml(value: Any) -> str:
    """``value`` as one line of YAML, as ``--set KEY=VALUE`` (:func:`parse_overrides`) reads it back."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 20, sort_keys=False).strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")]
    return text.removesuffix("...").strip()


def apply_overrides(base: dict[str, Any], overrides: dict[Any, Any], *, _at: str = "") -> dict[str, Any]:
    """``base`` (plain config data) with nested ``overrides`` merged in; ``base`` is not changed.

    A mapping of integer keys (or digit strings, as JSON records them) over a list sets items of
    that list: ``{"transform": {1: {"strategy": "mean"}}}`` changes the second operation only.
    """
    out = dict(base)
    for key, value in overrides.items():
        _set(out, key, value, _at)
    return out


def _set(container: dict[Any, Any] | list[Any], key: Any, value: Any, at: str) -> None:
    path = f"{at}.{key}" if at else str(key)
    if isinstance(container, list):
        index = _index(container, key, path)
        current = container[index]
    else:
        if key not in container and str(key) in container:
            key = str(key)
        elif isinstance(key, str) and key.isdigit() and key not in container and int(key) in container:
            key = int(key)
        index = key
        current = container.get(key)
    if isinstance(value, dict) and isinstance(current, dict):
        container[index] = apply_overrides(current, value, _at=path)
    elif isinstance(value, dict) and isinstance(current, list) and value and all(_is_index(k) for k in value):
        items = list(current)
        for k, v in value.items():
            _set(items, k, v, path)
        container[index] = items
    else:
        container[index] = value


def _is_index(key: Any) -> bool:
    """An item number, or what was meant as one (``-1``): :func:`_index` says which exist."""
    return isinstance(key, int) or (isinstance(key, str) and key.removeprefix("-").isdigit())


def _index(items: list[Any], key: Any, path: str) -> int:
    if not _is_index(key) or not 0 <= int(key) < len(items):
        raise ConfigError(
            [ConfigProblem("--set", None, path,
                           f"{path}: no item {key} in a list of {len(items)} (items are numbered from 0)")],
            hint="count that list's items in blase.yaml from 0: the first transform operation's "
            "strategy is `blase run --set transform.0.strategy=mean`",
        )
    return int(key)


# -- line numbers -------------------------------------------------------------------------


def key_lines(node: yaml.Node, path: _Path = ()) -> dict[_Path, int]:
    """The line (1-based) of every key path under the composed YAML ``node``: what error
    messages cite as ``blase.yaml:LINE``."""
    lines: dict[_Path, int] = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            for sub, line in key_lines(value_node, (*path, key)).items():
                if sub != (*path, key):
                    lines[sub] = line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.update(key_lines(item, (*path, i)))
    return lines


def _data_path(loc: tuple[Any, ...], data: Any) -> _Path:
    """Drop the parts of a pydantic ``loc`` that are not keys of the data (union tags)."""
    path: list[str | int] = []
    cursor = data
    for part in loc:
        if (isinstance(cursor, dict) and part in cursor) or (isinstance(cursor, list) and isinstance(part, int) and part < len(cursor)):
            path.append(part)
            cursor = cursor[part]
        elif (
            isinstance(part, str)
            and isinstance(cursor, dict)
            and not part.startswith(("function-", "union[", "literal["))
        ):
            # a missing key: keep it, it is the key the user has to add
            path.append(part)
            cursor = None
    return tuple(path)


def _line_for(path: _Path, lines: dict[_Path, int]) -> int | None:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _dotted(path: _Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _model_at(path: _Path) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``path``."""
    model: Any = ProjectConfig
    for part in path:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = _inner_model(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _inner_model(typing.get_args(annotation)[0])
    if origin in (list, tuple, set) or origin in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _inner_model(arg)
            if isinstance(found, type) and issubclass(found, BaseModel):
                return found
        return None
    return annotation


def _problem(err: dict[str, Any], data: Any, file: str, lines: dict[_Path, int]) -> ConfigProblem:
    path = _data_path(tuple(err["loc"]), data)
    line = _line_for(path, lines)
    at = f" (line {line})" if line else ""
    key = _dotted(path)
    kind = err["type"]
    if kind == "extra_forbidden":
        bad = path[-1] if path else "?"
        parent = _model_at(path[:-1])
        valid = sorted(parent.model_fields) if parent else []
        close = difflib.get_close_matches(str(bad), valid, n=1, cutoff=0.6)
        tail = f"; did you mean '{close[0]}'?" if close else (
            f"; valid keys here: {', '.join(valid)}" if valid else ""
        )
        return ConfigProblem(file, line, key, f"unknown key '{bad}' at {key}{at}{tail}")
    if kind == "missing":
        return ConfigProblem(file, line, key, f"missing required key {key}{at}")
    got = err.get("input")
    shown = "" if isinstance(got, (dict, list)) else f", got {got!r}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return ConfigProblem(file, line, key, f"{key}{at}: {msg}{shown}")



def plugin_options_error(exc: ValidationError, *, at: _Path, options: dict[str, Any], what: str,
                         fields: list[str], config_path: str | Path | None = None) -> ConfigError:
    """A plugin's options (validated by its own model once ``blase.yaml`` has loaded, since
    reading the config imports no plugin) as a :class:`ConfigError` naming the file, line and
    key, as any config error does.

    ``at`` is where the options sit in ``blase.yaml`` (``("transform", 2)``, ``("data",
    "options")``); ``what`` names the plugin (``"operation plugin 'winsorize' (package x 1.0)"``);
    ``fields`` are the options it takes.
    """
    lines: dict[_Path, int] = {}
    path = Path(config_path) if config_path is not None else None
    file = path.name if path is not None else "blase.yaml"
    if path is not None and path.is_file():
        try:
            node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
            lines = key_lines(node) if node is not None else {}
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            lines = {}
    problems = []
    for err in exc.errors():
        full = (*at, *_data_path(tuple(err["loc"]), options))
        line = _line_for(full, lines)
        where = f" (line {line})" if line else ""
        key = _dotted(full)
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(full[-1]), fields, n=1, cutoff=0.6)
            tail = (f"; did you mean '{close[0]}'?" if close
                    else f"; its options: {', '.join(sorted(fields))}" if fields else "; it takes no options")
            message = f"unknown key '{full[-1]}' at {key}{where} for {what}{tail}"
        elif err["type"] == "missing":
            message = f"missing required key {key}{where} for {what}"
        else:
            got = err.get("input")
            shown = "" if isinstance(got, (dict, list)) else f", got {got!r}"
            message = f"{key}{where}: {err['msg'].removeprefix('Value error, ')}{shown} ({what})"
        problems.append(ConfigProblem(file, line, key, message))
    return ConfigError(problems, hint="fix the plugin's options above, then run `blase check`")
