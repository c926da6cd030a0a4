"""A content-addressed object store: every file is kept once, under its content hash.

Objects live at ``<root>/objects/<hash[:2]>/<hash>``. A file is copied to a temporary name in
the same folder, its hash verified, then renamed into place, so an object is either whole or
absent; a file already in the store is not copied again.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from blase._fs import atomic_path
from blase.errors import TrackError
from blase.hashing import hash_file

__all__ = ["ContentStore", "StoredObject"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredObject:
    """An object in a :class:`ContentStore`: its hash, size in bytes, and path in the store."""

    hash: str
    size: int
    path: Path


class ContentStore:
    """Files stored once by content hash (xxh3-128) under ``root``.

    Parameters
    ----------
    root:
        The store folder, e.g. ``Project.store_dir``; created on the first write.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @property
    def objects_dir(self) -> Path:
        return self.root / "objects"

    def path_for(self, digest: str) -> Path:
        """Where the object with hash ``digest`` lives (whether or not it exists)."""
        if len(digest) < 3 or not all(c in "0123456789abcdef" for c in digest):
            raise TrackError(f"{digest!r} is not a content hash", hint="hashes are lowercase hex")
        return self.objects_dir / digest[:2] / digest

    def has(self, digest: str) -> bool:
        """Whether the store holds an object with hash ``digest``."""
        return self.path_for(digest).is_file()

    def open(self, digest: str) -> BinaryIO:
        """Open the object with hash ``digest`` for reading (binary)."""
        path = self.path_for(digest)
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise TrackError(
                f"object {digest} is not in the store {self.root}",
                hint="it may have been garbage-collected; log the artifact again",
            ) from None

    def put_file(self, path: str | os.PathLike[str]) -> StoredObject:
        """Store the file at ``path`` (once) and describe the stored object.

        Raises
        ------
        TrackError
            When ``path`` is not a readable file, the store is not writable, or the file
            changed while it was being copied.
        """
        src = Path(path)
        if not src.is_file():
            raise TrackError(f"cannot store {src}: not a file", hint="check the path")
        try:
            digest = hash_file(src)
            dest = self.path_for(digest)
            if dest.is_file():
                return StoredObject(digest, dest.stat().st_size, dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(dest) as tmp:
                shutil.copyfile(src, tmp)
                copied = hash_file(tmp)
                if copied != digest:
                    raise TrackError(
                        f"{src} changed while it was being stored",
                        hint="log it again once nothing is writing to it",
                    )
                os.chmod(tmp, 0o444)  # stored objects are immutable
        except OSError as exc:
            raise TrackError(
                f"cannot store {src} in {self.root}: {exc.strerror or exc}",
                hint=f"check that {self.root} is a writable folder with free space",
            ) from exc
        logger.debug("stored %s as %s", src, digest)
        return StoredObject(digest, dest.stat().st_size, dest)
