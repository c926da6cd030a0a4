"""The pieces of the ``nested_json`` source that know JSON, not Blase: blocks of whole
records with the line each came from (NDJSON, or a JSON array streamed element by element),
the kind of a value, merging two Arrow types into one that holds both (or the conflict), and
the first field of a record whose kind changed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from blase.errors import ExtractError

__all__ = ["Block", "Conflict", "Seen", "array_blocks", "as_text", "is_array", "merge_schema", "ndjson_blocks",
           "record_conflict", "text_type", "value_kind"]

# --------------------------------------------------------------------------- blocks of records


@dataclass
class Block:
    """Newline-separated JSON records and where each came from."""

    data: bytes
    first_line: int
    #: The source line of each record (JSON arrays); None: ``first_line`` + its index.
    lines: list[int] | None = None

    def line_of(self, index: int) -> int:
        return self.lines[index] if self.lines is not None else self.first_line + index


def is_array(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"[")


def ndjson_blocks(path: Path, size: int) -> Iterator[Block]:
    line = 1
    rest = b""
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(size)
            buf = rest + chunk
            if not chunk:
                if buf.strip():
                    yield Block(buf, line)
                return
            cut = buf.rfind(b"\n")
            if cut < 0:
                rest = buf
                continue
            block, rest = buf[: cut + 1], buf[cut + 1 :]
            yield Block(block, line)
            line += block.count(b"\n")


def array_blocks(path: Path, size: int, shown: str) -> Iterator[Block]:
    """A top-level JSON array, element by element (``raw_decode`` on a sliding window), as
    NDJSON blocks with each element's source line."""
    decoder = json.JSONDecoder()
    with open(path, encoding="utf-8-sig") as fh:
        buf, pos, line, eof = fh.read(size), 0, 1, False
        pos = buf.index("[") + 1
        line += buf.count("\n", 0, pos)
        out: list[str] = []
        lines: list[int] = []
        held = 0
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n,":
                line += buf[pos] == "\n"
                pos += 1
            if pos >= len(buf) and not eof:
                more = fh.read(size)
                eof = not more
                buf, pos = buf[pos:] + more, 0
                continue
            if pos < len(buf) and buf[pos] == "]":
                break
            try:
                value, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if not eof:
                    more = fh.read(size)
                    eof = not more
                    buf, pos = buf[pos:] + more, 0
                    continue
                raise ExtractError(f"{shown}, line {line}: not valid JSON ({exc.msg})",
                                   hint="fix the JSON array (every element an object, separated by commas)") from None
            out.append(json.dumps(value, separators=(",", ":")))  # one line, whatever its layout
            lines.append(line)
            line += buf.count("\n", pos, end)
            pos = end
            held += len(out[-1])
            if held >= size:
                yield Block("\n".join(out).encode() + b"\n", lines[0], lines)
                out, lines, held = [], [], 0
        if out:
            yield Block("\n".join(out).encode() + b"\n", lines[0], lines)


# --------------------------------------------------------------------------- types


def _kind(t: pa.DataType) -> str:
    if pa.types.is_null(t):
        return "null"
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "number"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_struct(t):
        return "object"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return "list"
    return "text"  # strings, and the timestamps pyarrow reads from ISO texts


def value_kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "list"
    return "text"


class Conflict(Exception):
    def __init__(self, path: str, a: str, b: str) -> None:
        super().__init__(path)
        self.path, self.a, self.b = path, a, b


def _merge(a: pa.DataType, b: pa.DataType, path: str) -> pa.DataType:
    """The type that holds values of both ``a`` and ``b``; :class:`Conflict` when none does."""
    if a == b:
        return a
    ka, kb = _kind(a), _kind(b)
    if ka == "null":
        return b
    if kb == "null":
        return a
    if ka != kb:
        raise Conflict(path, ka, kb)
    if ka == "number":
        return pa.float64()
    if ka == "text":
        return pa.string()
    if ka == "list":
        return pa.list_(_merge(a.value_type, b.value_type, path + "[]"))
    fields = {f.name: f.type for f in a}
    for f in b:
        name = f"{path}.{f.name}" if path else f.name
        fields[f.name] = _merge(fields[f.name], f.type, name) if f.name in fields else f.type
    return pa.struct(list(fields.items()))


def merge_schema(a: pa.Schema | None, b: pa.Schema) -> pa.Schema:
    if a is None:
        return b
    return pa.schema(list(_merge(pa.struct(list(a)), pa.struct(list(b)), "")))


def record_conflict(value: Any, t: pa.DataType | None, path: str) -> tuple[str, str, str] | None:
    """The first field of ``value`` whose kind disagrees with type ``t`` (path, was, now)."""
    if t is None or value is None:
        return None
    want, got = _kind(t), value_kind(value)
    if want == "null":
        return None
    if want != got:
        return (path, want, got)
    if got == "object":
        children = {f.name: f.type for f in t}
        for key, child in value.items():
            hit = record_conflict(child, children.get(key), f"{path}.{key}" if path else key)
            if hit:
                return hit
    elif got == "list":
        for item in value:
            hit = record_conflict(item, t.value_type, path + "[]")
            if hit:
                return hit
    return None


def as_text(value: Any, parts: list[str]) -> Any:
    """``value`` with the field at ``parts`` (dotted path, split) turned into text."""
    if not parts:
        return value if value is None or isinstance(value, str) else json.dumps(value)
    if isinstance(value, dict) and parts[0] in value:
        value[parts[0]] = as_text(value[parts[0]], parts[1:])
    return value


def text_type(t: pa.DataType, parts: list[str]) -> pa.DataType:
    if not parts:
        return pa.string()
    if not pa.types.is_struct(t):
        return t
    return pa.struct([(f.name, text_type(f.type, parts[1:]) if f.name == parts[0] else f.type) for f in t])


@dataclass
class Seen:
    """Where each dotted field first had its kind (for the error that names both lines)."""

    kinds: dict[str, tuple[str, str, int]] = field(default_factory=dict)

    def visit(self, value: Any, path: str, where: str, line: int) -> tuple[str, str, str, int, str] | None:
        """The first field of ``value`` whose kind differs from its first one: (path, kind
        then, file then, line then, kind now)."""
        kind = value_kind(value)
        if kind != "null" and path:
            first = self.kinds.setdefault(path, (kind, where, line))
            if first[0] != kind:
                return (path, first[0], first[1], first[2], kind)
        children = value.items() if kind == "object" else (((None, v) for v in value) if kind == "list" else ())
        for key, child in children:
            name = path + "[]" if key is None else (f"{path}.{key}" if path else key)
            hit = self.visit(child, name, where, line)
            if hit:
                return hit
        return None
