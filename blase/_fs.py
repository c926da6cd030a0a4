"""Small filesystem primitives that keep outputs whole: never half-written, never half-replaced."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

__all__ = ["replace_dir"]


def replace_dir(tmp: Path, out: Path) -> None:
    """Put the finished folder ``tmp`` in place of ``out``.

    The earlier ``out`` is moved aside first and removed last, so at every moment ``out`` is
    either the old complete folder or the new complete one.
    """
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
