"""MkDocs hook: the command-line page is built from tests/golden/cli/ (every command's help,
the files tests/test_public_api.py keeps equal to the real CLI), so it cannot drift."""

from __future__ import annotations

from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden" / "cli"


def on_page_markdown(markdown: str, page, **_: object) -> str:
    if page.file.src_path != "cli.md":
        return markdown
    parts = []
    for path in sorted(GOLDEN.glob("*.txt")):
        name = path.stem.replace("_", " ")
        parts.append(f"## `{name}`\n\n```text\n{path.read_text(encoding='utf-8').rstrip()}\n```\n")
    return markdown.replace("<!-- commands -->", "\n".join(parts))
