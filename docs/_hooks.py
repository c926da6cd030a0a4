"""MkDocs hooks: pages built from the code, so they cannot drift from it.

* ``cli.md``: every command's help, from tests/golden/cli/ (the files tests/test_public_api.py
  keeps equal to the real CLI);
* ``<!-- config: SECTION -->`` on a page: the keys of that ``blase.yaml`` section, from its
  pydantic model (type, default, description);
* ``<!-- hints -->`` (troubleshooting.md): every error Blase raises with a hint, read from the
  source with ``ast``, grouped by error class.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "cli"
CONFIG = re.compile(r"<!-- config: (\w+) -->")


def on_page_markdown(markdown: str, page, **_: object) -> str:
    if page.file.src_path == "cli.md":
        return markdown.replace("<!-- commands -->", _commands())
    if "<!-- hints -->" in markdown:
        markdown = markdown.replace("<!-- hints -->", _hints())
    return CONFIG.sub(lambda m: _config_table(m.group(1)), markdown)


def _commands() -> str:
    parts = []
    for path in sorted(GOLDEN.glob("*.txt")):
        name = path.stem.replace("_", " ")
        parts.append(f"## `{name}`\n\n```text\n{path.read_text(encoding='utf-8').rstrip()}\n```\n")
    return "\n".join(parts)


# -- blase.yaml sections ------------------------------------------------------------------


def _config_table(section: str) -> str:
    from blase.config import ProjectConfig

    annotation = ProjectConfig.model_fields[section].annotation
    model = getattr(annotation, "__args__", (annotation,))[0]  # list[TransformStep] -> TransformStep
    rows = ["| key | type | default | what it is |", "| --- | --- | --- | --- |"]
    for name, field in model.model_fields.items():
        kind = re.sub(r"typing\.|<class '(\w+)'>", r"\1", str(field.annotation))
        default = "" if field.is_required() else repr(field.get_default(call_default_factory=True))
        cells = [f"`{section}.{name}`", f"`{kind}`", f"`{default}`" if default else "required",
                 field.description or ""]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


# -- troubleshooting: the errors' hints ---------------------------------------------------


def _literal(node: ast.AST | None) -> str | None:
    """A string literal's text; an f-string's values shown as ``…``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join("…" if isinstance(v, ast.FormattedValue) else str(getattr(v, "value", ""))
                       for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literal(node.left), _literal(node.right)
        return None if left is None or right is None else left + right
    return None


def error_hints() -> dict[str, list[tuple[str, str, str]]]:
    """Error class -> (message, hint, file) for each ``SomeError(message, hint=...)`` in the code."""
    found: dict[str, dict[tuple[str, str], str]] = {}
    for package in ("blase", "tools", "agent"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                hint = next((_literal(k.value) for k in node.keywords if k.arg == "hint"), None)
                message = _literal(node.args[0])
                if name.endswith("Error") and hint and message:
                    where = str(path.relative_to(ROOT))
                    found.setdefault(name, {}).setdefault((message.strip(), hint.strip()), where)
    return {name: [(m, h, w) for (m, h), w in sorted(items.items())] for name, items in sorted(found.items())}


def _hints() -> str:
    parts = []
    for name, items in error_hints().items():
        parts.append(f"### {name}\n")
        for message, hint, where in items:
            parts.append(f"- **{_escape(message)}**  \n  {_escape(hint)} <small>({where})</small>")
        parts.append("")
    return "\n".join(parts)


def _escape(text: str) -> str:
    """Markdown-safe text; backticked code (a command to run) is kept as code."""
    parts = " ".join(text.split()).split("`")
    return "`".join(p if i % 2 else re.sub(r"([*_<>\[\]])", r"\\\1", p) for i, p in enumerate(parts))
