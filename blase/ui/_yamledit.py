"""``blase.yaml`` as the builder edits it: plain data in, the user's file (comments, key order,
flow style, blank lines) out.

The page edits plain JSON data; :func:`render` merges that data into a ruamel.yaml round-trip
tree of the file on disk, so a key that did not change keeps its line byte for byte (with its
comment), a changed value keeps its place, a new key goes at the end of its mapping, and a
removed key goes with its line. A transform operation the page moved carries the index it had
in the file (:data:`ORIGIN`), so it keeps its comments wherever it lands. The blank lines that
close a section stay at the end of the section whatever moved inside it.
"""

from __future__ import annotations

import difflib
import io
from typing import Any

from blase.errors import ConfigError, ConfigProblem
from blase.ui._api import UIError

__all__ = ["ORIGIN", "load_document", "render", "unified_diff", "without_origins"]

#: The key of a list item the page sends to say which item of the file it was (its index).
ORIGIN = "__from"


def _yaml(text: str) -> tuple[Any, Any]:
    """A round-trip loader/dumper set to ``text``'s own indentation, and the loaded tree."""
    try:
        from ruamel.yaml import YAML
    except ImportError:
        raise UIError("the pipeline builder needs ruamel.yaml (to keep blase.yaml's comments)",
                      hint="pip install 'blase[ui]'", status=501) from None
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.util import load_yaml_guess_indent

    try:
        _data, indent, offset = load_yaml_guess_indent(text) if text.strip() else (None, 2, 0)
        yaml = YAML(typ="rt")
        yaml.preserve_quotes = True
        yaml.width = 4096  # never fold a long line the user wrote on one line
        yaml.indent(mapping=2, sequence=indent or 2, offset=offset or 0)
        tree = yaml.load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        at = f" (line {line})" if line else ""
        raise ConfigError([ConfigProblem("blase.yaml", line, "", f"YAML syntax error: {getattr(exc, 'problem', exc)}{at}")],
                          hint="fix blase.yaml in an editor (the builder edits a file that parses)") from None
    return yaml, tree


def load_document(text: str, *, origins: bool = False) -> dict[str, Any]:
    """The plain data of ``text`` (what the page edits): dicts, lists and JSON scalars; with
    ``origins``, every mapping in a list carries its index (:data:`ORIGIN`)."""
    _loader, tree = _yaml(text)
    data = _plain(tree, origins) if tree is not None else {}
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem("blase.yaml", 1, "", "the top level must be a mapping of keys")])
    return data


def render(text: str, data: dict[str, Any]) -> str:
    """``text`` (a blase.yaml) changed to hold ``data``, keeping what did not change as it was."""
    from ruamel.yaml.comments import CommentedMap

    yaml, tree = _yaml(text)
    if not isinstance(tree, CommentedMap):
        tree = CommentedMap()
    tree = _merge(tree, data, top=True)
    out = io.StringIO()
    yaml.dump(tree, out)
    return out.getvalue()


def unified_diff(before: str, after: str, name: str = "blase.yaml") -> str:
    """The change from ``before`` to ``after`` as a unified diff (empty when they are equal)."""
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        fromfile=f"a/{name}", tofile=f"b/{name}"))


# -- plain data ---------------------------------------------------------------------------


def without_origins(data: Any) -> Any:
    """``data`` without the :data:`ORIGIN` marks (what the config models validate)."""
    if isinstance(data, dict):
        return {k: without_origins(v) for k, v in data.items() if k != ORIGIN}
    if isinstance(data, list):
        return [without_origins(v) for v in data]
    return data


def _plain(node: Any, origins: bool = False) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v, origins) for k, v in node.items()}
    if isinstance(node, list):
        items = [_plain(v, origins) for v in node]
        return [{**v, ORIGIN: i} if origins and isinstance(v, dict) else v for i, v in enumerate(items)]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return str(node)


# -- merging ------------------------------------------------------------------------------


def _merge(node: Any, value: Any, *, top: bool = False) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap) and isinstance(value, dict):
        return _merge_map(node, value, top=top)
    if isinstance(node, CommentedSeq) and isinstance(value, list):
        return _merge_list(node, value)
    if _same_scalar(node, value):
        return node  # keeps the user's spelling (quotes, 1e-3, ~)
    return _fresh(value)


