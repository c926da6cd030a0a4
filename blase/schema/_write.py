"""Writing the suggested transform (and label) into ``blase.yaml``, keeping the rest of the file."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from blase._fs import write_text_atomic
from blase.schema._report import SchemaReport

logger = logging.getLogger(__name__)

# -- writing into blase.yaml ----------------------------------------------------------------


def write_suggestions(config_path: str | os.PathLike[str], report: SchemaReport) -> Path:
    """Put the suggested ``transform:``, ``data.source`` (the file profiled: relative to the
    project when it lies inside it), ``data.label`` (when the report has one) and the
    report's other :attr:`~SchemaReport.settings` (``prepare.stratify`` for an imbalanced
    label) into ``blase.yaml``, keeping the rest of the file as it is.

    The top-level ``transform:`` block is replaced textually (or appended when there is none),
    so comments and layout elsewhere survive; comments inside the old ``transform:`` block are
    lost. ``data.source`` and ``data.label`` are set in place in a block-style ``data:`` mapping. When the file
    uses a layout this cannot edit safely (e.g. a flow-style ``data: {...}``), the file is
    loaded and dumped again instead, which drops its comments. The result is validated before
    it replaces the file, and the write is atomic.

    Raises
    ------
    blase.errors.ConfigError
        When the edited file would not be a valid configuration.
    """
    import yaml

    from blase.config import config_from_text

    path = Path(config_path)
    text = path.read_text(encoding="utf-8")
    steps = report.to_transform_config()
    block = yaml.safe_dump({"transform": steps}, sort_keys=False, default_flow_style=False)
    keys: dict[str, Any] = {"data.source": _project_relative(report.source, path.parent)}
    if report.label is not None:
        keys["data.label"] = report.label
    keys.update(report.settings)
    try:
        new = _replace_top_block(text, "transform", block)
        for key, value in keys.items():
            new = _set_key(new, *key.split(".", 1), value)
        config_from_text(new, file=path.name)
    except (ValueError, yaml.YAMLError):
        data = yaml.safe_load(text) or {}
        data["transform"] = steps
        for key, value in keys.items():
            top, sub = key.split(".", 1)
            data.setdefault(top, {})[sub] = value
        new = yaml.safe_dump(data, sort_keys=False)
        logger.warning("rewrote %s as a whole (comments were not kept)", path)
    config_from_text(new, file=path.name)
    write_text_atomic(path, new)
    return path


_TOP_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:")


def _top_blocks(lines: list[str]) -> list[tuple[str, int, int]]:
    """(key, first line, end line exclusive) of each top-level key; trailing comments and blank
    lines before the next key stay with the next key."""
    starts = [(m.group(1), i) for i, line in enumerate(lines) if (m := _TOP_KEY.match(line))]
    blocks = []
    for j, (key, i) in enumerate(starts):
        end = starts[j + 1][1] if j + 1 < len(starts) else len(lines)
        while end > i + 1 and (
            not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")
        ):
            end -= 1
        blocks.append((key, i, end))
    return blocks


def _replace_top_block(text: str, key: str, block: str) -> str:
    lines = text.splitlines(keepends=True)
    for k, start, end in _top_blocks(lines):
        if k == key:
            return "".join(lines[:start]) + block + "".join(lines[end:])
    sep = "" if not text or text.endswith("\n") else "\n"
    return text + sep + block


def _project_relative(source: str, root: Path) -> str:
    """``source`` as blase.yaml should name it: relative to the project ``root`` (POSIX
    separators) when it lies inside it, else absolute. A glob or ``file.sqlite:table`` keeps
    its tail."""
    import glob

    if glob.has_magic(source) or not Path(source).exists():
        return source
    full = Path(source).resolve()
    try:
        return full.relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(full)


def _set_key(text: str, top: str, key: str, val: Any) -> str:
    """Set ``<top>.<key>`` to ``val`` in a block-style ``top:`` mapping (added when missing),
    keeping a comment on its line; raise ValueError when ``top:`` is not a block mapping."""
    import yaml

    value = yaml.safe_dump(val, default_style=None).splitlines()[0]
    if value.endswith("..."):
        value = value[:-3].strip()
    lines = text.splitlines(keepends=True)
    for k, start, end in _top_blocks(lines):
        if k != top:
            continue
        head = lines[start].split(":", 1)[1].split("#", 1)[0].strip()
        if head:  # flow style or a scalar: not editable line by line
            raise ValueError(f"{top}: is not a block mapping")
        indent = None
        for i in range(start + 1, end):
            line = lines[i]
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cur = len(line) - len(line.lstrip(" "))
            indent = cur if indent is None else indent
            if cur == indent and re.match(rf"{re.escape(key)}\s*:", line.strip()):
                m = re.search(r"\s+#.*$", line.rstrip("\n"))  # a comment on the line stays
                comment = m.group(0) if m else ""
                lines[i] = " " * cur + f"{key}: {value}{comment}\n"
                return "".join(lines)
        pad = " " * (indent or 2)
        lines.insert(start + 1, f"{pad}{key}: {value}\n")
        return "".join(lines)
    sep = "" if not text or text.endswith("\n") else "\n"
    return text + sep + f"{top}:\n  {key}: {value}\n"
