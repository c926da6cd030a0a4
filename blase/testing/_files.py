"""What the conformance checks look at in a folder a plugin wrote: content hashes, pickles."""

from __future__ import annotations

from pathlib import Path

__all__ = ["hash_tree", "pickle_files"]

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