def _merge_map(node: Any, value: dict[str, Any], *, top: bool) -> Any:
    """Changed keys keep their place, removed keys go (their blank lines stay), new keys go
    last (a new top-level section after a blank line, as the sections of blase.yaml are)."""
    tail = _take_tail(node)
    for key in [k for k in node if k not in value]:
        keys = list(node)
        at = keys.index(key)
        gap = _take_tail(node, key)
        del node[key]
        node.ca.items.pop(key, None)
        if at > 0:
            _put_tail(node, gap, keys[at - 1])
    for key, item in value.items():
        if key in node:
            node[key] = _merge(node[key], item)
        else:
            if top and len(node) and isinstance(item, (dict, list)):
                _put_tail(node, max(1, _take_tail(node)))
            node[key] = _fresh(item)
    _put_tail(node, tail)
    return node


def _merge_list(node: Any, value: list[Any]) -> Any:
    """Items that say where they came from (:data:`ORIGIN`) keep their node and comments;
    when no item says so (a caller in Python), items are matched by position."""
    tail = _take_tail(node)
    olds, comments = list(node), dict(node.ca.items)
    marked = any(isinstance(v, dict) and ORIGIN in v for v in value)
    items, places, used = [], {}, set()
    for i, item in enumerate(value):
        if isinstance(item, dict):
            origin = item.get(ORIGIN) if marked else i
        else:  # a scalar keeps the node (and comment) of an equal one
            origin = next((k for k, old in enumerate(olds) if k not in used and _same_scalar(old, item)), None)
        if origin in used:
            origin = None
        used.add(origin)
        item = without_origins(item)
        if isinstance(origin, int) and 0 <= origin < len(olds) and (isinstance(item, dict) == isinstance(olds[origin], dict)):
            items.append(_merge(olds[origin], item))
            if origin in comments:
                places[i] = comments[origin]
        else:
            items.append(_fresh(item))
    del node[:]
    node.ca.items.clear()
    node.extend(items)
    node.ca.items.update(places)
    _put_tail(node, tail)
    return node


def _same_scalar(node: Any, value: Any) -> bool:
    if isinstance(node, (dict, list)) or isinstance(value, (dict, list)):
        return False
    if isinstance(node, bool) != isinstance(value, bool):
        return False
    return bool(node == value) and (node is None) == (value is None)


def _fresh(value: Any) -> Any:
    """``value`` as new round-trip nodes: a list of scalars in flow style (``[a, b]``)."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, dict):
        out = CommentedMap()
        for key, item in value.items():
            if key != ORIGIN:
                out[key] = _fresh(item)
        return out
    if isinstance(value, list):
        seq = CommentedSeq(_fresh(v) for v in value)
        if all(not isinstance(v, (dict, list)) for v in value):
            seq.fa.set_flow_style()
        return seq
    return value


# -- the blank lines that close a section -----------------------------------------------------


def _last_slot(node: Any, key: Any = None) -> tuple[Any, Any, int] | None:
    """Where the comment after ``node``'s last line (or after item ``key`` of it) lives:
    (container, key, index in its comment list), or None for an empty or flow-style node."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    while True:
        if not len(node) or node.fa.flow_style():
            return None
        if key is None:
            key = list(node)[-1] if isinstance(node, CommentedMap) else len(node) - 1
        index = 2 if isinstance(node, CommentedMap) else 0
        child = node[key]
        if isinstance(child, (CommentedMap, CommentedSeq)) and len(child) and not child.fa.flow_style():
            node, key = child, None
            continue
        return node, key, index


def _take_tail(node: Any, key: Any = None) -> int:
    """Remove the blank lines after ``node``'s last line (or its item ``key``); return how
    many there were."""
    slot = _last_slot(node, key)
    if slot is None:
        return 0
    holder, key, index = slot
    entry = holder.ca.items.get(key)
    token = entry[index] if entry and len(entry) > index else None
    if token is None or not isinstance(getattr(token, "value", None), str):
        return 0
    kept = token.value.rstrip("\n") + "\n"
    extra = len(token.value) - len(kept)
    token.value = kept
    return extra


def _put_tail(node: Any, blank: int, key: Any = None) -> None:
    """Put ``blank`` blank lines after ``node``'s (new) last line (or its item ``key``)."""
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    slot = _last_slot(node, key) if blank else None
    if slot is None:
        return
    holder, key, index = slot
    entry = holder.ca.items.setdefault(key, [None, None, None, None] if index == 2 else [None, None])
    token = entry[index]
    if token is None:
        entry[index] = CommentToken("\n" * (blank + 1), CommentMark(0), None)
    else:
        token.value = token.value.rstrip("\n") + "\n" * (blank + 1)
