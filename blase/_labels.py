"""Label values that differ only by surrounding whitespace or case (`` yes``/``yes``/``Yes``):
almost always one class written several ways, which would silently become several classes.
Used by schema suggestion and by prepare, where the classes are fixed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["label_variants", "variants_message"]


def label_variants(values: Iterable[Any]) -> list[list[str]]:
    """Groups (two or more, sorted) of the text values that are equal once stripped and
    case-folded; non-text values are ignored."""
    groups: dict[str, set[str]] = {}
    for v in values:
        if isinstance(v, str):
            groups.setdefault(v.strip().casefold(), set()).add(v)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def variants_message(label: str, groups: list[list[str]], where: str) -> str:
    """One warning naming each group of variants of ``label``'s values and the fix."""
    shown = "; ".join(" / ".join(repr(v) for v in g) for g in groups[:5])
    return (
        f"label '{label}' has values that differ only by whitespace or case in {where}: {shown} "
        "(each becomes a separate class); clean them with a `sql` transform, e.g. "
        f"expr: \"lower(trim({label}))\", name: {label}"
    )
