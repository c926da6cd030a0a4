"""What every kind's conformance checks share: the folder a plugin wrote (content hashes,
pickles) and its options model (a JSON round trip, unknown keys refused)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["hash_tree", "options_checks", "pickle_files"]

#: The first two bytes of a pickle of protocol 2 to 5.
_PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def hash_tree(folder: Path) -> dict[str, str]:
    """``{relative path: content hash}`` of every file under ``folder``."""
    from blase.hashing import hash_file

    return {p.relative_to(folder).as_posix(): hash_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def pickle_files(folder: Path) -> list[str]:
    """The files under ``folder`` that are pickles (by name or by their first bytes)."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with open(path, "rb") as f:
            head = f.read(2)
        if path.suffix in (".pkl", ".pickle", ".joblib") or head in _PICKLE_MAGIC:
            found.append(path.relative_to(folder).as_posix())
    return found


def options_checks(model: Any, given: dict[str, Any] | None = None) -> Iterator[tuple[str, Callable[[], str | None]]]:
    """``options_round_trip`` and ``bad_options_refused`` for a plugin's options ``model``
    (a pydantic model class, or None for a plugin without options: both pass); ``given``:
    the values of options without a default (an operation's :meth:`example`)."""
    from pydantic import BaseModel, ValidationError

    def round_trip() -> str | None:
        if model is None:
            return None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return "config_model is not a pydantic model"
        options = model(**(given or {}))
        again = model.model_validate(json.loads(json.dumps(options.model_dump(mode="json"))))
        return None if again == options else f"options change in a JSON round trip: {options!r} -> {again!r}"

    def refused() -> str | None:
        if model is None or not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        try:
            model.model_validate({"no_such_option__": 1})
        except ValidationError:
            return None
        return "an unknown option is accepted silently (set model_config = ConfigDict(extra='forbid'))"

    yield "options_round_trip", round_trip
    yield "bad_options_refused", refused
